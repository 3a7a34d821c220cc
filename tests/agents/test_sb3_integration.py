
"""Stock stable_baselines3.PPO trains TransformerPolicy on a real textgym id: learn, save, load, predict, evaluate."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import textgym  # noqa: F401  (registers the ids)
from agents.policies import TransformerPolicy

pytestmark = pytest.mark.usefixtures("single_thread")

ENV_ID = "textgym/Arithmetic-v0"


def test_stock_ppo_learns_saves_loads_and_predicts(tmp_path):
    env = DummyVecEnv([lambda: Monitor(gym.make(ENV_ID)) for _ in range(2)])
    env.seed(0)
    model = PPO(
        TransformerPolicy, env, n_steps=64, batch_size=32, n_epochs=2, learning_rate=3e-4, seed=0, device="cpu",
        policy_kwargs={"model_config": {"size": "tiny"}, "top_k": 50},
    )
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(total_timesteps=256)
    after = model.policy.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the update really trained the LM
    stats = model.policy.slot_cache.stats
    assert stats["extended"] > 0 and stats["recomputed"] > 0  # rollouts stepped through the KV cache
    for key in ("train/policy_gradient_loss", "train/value_loss", "train/entropy_loss"):
        assert np.isfinite(model.logger.name_to_value[key])

    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", env=env, device="cpu")
    assert isinstance(loaded.policy, TransformerPolicy) and loaded.policy.top_k == 50
    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    loaded_actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, loaded_actions)
    obs_tensor, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        torch.testing.assert_close(loaded.policy.predict_values(obs_tensor), model.policy.predict_values(obs_tensor))

    mean_reward, std_reward = evaluate_policy(loaded, env, n_eval_episodes=4)
    assert np.isfinite(mean_reward) and np.isfinite(std_reward)


def test_transformer_policy_exports_a_hugging_face_model_with_its_tokenizer(tmp_path):
    from tests.agents.hf_exports import assert_loads_as_hf_model
    from textgym.tokenizers import default_tokenizer

    env = DummyVecEnv([lambda: gym.make(ENV_ID)])
    model = PPO(TransformerPolicy, env, n_steps=8, batch_size=8, seed=0, device="cpu",
                policy_kwargs={"model_config": {"size": "tiny"}})
    model.policy.save_pretrained(tmp_path / "export")
    assert_loads_as_hf_model(tmp_path / "export", default_tokenizer())


def test_transformer_policy_takes_the_flat_observation():
    """PPO(TransformerPolicy) on textgym/ArithmeticFlat-v0 acts exactly as on the Dict id with the same weights."""
    from textgym.envs.core import split_flat_observation

    flat_env = DummyVecEnv([lambda: gym.make("textgym/ArithmeticFlat-v0") for _ in range(2)])
    dict_env = DummyVecEnv([lambda: gym.make(ENV_ID) for _ in range(2)])
    kwargs = dict(n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu", policy_kwargs={"size": "tiny"})
    flat, plain = PPO(TransformerPolicy, flat_env, **kwargs), PPO(TransformerPolicy, dict_env, **kwargs)
    flat.learn(16)
    plain.policy.load_state_dict(flat.policy.state_dict())
    obs = flat_env.reset()
    flat_actions, _ = flat.predict(obs, deterministic=True)
    plain_actions, _ = plain.predict(split_flat_observation(obs), deterministic=True)
    np.testing.assert_array_equal(flat_actions, plain_actions)


@pytest.mark.parametrize(("env_id", "first_turn"), [("textgym/Calculator-v0", " <calc>2*3</calc>"),
                                                    ("textgym/GuessNumber-v0", " 50"),
                                                    ("textgym/MultiTurnDialogue-v0", " How many people?")])
def test_stock_ppo_trains_on_the_multi_turn_ids(env_id, first_turn):
    """Each step is one agent token; the env's text arrives inside the next observation (1 + k new tokens), which
    the per-slot cache prefills as a span."""
    from textgym.tokenizers import default_tokenizer

    tok = default_tokenizer()
    script = tok.encode(first_turn) + ([] if "</calc>" in first_turn else [tok.eos_token_id])

    class ScriptedFirstTurn(gym.Wrapper):
        """Plays a fixed first turn so that an untrained policy's episodes reach the env's reply in every rollout
        (SB3 stores the policy's own action for those steps: a mechanics test, not a learning one)."""

        def reset(self, **kwargs):
            self.count = 0
            return self.env.reset(**kwargs)

        def step(self, action):
            self.count += 1
            return self.env.step(script[self.count - 1] if self.count <= len(script) else action)

    env = DummyVecEnv([lambda: Monitor(ScriptedFirstTurn(gym.make(env_id, max_new_tokens=40))) for _ in range(2)])
    env.seed(0)
    model = PPO(TransformerPolicy, env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"size": "tiny"})
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(total_timesteps=64)
    assert any(not torch.equal(before[k], v) for k, v in model.policy.state_dict().items())
    assert model.policy.slot_cache.span_extensions > 0  # env text was appended and prefilled on the cache
    assert np.isfinite(model.logger.name_to_value["train/value_loss"])
