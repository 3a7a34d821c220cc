"""The completion-level view (textgym/envs/text_actions.py): one action = one turn as a string, for every task,
with the token-level env's rewards."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)
from envs_registry import BUILTIN_ENVS, TEXT_ENVS
from textgym.envs.text_actions import TextActionEnv


def test_every_builtin_id_has_a_text_action_twin():
    assert set(TEXT_ENVS) == {env_id.replace("-v0", "Text-v0") for env_id in BUILTIN_ENVS}
    assert set(TEXT_ENVS) <= set(gym.registry)


@pytest.mark.parametrize("env_id", sorted(TEXT_ENVS))
def test_every_text_id_passes_gymnasiums_env_checker_without_warnings(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id)
    assert isinstance(env.action_space, gym.spaces.Text) and isinstance(env.observation_space, gym.spaces.Text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and obs == info["prompt"][-len(obs):]


def test_a_single_turn_task_ends_after_one_action_with_the_token_envs_reward():
    env = gym.make("textgym/ArithmeticText-v0")
    obs, info = env.reset(options={"prompt_index": 0})
    record = env.unwrapped.prompt_source[0]
    obs, reward, terminated, truncated, info = env.step(" " + record["answer"])
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert obs == record["prompt"] + " " + record["answer"] and info["completion"] == " " + record["answer"]
    token_env = gym.make("textgym/Arithmetic-v0")
    token_env.reset(options={"prompt_index": 0})
    tok = token_env.unwrapped.tokenizer
    token_rewards = [token_env.step(a)[1] for a in [*tok.encode(" " + record["answer"]), tok.eos_token_id]]
    assert sum(token_rewards) == reward


def test_a_multi_turn_task_goes_on_with_the_envs_reply_and_drops_text_after_a_stop_sequence():
    env = gym.make("textgym/CalculatorText-v0")
    env.reset(options={"prompt_index": 3})
    record = env.unwrapped.prompt_source[3]
    call = f" <calc>{record['expression'].replace(' ', '')}</calc>"
    obs, reward, terminated, truncated, info = env.step(call + " and more words")
    assert not (terminated or truncated) and reward == pytest.approx(-0.02)
    assert obs.endswith(call + f" = {record['answer']}\n") and info["dropped_tokens"] > 0
    obs, reward, terminated, truncated, info = env.step(" " + record["answer"])
    assert terminated and reward == 1.0 and info["correct"] and info["dropped_tokens"] == 0


def test_guess_number_at_the_text_level():
    env = gym.make("textgym/GuessNumberText-v0")
    records = env.unwrapped.prompt_source
    index = next(i for i in range(len(records)) if records[i]["high"] == 20 and records[i]["target"] == 15)
    env.reset(options={"prompt_index": index})
    obs, reward, *_ = env.step(" 10")
    assert obs.endswith(" 10 higher\nGuess:") and reward == 0.0
    obs, reward, terminated, _, info = env.step(" 15")
    assert terminated and reward == pytest.approx(0.9) and info["guesses"] == 2


def test_the_budget_can_run_out_inside_one_action_and_bad_actions_are_clear_errors():
    env = gym.make("textgym/ArithmeticText-v0")  # 6 new tokens
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(" 1 2 3 4 5 6 7 8")
    assert truncated and not terminated and info["action_tokens"] == 6 and info["dropped_tokens"] == 2
    env.reset(seed=0)
    with pytest.raises(TypeError, match="one turn as a str"):
        env.step(17)
    with pytest.raises(TypeError, match="wraps a textgym TextGenerationEnv"):
        TextActionEnv(gym.make("CartPole-v1"))


def test_the_wrapper_over_an_env_built_with_kwargs():
    env = TextActionEnv(gym.make("textgym/Calculator-v0", split="test", max_new_tokens=32))
    obs, _ = env.reset(seed=1)
    assert obs.startswith("Q: ") and env.action_space.max_length == 32
    sample = env.action_space.sample()
    _, reward, *_ = env.step(sample)
    assert np.isfinite(reward)
