"""The task table's ``sb3`` rows: stock Stable-Baselines3 PPO with ``TransformerPolicy``, from each task's warm start.

Same protocol and columns as :mod:`benchmarks.task_table` (TokenPPO's rows): per task and seed, the warm start of
the task's shipped config (``textgym/configs/<task>.yaml``, that seed: the same warm start TokenPPO starts from),
scored on the held-out test prompts greedy and sampled, then stock ``stable_baselines3.PPO`` with the task's
rl-zoo3 entry (``textgym/configs/rl_zoo3/ppo.yml``: hyperparameters, KL-to-reference shaping) for the config's
token budget (``total_timesteps``), scored again::

    python -m benchmarks.sb3_table --tasks arithmetic sentiment --seeds 0 1 2 --threads 1
    python -m benchmarks.sb3_table --tasks sentiment --set learning_rate=1e-5 --set ent_coef=0.02   # PPO overrides
    python -m benchmarks.sb3_table --json sb3.json          # also every number, per seed (written after each run)
    python -m benchmarks.sb3_table --from-json a.json b.json   # one table from runs made separately

Sampled evaluation draws from the policy's own sampling controls (its ``top_k``/``top_p``), as TokenPPO's
evaluation draws from its sampler. Rows print in task_table's columns so they can be pasted under its rows.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import torch

from benchmarks.common import machine, parser, setup_torch
from benchmarks.task_table import HEADERS, QUICK_OVERRIDES, load_average, print_markdown, table_rows

ALL_TASKS = ("arithmetic", "sentiment")


def zoo_env_id(config: dict) -> str:
    return config["env"]


def parse_override(item: str) -> tuple[str, Any]:
    from textgym.config import parse_scalar

    key, sep, raw = item.partition("=")
    if not sep:
        raise SystemExit(f"--set takes KEY=VALUE, got {item!r}.")
    return key, parse_scalar(raw, key)


def run_one(task: str, seed: int, overrides: dict[str, Any], config_overrides: list[str], zoo_file: str | None = None) -> dict[str, Any]:
    """Warm start (cached), evaluate, stock SB3 PPO for the config's token budget, evaluate again."""
    from agents.commands import make_train_env, warm_started_model
    from agents.models import ActorCriticLM
    from agents.sb3_zoo import evaluate_sb3, make_zoo_ppo
    from textgym.config import load_config

    config = load_config(task, config_overrides)
    config["seed"] = seed
    env, eval_env = make_train_env({**config, "num_envs": 1}), make_train_env(config, split="test")
    warm = warm_started_model(config, env, log=lambda *a, **k: None)
    reference = ActorCriticLM.from_config(warm.config)
    reference.load_state_dict(warm.state_dict())
    episodes = min(int(config.get("eval_episodes", 128)), len(eval_env.unwrapped.prompt_source))
    policy_overrides = {k[len("policy_kwargs."):]: v for k, v in overrides.items() if k.startswith("policy_kwargs.")}
    ppo_overrides = {k: v for k, v in overrides.items() if not k.startswith("policy_kwargs.") and k != "n_envs"}
    model, _ = make_zoo_ppo(zoo_env_id(config), seed=seed, pretrained=warm, reference=reference,
                            n_envs=overrides.get("n_envs"), overrides={**ppo_overrides, "policy_kwargs": policy_overrides},
                            device="cpu", verbose=0, **({"path": zoo_file} if zoo_file else {}))
    before = evaluate_sb3(model, eval_env, episodes, reference, seed)
    start = time.perf_counter()
    model.learn(int(config["total_timesteps"]))
    rl_seconds = time.perf_counter() - start
    # The last update's SB3 diagnostics (entropy, clip fraction, approx KL, explained variance of the critic).
    last_update = {k: float(v) for k, v in model.logger.name_to_value.items() if k.startswith("train/")}
    after = evaluate_sb3(model, eval_env, episodes, reference, seed)
    return {"task": task, "method": "sb3", "seed": seed, "before": before, "after": after,
            "rl_seconds": rl_seconds, "timesteps": int(model.num_timesteps), "overrides": overrides,
            "last_update": last_update}


def main() -> None:
    p = parser("Stock SB3 PPO + TransformerPolicy on each task from its warm start: held-out reward and diversity.")
    p.add_argument("--tasks", nargs="+", default=list(ALL_TASKS), help="shipped config names (default: arithmetic sentiment)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--json", help="also write every result (per seed) to this JSON file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="replace a key of the rl-zoo3 entry for every run (repeatable): a PPO argument "
                        "(learning_rate=1e-5), n_envs=8, or policy_kwargs.top_k=8")
    p.add_argument("--config-set", dest="config_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a task-config override (warm start, token budget, evaluation), e.g. total_timesteps=8000")
    p.add_argument("--zoo-file", help="an rl-zoo3 hyperparameter file to use instead of the shipped one")
    p.add_argument("--from-json", nargs="+", metavar="FILE",
                   help="print the table of results saved by earlier --json runs (nothing is trained)")
    args = p.parse_args()
    if args.from_json:
        saved = [r for path in args.from_json for r in json.load(open(path))]
        print_markdown(table_rows(sorted(saved, key=lambda r: (r["task"], r["seed"]))))
        return
    overrides = dict(parse_override(item) for item in args.overrides)
    config_overrides = list(args.config_overrides)
    if args.quick:  # a smoke test of the script, not a measurement
        args.tasks, args.seeds = args.tasks[:1], args.seeds[:1]
        config_overrides += QUICK_OVERRIDES
        overrides.update(n_envs=2, n_steps=16, batch_size=16, n_epochs=1)
    setup_torch(args.threads)
    print(f"## SB3 rows of the task table ({machine()}; load average {load_average()} at the start)\n")
    print(f"Tasks {' '.join(args.tasks)}; seeds {' '.join(map(str, args.seeds))}; rl-zoo3 overrides "
          f"{' '.join(args.overrides) or 'none'}; config overrides {' '.join(config_overrides) or 'none'}.\n", flush=True)
    results = []
    for task in args.tasks:
        for seed in args.seeds:
            r = run_one(task, seed, overrides, config_overrides, args.zoo_file)
            results.append(r)
            print(f"{task} sb3 seed {seed}: greedy {r['before']['greedy']['reward_mean']:.3f} -> "
                  f"{r['after']['greedy']['reward_mean']:.3f}, sampled {r['before']['sampled']['reward_mean']:.3f} -> "
                  f"{r['after']['sampled']['reward_mean']:.3f}, distinct-2 {r['after']['sampled']['distinct_2']:.3f}, "
                  f"greedy distinct {r['after']['greedy']['distinct_completions']} ({r['rl_seconds']:.0f} s)",
                  file=sys.stderr, flush=True)
            if args.json:  # written after every run: an interrupted table keeps what it measured
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)
    print_markdown(table_rows(results))
    print(f"\nLoad average at the end: {load_average()}; torch threads {torch.get_num_threads()}.")


__all__ = ["HEADERS", "main", "run_one"]

if __name__ == "__main__":
    main()
