"""The natively batched vector env, gym.make_vec in all three modes, and autoreset semantics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from tests.conftest import count_words
from textgym.envs.vector_env import TextGenerationVectorEnv


class RecordingReward:
    """Counts words and records the batch size of every call."""

    def __init__(self):
        self.batch_sizes = []

    def __call__(self, prompts, completions, **kw):
        self.batch_sizes.append(len(completions))
        return [float(len(c.split())) for c in completions]


def make_vec(n, prompts, **kw):
    kw.setdefault("reward", count_words)
    return TextGenerationVectorEnv(num_envs=n, prompts=prompts, max_prompt_tokens=24, max_new_tokens=4, **kw)


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync", "async"])
def test_make_vec_works_in_all_three_modes(mode, tokenizer):
    envs = gym.make_vec("textgym/Arithmetic-v0", num_envs=3, vectorization_mode=mode)
    try:
        obs, infos = envs.reset(seed=0)
        assert obs["input_ids"].shape == (3, envs.single_observation_space["input_ids"].shape[0])
        finished = 0
        for _ in range(2 * 6 + 2):  # > two episodes of the 6-token limit
            obs, rewards, term, trunc, infos = envs.step(np.full(3, tokenizer.encode(" 4")[0]))
            assert rewards.shape == (3,) and term.dtype == bool
            finished += int((term | trunc).sum())
        assert finished >= 6
        assert envs.observation_space.contains(obs)
    finally:
        envs.close()


def test_native_vector_env_is_the_vector_entry_point():
    envs = gym.make_vec("textgym/Sentiment-v0", num_envs=4)
    assert isinstance(envs.unwrapped, TextGenerationVectorEnv)


def test_finished_episodes_are_scored_in_one_batched_call(small_prompts, tokenizer):
    reward = RecordingReward()
    envs = make_vec(8, small_prompts, reward=reward)
    envs.reset(seed=0)
    word = tokenizer.encode(" hi")[0]
    envs.step(np.full(8, word))
    _, rewards, term, trunc, infos = envs.step(np.full(8, tokenizer.eos_token_id))
    assert term.all() and not trunc.any()
    assert reward.batch_sizes == [8]  # one call for all 8 finished slots
    assert rewards.tolist() == [1.0] * 8
    assert infos["_completion"].all() and set(infos["completion"]) == {tokenizer.decode([word])}


def test_native_matches_single_env_episode_by_episode(small_prompts, tokenizer):
    """Same prompt and same actions: the vector env's slot and the single env give the same obs and reward."""
    from textgym.envs.text_env import TextGenerationEnv

    single = TextGenerationEnv(prompts=small_prompts, reward=count_words, max_prompt_tokens=24, max_new_tokens=4)
    envs = make_vec(3, small_prompts)
    vobs, _ = envs.reset(options={"prompt_indices": [0, 1, 2]})
    actions = tokenizer.encode(" one two three")[:3] + [tokenizer.eos_token_id]
    for slot in range(3):
        obs, _ = single.reset(options={"prompt_index": slot})
        assert (obs["input_ids"] == vobs["input_ids"][slot]).all()
    per_slot = [[] for _ in range(3)]
    for slot in range(3):
        single.reset(options={"prompt_index": slot})
        for a in actions:
            per_slot[slot].append(single.step(a)[1])
    vector_rewards = []
    for a in actions:
        vector_rewards.append(envs.step(np.full(3, a))[1])
    assert np.allclose(np.array(vector_rewards).T, np.array(per_slot))


def test_next_step_autoreset_ignores_the_action_after_the_end(small_prompts, tokenizer):
    envs = make_vec(2, small_prompts)
    envs.reset(seed=0)
    eos, word = tokenizer.eos_token_id, tokenizer.encode(" hi")[0]
    _, _, term, _, _ = envs.step(np.array([eos, word]))
    assert term.tolist() == [True, False]
    obs, rewards, term, trunc, infos = envs.step(np.array([word, word]))
    # Slot 0 was reset: no token written, reward 0, not done; slot 1 went on.
    P = envs.max_prompt_tokens
    assert obs["attention_mask"][0, P:].sum() == 0 and obs["attention_mask"][1, P:].sum() == 2
    assert rewards[0] == 0 and not term[0] and infos["_prompt"][0]


def test_same_step_autoreset_reports_final_obs(small_prompts, tokenizer):
    envs = make_vec(2, small_prompts, autoreset_mode=AutoresetMode.SAME_STEP)
    envs.reset(seed=0)
    eos, word = tokenizer.eos_token_id, tokenizer.encode(" hi")[0]
    obs, rewards, term, _, infos = envs.step(np.array([eos, word]))
    assert term.tolist() == [True, False]
    assert infos["_final_obs"].tolist() == [True, False]
    P = envs.max_prompt_tokens
    assert infos["final_obs"][0]["input_ids"][P] == eos  # the finished episode's last observation
    assert obs["attention_mask"][0, P:].sum() == 0  # already the next episode
    assert infos["final_info"]["completion"][0] == ""


def test_disabled_autoreset_freezes_finished_slots_until_reset_mask(small_prompts, tokenizer):
    envs = make_vec(3, small_prompts, autoreset_mode="Disabled")
    envs.reset(seed=0, options={"prompt_indices": [1, 1, 1]})
    eos, word = tokenizer.eos_token_id, tokenizer.encode(" hi")[0]
    obs1, _, term, _, _ = envs.step(np.array([eos, word, word]))
    obs2, rewards, term2, _, _ = envs.step(np.array([word, word, eos]))
    assert (obs2["input_ids"][0] == obs1["input_ids"][0]).all() and rewards[0] == 0
    assert term2.tolist() == [True, False, True]
    obs3, _ = envs.reset(options={"reset_mask": [True, False, False]})
    assert obs3["attention_mask"][0, envs.max_prompt_tokens :].sum() == 0
    assert (obs3["input_ids"][1] == obs2["input_ids"][1]).all()
    with pytest.raises(ValueError, match="reset_mask"):
        make_vec(2, small_prompts).reset(options={"reset_mask": [True, False]})


def test_prompt_indices_choose_prompts_and_bad_options_are_errors(small_prompts):
    envs = make_vec(4, small_prompts)
    _, infos = envs.reset(options={"prompt_indices": [2, 2, 0, 0]})
    assert infos["prompt"].tolist() == [small_prompts[i]["prompt"] for i in (2, 2, 0, 0)]
    with pytest.raises(ValueError, match="prompt_indices"):
        envs.reset(options={"prompt_indices": [0, 9, 0, 0]})
    with pytest.raises(ValueError, match="Unknown reset option"):
        envs.reset(options={"prompt_idx": [0, 0, 0, 0]})
    with pytest.raises(ValueError, match="num_envs"):
        make_vec(0, small_prompts)


def test_vector_reset_seed_is_deterministic(small_prompts):
    envs = make_vec(6, small_prompts * 5)
    a = envs.reset(seed=3)[0]["input_ids"]
    b = envs.reset(seed=3)[0]["input_ids"]
    assert (a == b).all()


def test_vector_action_masks_and_render(small_prompts):
    envs = make_vec(2, small_prompts, render_mode="ansi", allowed_token_ids=[4])
    envs.reset(options={"prompt_indices": [0, 1]})
    assert envs.action_masks().shape == (2, envs.tokenizer.vocab_size)
    assert envs.render()[0] == "The movie was[]"
