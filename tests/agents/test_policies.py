"""TransformerPolicy on a stand-in env that follows textgym's observation contract (docs/design.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents.policies import TransformerPolicy

from .conftest import VOCAB, tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")

P, T = 5, 4


def obs_space(vocab: int = VOCAB) -> spaces.Dict:
    return spaces.Dict({
        "input_ids": spaces.Box(0, vocab - 1, shape=(P + T,), dtype=np.int64),
        "attention_mask": spaces.Box(0, 1, shape=(P + T,), dtype=np.int64),
    })


def make_policy(**kwargs) -> TransformerPolicy:
    kwargs.setdefault("model_config", tiny_config("gpt2").to_dict())
    return TransformerPolicy(obs_space(), spaces.Discrete(VOCAB), lambda _: 1e-4, **kwargs)


def batch(step: int, n: int = 3) -> dict[str, torch.Tensor]:
    """Observations after `step` generated tokens, as SB3 hands them over (float32)."""
    ids, mask = torch.zeros(n, P + T), torch.zeros(n, P + T)
    for i in range(n):
        ids[i, P - 2 - i : P] = torch.arange(3, 5 + i, dtype=torch.float32)
        mask[i, P - 2 - i : P + step] = 1
        ids[i, P : P + step] = torch.arange(10, 10 + step, dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask}


def test_forward_shapes_and_log_probs_agree_with_evaluate_actions():
    policy = make_policy(temperature=0.8, top_k=10)
    with torch.no_grad():
        actions, values, log_prob = policy(batch(1))
    assert actions.shape == (3,) and values.shape == (3, 1) and log_prob.shape == (3,)
    policy.set_training_mode(True)
    eval_values, eval_log_prob, entropy = policy.evaluate_actions(batch(1), actions)
    torch.testing.assert_close(eval_log_prob, log_prob, atol=1e-5, rtol=0)
    torch.testing.assert_close(eval_values, values, atol=1e-5, rtol=0)
    assert (entropy > 0).all() and eval_log_prob.requires_grad
    (-eval_log_prob.mean()).backward()
    assert policy.model.lm.get_output_embeddings().weight.grad is not None


def test_cached_rollout_steps_equal_uncached():
    cached, uncached = make_policy(), make_policy(use_cache=False)
    uncached.load_state_dict(cached.state_dict())
    with torch.no_grad():
        for step in range(T):
            a = cached.get_distribution(batch(step)).logits
            b = uncached.get_distribution(batch(step)).logits
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
            torch.testing.assert_close(cached.predict_values(batch(step)), uncached.predict_values(batch(step)), atol=1e-4, rtol=0)
    assert cached.slot_cache.stats["extended"] == 3 * (T - 1)


def test_float32_observations_convert_back_to_exact_ids():
    policy = make_policy()
    obs = {"input_ids": torch.tensor([[0.0, 63.0, 17.0]]), "attention_mask": torch.tensor([[0.0, 1.0, 1.0]])}
    ids, mask = policy.obs_to_ids(obs)
    assert ids.dtype == torch.long and ids.tolist() == [[0, 63, 17]] and mask.tolist() == [[0, 1, 1]]


def test_policy_save_load_round_trips_a_model_passed_as_object(tmp_path, make_model):
    model = make_model("llama", critic="separate")
    policy = TransformerPolicy(obs_space(), spaces.Discrete(VOCAB), lambda _: 1e-4, model=model, top_p=0.9)
    policy.save(tmp_path / "policy.pt")
    loaded = TransformerPolicy.load(tmp_path / "policy.pt")
    assert loaded.top_p == 0.9 and loaded.critic == "separate"
    with torch.no_grad():
        torch.testing.assert_close(loaded.get_distribution(batch(2)).logits, policy.get_distribution(batch(2)).logits)
        torch.testing.assert_close(loaded.predict_values(batch(2)), policy.predict_values(batch(2)))


def test_model_from_directory_and_smaller_action_space(tmp_path, make_model):
    make_model("gpt2").save_pretrained(tmp_path)
    policy = TransformerPolicy(obs_space(40), spaces.Discrete(40), lambda _: 1e-4, model=str(tmp_path))
    with torch.no_grad():
        assert policy.get_distribution(batch(0)).logits.shape == (3, 40)
    assert isinstance(policy.optimizer, torch.optim.AdamW)


def test_seq2seq_policy_encodes_prompt_slots_and_steps_the_decoder():
    config = tiny_config("t5").to_dict()
    policy = make_policy(model_config=config, max_prompt_tokens=P)
    reference = make_policy(model_config=config, max_prompt_tokens=P, use_cache=False)
    reference.load_state_dict(policy.state_dict())
    with torch.no_grad():
        for step in range(T):
            torch.testing.assert_close(
                policy.get_distribution(batch(step)).logits, reference.get_distribution(batch(step)).logits, atol=1e-4, rtol=0
            )
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        make_policy(model_config=config)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"critic": "both"}, ValueError, "critic must be"),
        ({"temperature": 0}, ValueError, "temperature"),
        ({"use_sde": True}, ValueError, "discrete"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"model": 3, "model_config": None}, TypeError, "model must be"),
        ({"model_config": {"n_layers_typo": 2}}, ValueError, "Unknown GPT2Config fields"),
    ],
)
def test_bad_policy_kwargs_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_policy(**kwargs)


def test_non_textgym_observation_raises():
    with pytest.raises(ValueError, match="'input_ids' and 'attention_mask'"):
        make_policy().obs_to_ids({"tokens": torch.zeros(1, P + T)})


def test_bad_spaces_raise(make_model):
    with pytest.raises(ValueError, match="Discrete"):
        TransformerPolicy(obs_space(), spaces.Box(0, 1, (2,)), lambda _: 1e-4)
    with pytest.raises(ValueError, match="Dict observation"):
        TransformerPolicy(spaces.Box(0, 1, (P + T,)), spaces.Discrete(VOCAB), lambda _: 1e-4)
    with pytest.raises(ValueError, match="smaller than the action space"):
        TransformerPolicy(obs_space(100), spaces.Discrete(100), lambda _: 1e-4, model=make_model("gpt2"))


def test_policy_kwargs_take_the_keys_tokenppo_takes():
    """TokenPPO's {"size": ...} works for TransformerPolicy too, as {"model_config": {"size": ...}} does."""
    flat = TransformerPolicy(obs_space(), spaces.Discrete(VOCAB), lambda _: 1e-4, size="tiny")
    nested = TransformerPolicy(obs_space(), spaces.Discrete(VOCAB), lambda _: 1e-4, model_config={"size": "tiny"})
    assert flat.model.config.to_dict() == nested.model.config.to_dict() and flat.model.config.n_layer == 2
    with pytest.raises(ValueError, match="size"):
        TransformerPolicy(obs_space(), spaces.Discrete(VOCAB), lambda _: 1e-4, size="tiny", model_config={"size": "small"})


