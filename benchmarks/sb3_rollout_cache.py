"""Rollout speed of TransformerPolicy under stock SB3 PPO, with and without the per-slot KV cache.

Same model weights, same env, same seeds; only ``policy_kwargs["use_cache"]`` differs. A callback times SB3's
``collect_rollouts`` (policy forward + env steps + buffer) from ``on_rollout_start`` to ``on_rollout_end``; the
policy's own time is measured by wrapping ``policy.forward``. Rollouts after the first are timed (warm-up).

    python benchmarks/sb3_rollout_cache.py                      # Arithmetic-v0, n_envs=8, default small model
    python benchmarks/sb3_rollout_cache.py --env textgym/Summarize-v0 --n-steps 64
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

import textgym  # noqa: F401  (registers the ids)
from agents.models import build_default_model
from agents.policies import TransformerPolicy


class RolloutTimer(BaseCallback):
    """Wall time of every ``collect_rollouts`` call."""

    def __init__(self):
        super().__init__()
        self.durations: list[float] = []

    def _on_rollout_start(self) -> None:
        self._start = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.durations.append(time.perf_counter() - self._start)

    def _on_step(self) -> bool:
        return True


def measure(env_id: str, n_envs: int, n_steps: int, rollouts: int, size: str, use_cache: bool, seed: int) -> dict:
    """Rollout tokens/s (and policy-only tokens/s) for one setting."""
    env = DummyVecEnv([lambda: gym.make(env_id) for _ in range(n_envs)])
    env.seed(seed)
    model = build_default_model(env.envs[0].unwrapped.tokenizer, size=size, seed=seed)
    algo = PPO(
        TransformerPolicy, env, n_steps=n_steps, batch_size=n_steps * n_envs, n_epochs=1, seed=seed, device="cpu",
        policy_kwargs={"model": model, "use_cache": use_cache},
    )
    policy_time = [0.0]
    forward = algo.policy.forward

    def timed_forward(*args, **kwargs):
        start = time.perf_counter()
        out = forward(*args, **kwargs)
        policy_time[0] += time.perf_counter() - start
        return out

    algo.policy.forward = timed_forward
    timer = RolloutTimer()
    algo.learn(total_timesteps=n_steps * n_envs, callback=timer)  # warm-up rollout (+ one update)
    policy_time[0] = 0.0
    algo.learn(total_timesteps=rollouts * n_steps * n_envs, callback=timer, reset_num_timesteps=False)
    timed = timer.durations[1:]
    tokens = len(timed) * n_steps * n_envs
    return {
        "rollout_tok_s": tokens / sum(timed),
        "policy_tok_s": tokens / policy_time[0],
        "stats": dict(algo.policy.slot_cache.stats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="textgym/Arithmetic-v0", help="textgym env id")
    parser.add_argument("--n-envs", type=int, default=8, help="parallel env slots (SB3 DummyVecEnv)")
    parser.add_argument("--n-steps", type=int, default=128, help="PPO n_steps (env steps per slot per rollout)")
    parser.add_argument("--rollouts", type=int, default=2, help="timed rollouts per setting (after one warm-up)")
    parser.add_argument("--size", default="small", help="default model size: tiny, small or medium")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    env = gym.make(args.env)
    shape = env.observation_space["input_ids"].shape[0]
    print(f"env={args.env} (P+T={shape}) n_envs={args.n_envs} n_steps={args.n_steps} model={args.size} "
          f"threads={args.threads} torch={torch.__version__}")
    results = {}
    for use_cache in (False, True):
        results[use_cache] = measure(args.env, args.n_envs, args.n_steps, args.rollouts, args.size, use_cache, args.seed)
    print(f"{'use_cache':<10} {'rollout tok/s':>14} {'policy tok/s':>13}   cache paths (slot-steps)")
    for use_cache, r in results.items():
        print(f"{str(use_cache):<10} {r['rollout_tok_s']:>14.1f} {r['policy_tok_s']:>13.1f}   {r['stats']}")
    print(f"speed-up: rollout x{results[True]['rollout_tok_s'] / results[False]['rollout_tok_s']:.2f}, "
          f"policy x{results[True]['policy_tok_s'] / results[False]['policy_tok_s']:.2f}")


if __name__ == "__main__":
    main()
