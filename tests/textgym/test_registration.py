"""register_reward_env: a reward function (plus prompts) becomes an env id in one call."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym


def brevity(prompts, completions, **kwargs):
    """A TRL-style reward: shorter completions score higher."""
    return [1.0 / (1 + len(c.split())) for c in completions]


def test_reward_function_becomes_an_env_id_for_make_and_make_vec(tokenizer):
    env_id = textgym.register_reward_env(
        "testtasks/Brief-v0", brevity, prompts=[{"prompt": "Describe the sea:"}], max_new_tokens=3, overwrite=True
    )
    env = gym.make(env_id)
    env.reset(seed=0)
    *_, reward, term, trunc, info = env.step(tokenizer.eos_token_id)
    assert term and reward == 1.0 and info["completion"] == ""
    for mode in ("vector_entry_point", "sync"):
        envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode)
        envs.reset(seed=0)
        _, rewards, term, _, _ = envs.step(np.full(2, tokenizer.eos_token_id))
        assert term.all() and rewards.tolist() == [1.0, 1.0]
        envs.close()
    assert env_id in textgym.env_ids()


def test_reuse_a_builtin_tasks_prompts_with_your_own_reward():
    env_id = textgym.register_reward_env("testtasks/BriefSentiment-v0", brevity, task="sentiment", overwrite=True)
    env = gym.make(env_id)
    _, info = env.reset(seed=0)
    assert info["prompt"]


def test_registration_errors_are_raised_at_registration(tokenizer):
    textgym.register_reward_env("testtasks/Dup-v0", brevity, prompts=[{"prompt": "x"}], overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        textgym.register_reward_env("testtasks/Dup-v0", brevity, prompts=[{"prompt": "x"}])
    with pytest.raises(ValueError, match="needs prompts"):
        textgym.register_reward_env("testtasks/NoPrompts-v0", brevity)
    with pytest.raises(Exception, match="prompt"):
        textgym.register_reward_env("testtasks/BadPrompts-v0", brevity, prompts=[{"text": "no prompt key"}])
    assert "testtasks/BadPrompts-v0" not in gym.registry
