"""Stock Stable-Baselines3 PPO improving a textgym task from its warm start: no change to SB3.

    python examples/sb3_ppo.py                                  # Sentiment, 30k tokens: ~5 minutes on 1 CPU core
    python examples/sb3_ppo.py --env textgym/Arithmetic-v0      # 60k tokens
    python examples/sb3_ppo.py --pretrained runs/sentiment      # start from a `textgym train` run instead

What it takes (the task's entry in textgym/configs/rl_zoo3/ppo.yml, which rl-zoo3 reads too):

* the policy, ``agents.TransformerPolicy``, warm-started in one argument: ``policy_kwargs={"pretrained": ...}``
  (a model directory, a run directory, or ``"warm-start:sentiment"``: the shipped config's supervised warm start,
  computed once and cached under $TEXTGYM_CACHE);
* the KL-to-reference shaping, ``agents.sb3_reference.ReferenceKLReward`` around the vector env: each reward gets
  ``-beta (log pi - log pi_ref)`` of the token taken, so the policy stays near its warm start (SB3's PPO has no
  reference model of its own);
* the entry's PPO hyperparameters (small learning rate, gamma 1).

Then it scores the held-out test prompts before and after, greedy and sampled, with the diversity a reward
alone hides (distinct-2, distinct greedy completions), and checks that ``PPO.save``/``PPO.load`` round-trips.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from stable_baselines3 import PPO

import textgym  # noqa: F401  (registers the ids)
from agents.commands import make_train_env
from agents.pretrained import resolve_model
from agents.sb3_zoo import evaluate_sb3, make_zoo_ppo, policy_kwargs_of, zoo_hyperparams


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="textgym/Sentiment-v0", help="a textgym id with a tuned rl-zoo3 entry")
    p.add_argument("--pretrained", help="warm start (default: the entry's, e.g. warm-start:sentiment)")
    p.add_argument("--timesteps", type=int, help="environment steps (generated tokens; default: the entry's)")
    p.add_argument("--n-envs", type=int, help="SB3 DummyVecEnv slots (default: the entry's)")
    p.add_argument("--eval-episodes", type=int, default=128, help="held-out test prompts scored")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    spec = args.pretrained or policy_kwargs_of(zoo_hyperparams(args.env))["pretrained"]
    warm_start = resolve_model(spec)
    reference = resolve_model(warm_start, role="reference")  # a frozen copy, also what the metrics compare with
    model, entry_timesteps = make_zoo_ppo(args.env, seed=args.seed, pretrained=warm_start, reference=reference,
                                          n_envs=args.n_envs, device="cpu")
    eval_env = make_train_env({"env": args.env, "num_envs": min(args.eval_episodes, 64)}, split="test")
    before = evaluate_sb3(model, eval_env, args.eval_episodes, reference, seed=args.seed)
    timesteps = args.timesteps or entry_timesteps
    model.learn(timesteps)
    after = evaluate_sb3(model, eval_env, args.eval_episodes, reference, seed=args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ppo_transformer"
        model.save(path)
        loaded = PPO.load(path, env=model.get_env(), device="cpu")
    obs = model.get_env().reset()
    same = (model.predict(obs, deterministic=True)[0] == loaded.predict(obs, deterministic=True)[0]).all()

    print(f"{args.env}, {timesteps} tokens of stock SB3 PPO from {spec}; held-out test prompts ({args.eval_episodes}):")
    for label, key, fmt in (("reward", "reward_mean", "{:.3f}"), ("distinct-2", "distinct_2", "{:.3f}"),
                            ("distinct completions", "distinct_completions", "{:d}")):
        cells = [f"{mode} {fmt.format(before[mode][key])} -> {fmt.format(after[mode][key])}" for mode in ("greedy", "sampled")]
        print(f"  {label:22s} {'   '.join(cells)}")
    print(f"  KL to the warm start (nats per sampled completion): {after['sampled'].get('kl_to_reference', 0.0):.2f}; "
          f"saved and reloaded policy predicts the same tokens: {bool(same)}")
    return {"before": before, "after": after, "reload_matches": bool(same), "timesteps": int(model.num_timesteps)}


if __name__ == "__main__":
    main()
