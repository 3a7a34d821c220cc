"""TextGenerationEnv: layout, episode ends, rewards, errors, seeding, rendering, checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import textgym
from envs_registry import BUILTIN_ENVS
from tests.conftest import count_words, run_episode
from textgym.envs.text_env import TextGenerationEnv


def make_env(prompts, **kw):
    kw.setdefault("reward", count_words)
    kw.setdefault("max_prompt_tokens", 24)
    kw.setdefault("max_new_tokens", 5)
    return TextGenerationEnv(prompts=prompts, **kw)


@pytest.mark.parametrize("env_id", sorted(BUILTIN_ENVS))
def test_every_registered_id_passes_both_env_checkers_without_warnings(env_id):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning from either checker fails the test
        gym_check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env.unwrapped, warn=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert isinstance(info["prompt"], str) and info["prompt"]


def test_observation_layout_prompt_left_padded_and_tokens_appended(small_prompts, tokenizer):
    env = make_env(small_prompts)
    obs, info = env.reset(options={"prompt_index": 1})
    ids = tokenizer.encode(small_prompts[1]["prompt"])
    P = env.max_prompt_tokens
    assert obs["input_ids"][P - len(ids) : P].tolist() == ids
    assert obs["attention_mask"].tolist() == [0] * (P - len(ids)) + [1] * len(ids) + [0] * env.max_new_tokens
    token = tokenizer.encode(" hello")[0]
    obs2, reward, term, trunc, _ = env.step(token)
    assert obs2["input_ids"][P] == token and obs2["attention_mask"][P] == 1
    # The new observation is the old one plus exactly one token at index P: what the policy's KV cache relies on.
    changed = np.flatnonzero(obs2["input_ids"] != obs["input_ids"])
    assert changed.tolist() in ([P], [])
    assert (reward, term, trunc) == (0.0, False, False)


def test_eos_terminates_and_scores_text_without_eos(small_prompts, tokenizer):
    env = make_env(small_prompts)
    words = tokenizer.encode(" good fun")
    _, rewards, info, (term, trunc) = run_episode(env, [*words, tokenizer.eos_token_id], options={"prompt_index": 0})
    assert term and not trunc
    assert info["completion"] == tokenizer.decode(words)
    assert rewards[:-1] == [0.0] * len(words) and rewards[-1] == 2.0
    assert info["reward_components"] and info["prompt"] == "The movie was"


def test_length_limit_truncates(small_prompts, tokenizer):
    env = make_env(small_prompts, max_new_tokens=3)
    a = tokenizer.encode(" yes")[0]
    _, rewards, info, (term, trunc) = run_episode(env, [a] * 3, seed=1)
    assert trunc and not term and len(rewards) == 3
    assert info["num_new_tokens"] == 3


def test_stepping_after_end_or_before_reset_is_a_clear_error(small_prompts, tokenizer):
    env = make_env(small_prompts)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    run_episode(env, [tokenizer.eos_token_id])
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step(0)


@pytest.mark.parametrize(
    "action, error, match",
    [
        (3.5, TypeError, "integer token ids"),
        ("7", TypeError, "integer token ids"),
        (-1, ValueError, "outside the action space"),
        (10**7, ValueError, "outside the action space"),
        (np.array([1, 2]), ValueError, "Expected 1 action"),
    ],
)
def test_bad_actions_name_the_cause(small_prompts, action, error, match):
    env = make_env(small_prompts)
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(action)


def test_reset_seed_is_deterministic(small_prompts):
    env = make_env(small_prompts * 10)
    first = [env.reset(seed=42)[1]["prompt_index"]] + [env.reset()[1]["prompt_index"] for _ in range(8)]
    second = [env.reset(seed=42)[1]["prompt_index"]] + [env.reset()[1]["prompt_index"] for _ in range(8)]
    assert first == second and len(set(first)) > 1


def test_unknown_reset_options_are_rejected_as_the_vector_env_does(small_prompts):
    env = make_env(small_prompts)
    assert env.reset(options={"prompt_index": 2})[1]["prompt_index"] == 2
    with pytest.raises(ValueError, match=r"^Unknown reset option\(s\) \['prompt_idx'\]; accepted: 'prompt_index'\.$"):
        env.reset(options={"prompt_idx": 2})  # a misspelling used to be ignored (a random prompt instead)
    vector = gym.make_vec("textgym/Sentiment-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match=r"^Unknown reset option\(s\) \['prompt_idx'\]; accepted: 'prompt_indices', 'reset_mask'\.$"):
        vector.reset(options={"prompt_idx": 2})


def test_render_ansi_and_human(small_prompts, tokenizer, capsys):
    env = make_env(small_prompts, render_mode="ansi")
    env.reset(options={"prompt_index": 0})
    env.step(tokenizer.encode(" great")[0])
    assert env.render() == "The movie was[ great]"
    human = make_env(small_prompts, render_mode="human")
    human.reset(options={"prompt_index": 0})
    assert "The movie was[]" in capsys.readouterr().out
    image = make_env(small_prompts, render_mode="rgb_array")
    image.reset(options={"prompt_index": 0})
    frame = image.render()
    assert frame.shape == (160, 480, 3) and frame.dtype == np.uint8 and (frame < 128).any()  # some dark text
    with pytest.raises(ValueError, match="render_mode"):
        make_env(small_prompts, render_mode="video")


def test_action_masks_restrict_tokens_and_always_allow_eos(small_prompts, tokenizer):
    env = make_env(small_prompts, allowed_token_ids=[5, 6, 7])
    mask = env.action_masks()
    assert mask.shape == (tokenizer.vocab_size,) and mask.dtype == bool
    assert set(np.flatnonzero(mask)) == {5, 6, 7, tokenizer.eos_token_id}
    assert make_env(small_prompts).action_masks().all()
    with pytest.raises(ValueError, match="allowed_token_ids"):
        make_env(small_prompts, allowed_token_ids=[tokenizer.vocab_size])


def test_overlong_prompt_keeps_its_end_with_a_warning(tokenizer):
    long = " ".join(["word"] * 50) + " final"
    env = make_env([{"prompt": long}], max_prompt_tokens=8)
    with pytest.warns(UserWarning, match="max_prompt_tokens=8"):
        obs, _ = env.reset(seed=0)
    assert obs["attention_mask"][:8].all()
    assert obs["input_ids"][:8].tolist() == tokenizer.encode(long)[-8:]


def test_non_ascii_text_round_trips(tokenizer):
    env = make_env([{"prompt": "Été à Zürich — naïve café 東京"}], max_prompt_tokens=48, max_new_tokens=32)
    env.reset(seed=0)
    ids = tokenizer.encode(" très bien ✓")
    for a in ids:
        env.step(a)
    *_, info = env.step(tokenizer.eos_token_id)
    assert info["completion"] == tokenizer.decode(ids)
    assert "très" in info["completion"]


def test_unknown_kwarg_suggests_the_right_name(small_prompts):
    with pytest.raises(TypeError, match="max_new_tokens"):
        TextGenerationEnv(prompts=small_prompts, reward=count_words, max_new_token=4)
    with pytest.raises(gym.error.Error):
        gym.make("textgym/Sentimen-v0")


def test_missing_prompts_or_reward_and_bad_lengths_are_clear_errors(small_prompts):
    with pytest.raises(ValueError, match="needs prompts"):
        TextGenerationEnv(reward=count_words)
    with pytest.raises(ValueError, match="needs a reward"):
        TextGenerationEnv(prompts=small_prompts)
    with pytest.raises(ValueError, match="max_new_tokens"):
        make_env(small_prompts, max_new_tokens=0)
    with pytest.raises(ValueError, match="Unknown textgym task"):
        TextGenerationEnv(task="poetry")


@pytest.mark.parametrize(
    "bad_reward, match",
    [
        (lambda prompts, completions, **kw: [1.0] * (len(completions) + 1), "values"),
        (lambda prompts, completions, **kw: [float("nan")] * len(completions), "NaN"),
        (lambda prompts, completions, **kw: 1 / 0, "ZeroDivisionError|division"),
    ],
)
def test_broken_reward_is_named_in_the_error(small_prompts, tokenizer, bad_reward, match):
    from textgym.rewards import RewardError

    env = make_env(small_prompts, reward=bad_reward)
    env.reset(seed=0)
    with pytest.raises(RewardError, match=match):
        env.step(tokenizer.eos_token_id)


def test_reward_fallback_keeps_the_episode_going(small_prompts, tokenizer):
    env = make_env(small_prompts, reward=lambda prompts, completions, **kw: 1 / 0, reward_fallback=-1.0)
    env.reset(seed=0)
    with pytest.warns(UserWarning):
        _, reward, term, _, _ = env.step(tokenizer.eos_token_id)
    assert term and reward == -1.0


def test_fields_reach_the_reward(small_prompts, tokenizer):
    seen = {}

    def reward(prompts, completions, answer, **kw):
        seen["answer"] = answer
        return [0.0] * len(prompts)

    env = make_env(small_prompts, reward=reward)
    env.reset(options={"prompt_index": 2})
    env.step(tokenizer.eos_token_id)
    assert seen["answer"] == ["7"]


def test_step_reward_shaping_is_added_each_step(small_prompts, tokenizer):
    env = make_env(small_prompts, step_reward=lambda ids, actions, n: -0.1 * np.ones(len(actions)))
    tok = tokenizer.encode(" ok")[0]
    _, rewards, _, _ = run_episode(env, [tok, tokenizer.eos_token_id], seed=0)
    assert rewards[0] == pytest.approx(-0.1) and rewards[1] == pytest.approx(-0.1 + 1.0)


def test_split_selects_disjoint_builtin_data():
    train = gym.make("textgym/Arithmetic-v0").unwrapped.prompt_source
    test = gym.make("textgym/Arithmetic-v0", split="test").unwrapped.prompt_source
    train_prompts = {train[i]["prompt"] for i in range(len(train))}
    assert not any(test[i]["prompt"] in train_prompts for i in range(len(test)))


def test_env_ids_lists_builtins():
    assert set(BUILTIN_ENVS) <= set(textgym.env_ids())
