"""textgym tasks from TRL: dataset_and_rewards() gives GRPOTrainer its dataset and reward functions (issue 16 item 2)."""

from __future__ import annotations

import math

import pytest

datasets = pytest.importorskip("datasets", reason="datasets is in the dev extra; pip install -e '.[dev]'")

from textgym import rewards  # noqa: E402
from textgym.integrations.trl import TRLRewardFunction, dataset_and_rewards  # noqa: E402


def test_arithmetic_dataset_and_reward_under_trls_keyword_call():
    dataset, funcs = dataset_and_rewards("textgym/Arithmetic-v0", split="train")
    assert isinstance(dataset, datasets.Dataset) and dataset.column_names == ["prompt", "answer"]
    row = dataset[0]
    assert isinstance(row["prompt"], str) and row["prompt"].startswith("Q:")
    [numeric] = funcs
    scores = numeric(
        prompts=[row["prompt"]] * 2, completions=[f" {row['answer']}", " nope"], completion_ids=[[5], [6]],
        answer=[row["answer"]] * 2, trainer_state=None, log_metric=lambda *a: None, log_extra=lambda *a: None,
    )
    assert scores == [1.0, 0.0] and numeric.__name__ == "numeric_match"


def test_a_combined_reward_gives_one_weighted_function_per_component():
    dataset, funcs = dataset_and_rewards("textgym/Keywords-v0", split="test")
    assert [f.__name__ for f in funcs] == ["keywords", "repetition*0.5"]
    row = dataset[0]
    text = " ".join(row["keywords"]) + " " + " ".join(row["keywords"])  # every keyword, every bigram twice
    kwargs = dict(prompts=[row["prompt"]], completions=[text], completion_ids=[[1]], keywords=[row["keywords"]])
    parts = [f(**kwargs)[0] for f in funcs]
    expected, _ = rewards.score({"keywords": 1.0, "repetition": 0.5}, [row["prompt"]], [text],
                                {"keywords": [row["keywords"]]})
    alone, _ = rewards.score("keywords", [row["prompt"]], [text], {"keywords": [row["keywords"]]})
    assert math.isclose(parts[0], alone[0]) and math.isclose(sum(parts), expected[0]) and parts[1] < 0


def test_conversational_dataset_and_chat_completions():
    dataset, [numeric] = dataset_and_rewards("textgym/Arithmetic-v0", conversational=True)
    row = dataset[0]
    assert row["prompt"] == [{"role": "user", "content": row["prompt"][0]["content"]}]
    completions = [[{"role": "assistant", "content": row["answer"]}], [{"role": "assistant", "content": "x"}]]
    assert numeric(prompts=[row["prompt"]] * 2, completions=completions, answer=[row["answer"]] * 2) == [1.0, 0.0]


def test_none_passes_through_and_a_missing_column_is_named():
    def maybe(completions, **kwargs):
        return [None if c == "skip" else 2.0 for c in completions]

    func = TRLRewardFunction(maybe, "maybe", 0.5, ["answer"], None)
    assert func(prompts=["p", "q"], completions=["skip", "ok"], answer=["1", "2"]) == [None, 1.0]
    [numeric] = dataset_and_rewards("textgym/Arithmetic-v0")[1]
    with pytest.raises(rewards.RewardInputError, match=r"'answer'"):
        numeric(prompts=["p"], completions=["ok"])


def test_unknown_id_is_a_clear_error():
    with pytest.raises(ValueError, match="not a registered textgym id.*textgym/Arithmetic-v0"):
        dataset_and_rewards("CartPole-v1")


def test_a_multi_turn_id_is_refused_with_the_turn_level_alternative():
    with pytest.raises(ValueError, match="multi-turn env.*textgym/CalculatorText-v0"):
        dataset_and_rewards("textgym/Calculator-v0")


def test_trl_grpo_trains_a_few_steps_on_a_textgym_task(tmp_path):
    """Three GRPO steps, offline: a tiny local GPT-2 and textgym's tokenizer, passed to TRL as objects."""
    pytest.importorskip("trl", reason="trl is in the dev extra; pip install -e '.[dev]'")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from trl import GRPOConfig, GRPOTrainer

    from textgym.tokenizers import default_tokenizer

    torch.manual_seed(0)
    hf_tok = default_tokenizer().to_hf()
    hf_tok.padding_side = "left"
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(hf_tok), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                       bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                                       pad_token_id=hf_tok.pad_token_id))
    dataset, funcs = dataset_and_rewards("textgym/Arithmetic-v0")
    calls = []

    def length(completions, trainer_state, **kwargs):  # a TRL-shaped reward next to textgym's
        calls.append(trainer_state.global_step)
        return [0.01 * len(c) for c in completions]

    config = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=4,
        max_steps=3, learning_rate=1e-3, beta=0.0, logging_steps=1, report_to="none", use_cpu=True,
        save_strategy="no", bf16=False, disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[*funcs, length], args=config,
                          train_dataset=dataset.select(range(24)), processing_class=hf_tok)
    trainer.train()
    assert trainer.state.global_step == 3
    logged = [log for log in trainer.state.log_history if "rewards/numeric_match/mean" in log]
    assert len(logged) == 3 and all(math.isfinite(log["rewards/numeric_match/mean"]) for log in logged)
    assert calls == [0, 1, 2]
