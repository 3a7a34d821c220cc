"""ActorCriticLM: loading through the real from_pretrained path, export to plain transformers, padding, errors."""

from __future__ import annotations

import pytest
import torch
import transformers

from agents.models import (
    VALUE_HEAD_FILENAME,
    ActorCriticLM,
    ModelLoadError,
    build_default_model,
    default_model_config,
    position_ids_from_mask,
)

from .conftest import tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")


def test_position_ids_from_mask_left_and_right_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0]])
    expected = torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 2, 2], [0, 0, 1, 2, 2]])
    assert torch.equal(position_ids_from_mask(mask), expected)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_left_and_right_padding_give_the_unpadded_next_token_logits(kind, make_model):
    model = make_model(kind)
    prompt = torch.tensor([[5, 9, 17, 3, 42]])
    with torch.no_grad():
        reference = model.logits(model(prompt, torch.ones_like(prompt)).hidden[:, -1])
        left = torch.cat([torch.zeros(1, 3, dtype=torch.long), prompt], 1)
        left_mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(prompt)], 1)
        left_logits = model.logits(model(left, left_mask).hidden[:, -1])
        right = torch.cat([prompt, torch.zeros(1, 3, dtype=torch.long)], 1)
        right_logits = model.logits(model(right, left_mask.flip(1)).hidden[:, prompt.shape[1] - 1])
    torch.testing.assert_close(left_logits, reference, atol=1e-4, rtol=0)
    torch.testing.assert_close(right_logits, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "t5"])
def test_logits_match_the_wrapped_models_own_logits(kind, make_model):
    model = make_model(kind)
    ids = torch.tensor([[4, 8, 15, 16, 23, 42]])
    mask = torch.ones_like(ids)
    dec = torch.tensor([[0, 7, 9]])
    with torch.no_grad():
        if kind == "t5":  # T5 rescales tied decoder outputs before its LM head: logits() must too
            ours = model.logits(model(ids, mask, decoder_input_ids=dec).hidden)
            theirs = model.lm(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        else:
            ours = model.logits(model(ids, mask).hidden)
            theirs = model.lm(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_save_then_from_pretrained_restores_actor_and_critic(tmp_path, make_model, critic):
    model = make_model("llama", critic=critic)
    with torch.no_grad():
        model.value_head.weight.normal_()
        if critic == "separate":
            for p in model.critic_lm.parameters():
                p.add_(0.1)
    model.save_pretrained(tmp_path)
    assert (tmp_path / VALUE_HEAD_FILENAME).is_file() and any(tmp_path.glob("model*.safetensors"))
    loaded = ActorCriticLM.from_pretrained(tmp_path, critic=critic).eval()
    ids = torch.tensor([[3, 5, 7, 11]])
    with torch.no_grad():
        a, b = model(ids, torch.ones_like(ids)), loaded(ids, torch.ones_like(ids))
    torch.testing.assert_close(b.hidden, a.hidden)
    torch.testing.assert_close(b.values, a.values)


def test_separate_critic_has_its_own_trunk(make_model):
    model = make_model("gpt2", critic="separate")
    ids = torch.tensor([[3, 5, 7]])
    out = model(ids, torch.ones_like(ids))
    out.values.sum().backward()
    assert all(p.grad is None for p in model.lm.parameters())
    assert any(p.grad is not None for p in model.critic_lm.parameters())


def test_exported_actor_loads_in_plain_transformers_and_pipeline(tmp_path, tokenizer):
    model = build_default_model(tokenizer, size="tiny").eval()
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.tensor([tokenizer.encode("Q: 2 + 3 = ? A:")])
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=ids).logits, model.logits(model(ids, torch.ones_like(ids)).hidden))
    generator = transformers.pipeline("text-generation", model=str(tmp_path), device="cpu")
    out = generator("Q: 2 + 3 = ? A:", max_new_tokens=4, do_sample=False)
    assert out[0]["generated_text"].startswith("Q: 2 + 3 = ? A:")


def test_default_model_is_a_few_million_gpt2_parameters(tokenizer):
    model = build_default_model(tokenizer)
    assert isinstance(model.lm, transformers.GPT2LMHeadModel)
    assert model.vocab_size == tokenizer.vocab_size
    assert 2e6 < sum(p.numel() for p in model.parameters()) < 10e6
    again = build_default_model(tokenizer)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))  # seeded


def test_loading_errors_name_the_cause(tmp_path, make_model):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ActorCriticLM.from_pretrained("gpt2")
    with pytest.raises(FileNotFoundError, match="config.json"):
        ActorCriticLM.from_pretrained(tmp_path)
    model = make_model("gpt2")
    model.lm.save_pretrained(tmp_path)
    for weights in tmp_path.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(FileNotFoundError, match="use_safetensors=False"):
        ActorCriticLM.from_pretrained(tmp_path)


def test_a_directory_with_only_pytorch_model_bin_says_not_safetensors(tmp_path, make_model):
    # ActorCriticLM.save_pretrained also writes value_head.safetensors: that is not the model's weights.
    model = make_model("gpt2")
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.lm.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"pytorch_model.bin.*not safetensors|not safetensors.*pytorch_model.bin") as info:
        ActorCriticLM.from_pretrained(tmp_path)
    assert "use_safetensors=False" in str(info.value) and "corrupt" not in str(info.value)
    assert isinstance(info.value, FileNotFoundError)  # as before, for callers that caught that
    again = ActorCriticLM.from_pretrained(tmp_path, use_safetensors=False)  # the way out the message names
    assert all(torch.equal(p, q) for p, q in zip(model.lm.parameters(), again.lm.parameters()))


def test_vocabulary_mismatch_tells_padding_from_another_tokenizer():
    from agents.models import vocabulary_mismatch

    assert vocabulary_mismatch(400, 400) is None
    assert vocabulary_mismatch(50304, 50257) is None  # GPT-2's padded embedding
    assert vocabulary_mismatch(151936, 151665) is None  # Qwen2.5's
    assert "much larger" in vocabulary_mismatch(4096, 400)
    assert "much larger" in vocabulary_mismatch(50257, 4096)


def test_constructor_errors(make_model):
    with pytest.raises(ValueError, match="critic must be"):
        ActorCriticLM(make_model("gpt2").lm, critic="twin")
    with pytest.raises(ValueError, match="no LM head"):
        ActorCriticLM(transformers.AutoModel.from_config(tiny_config("gpt2")))
    with pytest.raises(TypeError, match="PreTrainedModel"):
        ActorCriticLM(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="size must be one of"):
        default_model_config(100, 0, 1, size="huge")
    with pytest.raises(ValueError, match="decoder_input_ids"):
        make_model("t5")(torch.tensor([[3, 4]]), torch.ones(1, 2, dtype=torch.long))
