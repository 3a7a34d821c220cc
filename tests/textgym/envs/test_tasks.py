"""The built-in tasks' natural action masks (``gym.make(id, restrict_actions=True)``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)


@pytest.mark.parametrize("env_id, alphabet", [
    ("textgym/Arithmetic-v0", set("0123456789- ")),
    ("textgym/Format-v0", set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,.")),
])
def test_restrict_actions_allows_exactly_the_tasks_alphabet_and_eos(env_id, alphabet, tokenizer):
    env = gym.make(env_id, restrict_actions=True)
    mask = env.unwrapped.action_masks()
    allowed = set(np.flatnonzero(mask).tolist())
    assert tokenizer.eos_token_id in allowed and 20 < len(allowed) < mask.size - 200  # a real restriction
    for token in allowed - {tokenizer.eos_token_id}:
        text = tokenizer.decode([token])
        assert text and set(text) <= alphabet, (token, text)
    # Every demonstration (train and test) can be written with the allowed tokens: the mask loses no answer.
    for split in ("train", "test"):
        for record in gym.make(env_id, split=split).unwrapped.prompt_source:
            assert set(tokenizer.encode(record["completion"])) <= allowed, record["completion"]
    vector = gym.make_vec(env_id, num_envs=3, restrict_actions=True)
    assert np.array_equal(vector.unwrapped.action_masks(), np.broadcast_to(mask, (3, mask.size)))
    assert gym.make(env_id).unwrapped.action_masks().all()  # off by default: the full vocabulary


def test_restrict_actions_on_a_task_without_a_natural_mask_is_a_clear_error():
    with pytest.raises(ValueError, match="'sentiment' task has no natural action mask.*allowed_token_ids"):
        gym.make("textgym/Sentiment-v0", restrict_actions=True)
