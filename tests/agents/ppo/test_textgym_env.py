"""TokenPPO on the real textgym vector env (ids, custom reward envs)."""

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

import textgym
from agents.ppo import TokenPPO
from tests.agents.ppo.conftest import tiny_model


def model_for(tokenizer, seed=0):
    return tiny_model(seed, vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id)


def test_trains_on_a_textgym_id_and_saves(tmp_path):
    tok = textgym.default_tokenizer()
    algo = TokenPPO(model_for(tok), "textgym/Arithmetic-v0", num_envs=4, batch_size=4, n_epochs=1, seed=0,
                    env_kwargs={"max_new_tokens": 3})
    assert algo.env.unwrapped.autoreset_mode == AutoresetMode.DISABLED
    algo.learn(8)
    m = algo.last_metrics
    assert 1 <= m["rollout/ep_len_mean"] <= 3 and np.isfinite(m["train/policy_gradient_loss"])
    assert "rollout/reward_numeric_match" in m or any(k.startswith("rollout/reward_") for k in m)
    algo.save(str(tmp_path / "run"))
    loaded = TokenPPO.load(str(tmp_path / "run"))  # the env comes back from the saved id
    assert loaded.env.unwrapped.spec.id == "textgym/Arithmetic-v0"
    assert loaded.env.unwrapped.max_new_tokens == 3 and loaded.num_envs == 4


def test_group_rollout_on_vector_env_with_custom_reward():
    def brevity(prompts, completions, **kw):
        return [1.0 / (1 + len(c)) for c in completions]

    env_id = textgym.register_reward_env("tokenppo-test/Brief-v0", brevity, prompts=[{"prompt": "Describe the sea:"},
                                         {"prompt": "Name a colour:"}], max_new_tokens=4, overwrite=True)
    envs = gym.make_vec(env_id, num_envs=4, autoreset_mode=AutoresetMode.DISABLED)
    tok = envs.unwrapped.tokenizer
    algo = TokenPPO(model_for(tok), envs, baseline="rloo", group_size=2, batch_size=4, seed=0)
    algo.collect_rollout()
    buf = algo.buffer
    assert buf.prompt_indices[0] == buf.prompt_indices[1] and buf.prompt_indices[2] == buf.prompt_indices[3]
    torch.testing.assert_close(buf.scores.double(), torch.tensor([1.0 / (1 + len(c)) for c in algo.last_rollout["completions"]], dtype=torch.float64), atol=1e-6, rtol=0)
    algo.train()


def test_sb3_eval_callback_evaluates_through_predict():
    """SB3's own EvalCallback (evaluate_policy -> TokenPPO.predict on a DummyVecEnv of single textgym envs)."""
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    tok = textgym.default_tokenizer()
    eval_env = DummyVecEnv([lambda: gym.make("textgym/Arithmetic-v0", max_new_tokens=3)])
    callback = EvalCallback(eval_env, n_eval_episodes=2, eval_freq=3)
    algo = TokenPPO(model_for(tok), "textgym/Arithmetic-v0", num_envs=4, env_kwargs={"max_new_tokens": 3}, seed=0)
    algo.learn(12, callback=callback)
    assert callback.n_calls >= 3 and callback.last_mean_reward in (0.0, 0.5, 1.0)


def test_tokenppo_trains_on_a_flat_observation_id():
    from agents.ppo import TokenPPO

    algo = TokenPPO("default", "textgym/ArithmeticFlat-v0", num_envs=4, policy_kwargs={"size": "tiny"}, batch_size=4,
                    n_epochs=1, seed=0, device="cpu")
    algo.learn(30)
    assert algo.iteration >= 1 and algo.buffer.response_mask.sum() > 0