def test_cached_values_and_logits_equal_uncached_on_a_multi_turn_episode():
    """GuessNumber appends " higher\\nGuess:" after each guess: observations grow by several tokens at once."""
    import gymnasium as gym

    import textgym  # noqa: F401
    from textgym.tokenizers import default_tokenizer

    tok = default_tokenizer()
    envs = gym.make_vec("textgym/GuessNumber-v0", num_envs=3, autoreset_mode="SameStep")
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    cached = TransformerPolicy(obs_space, action_space, lambda _: 1e-4, size="tiny")
    uncached = TransformerPolicy(obs_space, action_space, lambda _: 1e-4, size="tiny", use_cache=False)
    uncached.load_state_dict(cached.state_dict())
    obs, _ = envs.reset(seed=0)
    guesses = [tok.encode(f" {n}")[0] for n in (50, 25, 12)]
    for step in range(12):
        tensors = {k: torch.as_tensor(v) for k, v in obs.items()}
        with torch.no_grad():
            torch.testing.assert_close(cached.get_distribution(tensors).logits, uncached.get_distribution(tensors).logits,
                                       atol=1e-4, rtol=0)
            torch.testing.assert_close(cached.predict_values(tensors), uncached.predict_values(tensors), atol=1e-4, rtol=0)
        actions = np.full(3, tok.eos_token_id if step % 2 else guesses[step // 2 % 3])
        obs, *_ = envs.step(actions)
    assert cached.slot_cache.span_extensions >= 3 and cached.slot_cache.stats["extended"] > 0
