"""The multi-turn tasks' data (textgym/data/calculator.py, guess_number.py, multi_turn_dialogue.py): deterministic,
a test split disjoint in its held-out dimension, encodable by the default tokenizer within the prompt slots."""

from __future__ import annotations

import gymnasium as gym
import pytest

import textgym  # noqa: F401  (registers the ids)
from textgym.data import MULTI_TURN_TASKS, calculator, guess_number, load_task_data, multi_turn_dialogue

IDS = {"calculator": "textgym/Calculator-v0", "guess_number": "textgym/GuessNumber-v0",
       "multi_turn_dialogue": "textgym/MultiTurnDialogue-v0"}


@pytest.mark.parametrize("task", MULTI_TURN_TASKS)
def test_data_is_deterministic_and_the_test_split_is_disjoint_in_its_held_out_dimension(task):
    train, test = load_task_data(task, "train"), load_task_data(task, "test")
    assert train == load_task_data(task, "train") and len(test) > 20
    assert load_task_data(task, "train", n=10, seed=3) == load_task_data(task, "train", n=10, seed=3)
    # GuessNumber's prompt states only the range and a dialogue's only the opening line: the rest of the episode
    # (the number, the goal) is hidden, so prompts repeat across splits; the held-out dimension does not.
    if task == "calculator":
        assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    if task == "calculator":
        dim = lambda r: r["operands"]  # noqa: E731
        assert all(calculator.in_test_split(*map(int, r["operands"].split(","))) for r in test)
    elif task == "guess_number":
        dim = lambda r: r["target"]  # noqa: E731
        assert all(guess_number.in_test_split(r["target"]) for r in test)
    else:
        dim = lambda r: (r["kind"], tuple(sorted(r["goal"].items())))  # noqa: E731
    assert not {dim(r) for r in train} & {dim(r) for r in test}
    if task == "multi_turn_dialogue":
        assert {r["kind"] for r in test} == {"booking", "return"}
        assert multi_turn_dialogue.in_test_split("booking", (1, 0, 0)) != multi_turn_dialogue.in_test_split("booking", (0, 0, 0))


@pytest.mark.parametrize("task", MULTI_TURN_TASKS)
def test_the_default_tokenizer_encodes_the_tasks_text_exactly_within_the_prompt_slots(task, tokenizer):
    env = gym.make(IDS[task]).unwrapped
    for record in load_task_data(task, "train", n=20) + load_task_data(task, "test", n=20):
        ids = tokenizer.encode(record["prompt"])
        assert len(ids) <= env.max_prompt_tokens and tokenizer.decode(ids) == record["prompt"]
        assert tokenizer.decode(tokenizer.encode(record["completion"])) == record["completion"]
