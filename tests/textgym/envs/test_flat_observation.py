"""``observation="flat"`` and the ``textgym/<Task>Flat-v0`` ids: one Box of ids + mask, for scripts written for
flat observations (CleanRL's ``ppo.py``, SB3's ``MlpPolicy``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import textgym  # noqa: F401  (registers the ids)
from envs_registry import BUILTIN_ENVS
from textgym.envs.core import split_flat_observation


@pytest.mark.parametrize("env_id", sorted(BUILTIN_ENVS))
def test_every_id_has_a_flat_variant_with_a_box_observation(env_id):
    env = gym.make(env_id.replace("-v0", "Flat-v0"))
    dict_env = gym.make(env_id)
    length = dict_env.observation_space["input_ids"].shape[0]
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.shape == (2 * length,) and space.dtype == np.int64
    assert (space.high[length:] == 1).all() and (space.high[:length] == dict_env.action_space.n - 1).all()


def test_flat_observation_holds_the_ids_then_the_mask():
    flat, plain = gym.make("textgym/Arithmetic-v0", observation="flat"), gym.make("textgym/Arithmetic-v0")
    obs, _ = flat.reset(seed=3)
    expected, _ = plain.reset(seed=3)
    for token in (5, 17, 1):
        assert flat.observation_space.contains(obs)
        recovered = split_flat_observation(obs)
        assert set(recovered) == {"input_ids", "attention_mask"}
        for key in recovered:
            np.testing.assert_array_equal(recovered[key], expected[key])
        obs, *_ = flat.step(token)
        expected, *_ = plain.step(token)
    with pytest.raises(ValueError, match="observation must be 'dict' or 'flat'"):
        gym.make("textgym/Arithmetic-v0", observation="box")


def test_flat_vector_env_for_cleanrl_style_scripts():
    envs = gym.make_vec("textgym/ArithmeticFlat-v0", num_envs=3, autoreset_mode=AutoresetMode.SAME_STEP)
    length = 2 * (envs.unwrapped.max_prompt_tokens + envs.unwrapped.max_new_tokens)
    assert envs.single_observation_space.shape == (length,)  # CleanRL: np.array(...shape).prod() inputs
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, length)
    for _ in range(envs.unwrapped.max_new_tokens):
        obs, _, terminated, truncated, infos = envs.step(np.full(3, 7))
    assert truncated.all() and infos["final_obs"][0].shape == (length,)
    assert split_flat_observation(obs)["attention_mask"].shape == (3, length // 2)


def test_cleanrl_ppo_setup_runs_on_a_flat_id_unchanged():
    """CleanRL ppo.py's env and agent setup, as written there (SyncVectorEnv, RecordEpisodeStatistics, an MLP
    sized by single_observation_space.shape and single_action_space.n)."""
    import torch

    def make_env():
        return gym.wrappers.RecordEpisodeStatistics(gym.make("textgym:textgym/ArithmeticFlat-v0"))

    envs = gym.vector.SyncVectorEnv([make_env for _ in range(2)])  # ppo.py: gym.make(args.env_id)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete)
    actor = torch.nn.Sequential(torch.nn.Linear(int(np.array(envs.single_observation_space.shape).prod()), 64),
                                torch.nn.Tanh(), torch.nn.Linear(64, envs.single_action_space.n))
    obs, _ = envs.reset(seed=1)
    episodes = 0
    for _ in range(2 * envs.envs[0].unwrapped.max_new_tokens):
        action = torch.distributions.Categorical(logits=actor(torch.Tensor(obs))).sample()
        obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
        episodes += int(infos.get("_episode", np.zeros(2, dtype=bool)).sum())
    assert episodes >= 2
