"""Stock Stable-Baselines3 PPO training the Transformer policy on a textgym task: no change to SB3.

    python examples/sb3_ppo.py                      # ~2 minutes on 2 CPU cores
    python examples/sb3_ppo.py --timesteps 256      # a smoke run

The policy is ``agents.TransformerPolicy`` (an SB3 ``ActorCriticPolicy`` over a Hugging Face LM, with a per-slot
KV cache during rollouts); everything else is SB3 as you know it: ``learn``, ``save``, ``load``, ``predict``,
``evaluate_policy``. For speed on long generations and big vocabularies use TokenPPO (``tokenppo_sentiment.py``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import textgym  # noqa: F401  (registers the ids)
from agents.policies import TransformerPolicy


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="textgym/Arithmetic-v0", help="textgym env id")
    p.add_argument("--timesteps", type=int, default=4096, help="environment steps (generated tokens)")
    p.add_argument("--n-envs", type=int, default=8, help="SB3 DummyVecEnv slots")
    p.add_argument("--model-size", default="tiny", help="size of the built-in model: tiny, small, medium")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    envs = make_vec_env(args.env, n_envs=args.n_envs, seed=args.seed)
    model = PPO(
        TransformerPolicy, envs, n_steps=64, batch_size=128, n_epochs=2, learning_rate=3e-4, ent_coef=0.0,
        policy_kwargs={"model_config": {"size": args.model_size}}, seed=args.seed, verbose=0,
    )
    eval_env = Monitor(gym.make(args.env, split="test"))
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=16)
    model.learn(args.timesteps)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=16)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ppo_transformer"
        model.save(path)
        loaded = PPO.load(path, env=envs)
    obs, _ = eval_env.reset(seed=1)
    same = (model.predict(obs, deterministic=True)[0] == loaded.predict(obs, deterministic=True)[0]).all()
    print(f"{args.env}: mean reward {before:.3f} -> {after:.3f} after {args.timesteps} steps; "
          f"saved and reloaded policy predicts the same token: {bool(same)}")
    return {"before": before, "after": after, "reload_matches": bool(same)}


if __name__ == "__main__":
    main()
