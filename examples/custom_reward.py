"""Your reward function as a new env id, trained with TokenPPO.

    python examples/custom_reward.py                 # ~1 minute on 2 CPU cores
    python examples/custom_reward.py --iterations 1  # a smoke run

The reward is a plain function in TRL's shape (textgym calls it by keyword, as TRL does:
``reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields) -> list[float]``);
``textgym.register_reward_env`` turns it (plus prompts) into an id that ``gym.make`` / ``gym.make_vec`` accept.
Here: length control, completions of exactly four words, reusing the Sentiment task's prompts.
"""

from __future__ import annotations

import argparse

import textgym
from agents.models import build_default_model
from agents.ppo import TokenPPO
from agents.ppo.sft import supervised_warm_start

TARGET_WORDS = 4


def four_words(prompts, completions, **fields):
    """1 for exactly four words, 0.5 one word off, 0 further off."""
    return [max(0.0, 1.0 - 0.5 * abs(len(c.split()) - TARGET_WORDS)) for c in completions]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=10, help="TokenPPO iterations")
    p.add_argument("--num-envs", type=int, default=32, help="episodes per rollout")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    env_id = textgym.register_reward_env("examples/FourWords-v0", four_words, task="sentiment",
                                         max_new_tokens=16, overwrite=True)
    algo = TokenPPO("default", env_id, num_envs=args.num_envs, learning_rate=3e-4, batch_size=16, n_epochs=2,
                    kl_coef=0.0, policy_kwargs={"size": "tiny"}, seed=args.seed, device="cpu")
    base = algo.env.unwrapped
    supervised_warm_start(algo.policy, base.tokenizer, base.prompt_source, max_prompt_tokens=base.max_prompt_tokens,
                          max_new_tokens=base.max_new_tokens, steps=50, batch_size=32, seed=args.seed, log=None)
    before = algo.evaluate(num_episodes=args.num_envs, deterministic=False)["reward_mean"]
    algo.learn(args.iterations * args.num_envs * base.max_new_tokens)
    after = algo.evaluate(num_episodes=args.num_envs, deterministic=False)["reward_mean"]
    print(f"{env_id}: mean reward (1 = exactly {TARGET_WORDS} words) {before:.2f} -> {after:.2f}")
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
