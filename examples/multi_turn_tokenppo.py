"""TokenPPO on a multi-turn id (a tool, a game): a warm start on the agent's turns, then PPO; reward before and after.

    python examples/multi_turn_tokenppo.py                                  # Calculator, a few minutes on 2 cores
    python examples/multi_turn_tokenppo.py --env textgym/GuessNumber-v0 --seed 1
    python examples/multi_turn_tokenppo.py --quick                          # a smoke run (seconds)

The env writes its own text between the agent's turns (the calculator's result, the game's "higher" / "lower").
The warm start replays each training record's ``agent_turns`` through the env and trains on the agent's tokens
only (``supervised_warm_start(..., replay_env=...)``); TokenPPO then feeds the env's tokens through its KV cache
as context and keeps them out of the KL, the advantages and the loss (docs/theory.md section 11). Reward is the
task's on held-out test prompts, greedy and sampled, after the warm start ("before") and after PPO ("after").

Measured (BENCHMARKS.md section 7; Calculator, ``--num-envs 128 --group-size 8 --learning-rate 2e-5 --top-k 8
--timesteps 40000``, seeds 0 / 1 / 2): greedy 0.714 -> 0.753, 0.785 -> 0.793, 0.808 -> 0.855; sampled 0.293 -> 0.332,
0.442 -> 0.418, 0.441 -> 0.582. These are the defaults; 64 conversations per rollout at lr 1e-4 without top-k lowered both on seed 0.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode

import textgym  # noqa: F401  (registers the ids)
from agents.models import build_default_model
from agents.ppo import TokenPPO
from agents.ppo.sft import supervised_warm_start


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="textgym/Calculator-v0", help="a multi-turn id")
    p.add_argument("--timesteps", type=int, default=40000, help="PPO's budget of agent tokens")
    p.add_argument("--sft-steps", type=int, default=600, help="warm-start steps")
    p.add_argument("--num-envs", type=int, default=128, help="episodes per rollout (group_size answers per prompt)")
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--eval-episodes", type=int, default=128, help="held-out test prompts")
    p.add_argument("--model-size", default="tiny", help="build_default_model size (tiny: 0.4M parameters)")
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--top-k", type=int, default=8, help="sample among the k likeliest tokens (0: all)")
    p.add_argument("--kl-coef", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.timesteps, args.sft_steps, args.num_envs, args.eval_episodes = 64, 5, 8, 8
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    make = dict(num_envs=args.num_envs, autoreset_mode=AutoresetMode.DISABLED)
    env, test_env = gym.make_vec(args.env, **make), gym.make_vec(args.env, split="test", **make)
    base = env.unwrapped
    model = build_default_model(tokenizer=base.tokenizer, size=args.model_size, seed=args.seed)
    records = base.prompt_source if not args.quick else [base.prompt_source[i] for i in range(64)]
    supervised_warm_start(model, base.tokenizer, records, max_prompt_tokens=base.max_prompt_tokens,
                          max_new_tokens=base.max_new_tokens, steps=args.sft_steps, batch_size=64, learning_rate=1e-3,
                          seed=args.seed, log_every=max(args.sft_steps // 3, 1), replay_env=gym.make(args.env))
    sft_s = time.perf_counter() - start
    # RLOO over group_size conversations per prompt: no critic to fit, the KL keeps the warm start's format.
    algo = TokenPPO(model, env, learning_rate=args.learning_rate, n_epochs=2, batch_size=32, baseline="rloo",
                    group_size=args.group_size, top_k=args.top_k, kl_coef=args.kl_coef, seed=args.seed, device="cpu")

    def rewards() -> tuple[float, float]:
        return tuple(algo.evaluate(test_env, num_episodes=args.eval_episodes, deterministic=d)["reward_mean"]
                     for d in (True, False))

    before = rewards()
    print(f"after the warm start ({sft_s:.0f} s): test reward greedy {before[0]:.3f}, sampled {before[1]:.3f}")
    ppo_start = time.perf_counter()
    algo.learn(total_timesteps=args.timesteps)
    ppo_s = time.perf_counter() - ppo_start
    after = rewards()
    m = algo.last_metrics
    print(f"{args.env} test reward: greedy {before[0]:.3f} -> {after[0]:.3f}, sampled {before[1]:.3f} -> {after[1]:.3f} "
          f"({algo.num_timesteps} agent tokens, PPO {ppo_s:.0f} s, KL {m['train/kl']:.2f}, total "
          f"{time.perf_counter() - start:.0f} s on {torch.get_num_threads()} threads)")
    return {"before": before[0], "after": after[0], "before_sampled": before[1], "after_sampled": after[1],
            "ppo_s": ppo_s}


if __name__ == "__main__":
    main()
