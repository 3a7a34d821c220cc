"""The task table: does RL improve each built-in task, from its warm start, without collapsing the text?

For every task (its shipped config in ``textgym/configs/``) and seed: the supervised warm start alone, then
TokenPPO with each method (the GAE critic, GRPO, RLOO by default; ``config``: the shipped recipe as it is) for
the config's token budget, each scored
on the task's held-out test prompts, greedy and sampled, next to its diversity::

    python -m benchmarks.task_table                                   # every task x 3 methods x 3 seeds
    python -m benchmarks.task_table --tasks arithmetic sentiment --methods grpo --seeds 0 1 2
    python -m benchmarks.task_table --tasks format --set ppo.learning_rate=1e-4   # overrides apply to every run
    python -m benchmarks.task_table --json table.json                 # also every number, per seed

Columns: test reward greedy / sampled (mean +- std over seeds), the number of seeds on which RL raised both
(``gain``), sampled distinct-2, distinct greedy completions over the test prompts, sampled self-BLEU,
perplexity and KL (nats per completion) under the warm start, RL wall time, and the seeds whose text
collapsed or drifted (:func:`textgym.evaluation.diversity_warnings`). The JSON also holds, per run, the five most
frequent greedy completions after RL (count and reward) and, for records with a ``qtype`` field (QA), greedy
reward per question type.

Runs are sequential in one process; each run's warm start is cached (``$TEXTGYM_CACHE``), so a second table
pays only for RL and evaluation. The header records the load (``uptime``) and the thread count: RL wall times
are comparable only between rows of one table.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from benchmarks.common import machine, parser, setup_torch

#: method name -> TokenPPO overrides (group methods use the config's group_size, else 4); "config" is the
#: task's shipped recipe as it is (its own baseline and settings). Each is the method's published recipe on top
#: of the task's other settings (learning rate, KL, sampling): docs/theory.md has one section per option.
METHODS: dict[str, dict[str, Any]] = {
    "config": {},
    "gae": {"baseline": "gae"},
    "grpo": {"baseline": "grpo"},
    # Dr. GRPO: no std division anywhere, and a constant loss normaliser (no length bias)
    "dr_grpo": {"baseline": "grpo", "scale_rewards": "none", "normalize_advantage": False,
                "loss_aggregation": "constant"},
    "rloo": {"baseline": "rloo"},
    # DAPO: token-mean loss, clip-higher, dynamic sampling, overlong filtering (its KL removal is not applied:
    # every method keeps the task's KL settings)
    "dapo": {"baseline": "grpo", "loss_aggregation": "token_mean", "clip_range": 0.2, "clip_range_high": 0.28,
             "dynamic_sampling": True, "overlong_filter": True},
    # GSPO: the sequence-level ratio with its tight clip, averaged per sequence
    "gspo": {"baseline": "grpo", "importance_ratio": "sequence", "clip_range": 3e-4, "clip_range_high": 4e-4,
             "loss_aggregation": "sequence_mean"},
    # REINFORCE++: token returns-to-go whitened over the batch, no critic, no groups
    "reinforce++": {"baseline": "reinforce++"},
}
#: the baselines that compare a prompt's completions (the method keeps the config's group_size, else 4)
GROUP_METHOD_BASELINES = ("grpo", "rloo", "reinforce++_baseline")
#: the policy-gradient choices a method row sets: a task config's own values of these are dropped first, so that
#: ``grpo`` on a task shipped with Dr. GRPO is GRPO (the other settings, learning rate, KL, sampling, stay the task's)
METHOD_KEYS = ("baseline", "scale_rewards", "normalize_advantage", "loss_aggregation", "clip_range", "clip_range_high",
               "importance_ratio", "dynamic_sampling", "dynamic_sampling_max_rollouts", "overlong_filter",
               "overlong_buffer", "overlong_penalty")
#: config overrides of ``--quick``: a smoke test of a table script, not a measurement
QUICK_OVERRIDES = ("num_envs=8", "total_timesteps=64", "eval_episodes=8", "sft.steps=3", "model_size=tiny")
ALL_TASKS = ("arithmetic", "sentiment", "keywords", "format", "qa", "dialogue", "summarize", "translate")


def method_options(config: dict, method: str) -> dict[str, Any]:
    """The config's ``ppo`` section with ``method``'s recipe in place of the config's own :data:`METHOD_KEYS`
    (group size kept from the config, else 4); ``"config"`` returns it unchanged."""
    ppo = dict(config.get("ppo", {}))
    if method == "config":
        return ppo
    ppo = {k: v for k, v in ppo.items() if k not in METHOD_KEYS}
    ppo.update(METHODS[method])
    if ppo["baseline"] not in GROUP_METHOD_BASELINES:
        ppo.pop("group_size", None)
    else:
        ppo["group_size"] = int(config.get("ppo", {}).get("group_size", 4))
        if config["num_envs"] % ppo["group_size"]:
            raise SystemExit(f"num_envs={config['num_envs']} is not a multiple of group_size={ppo['group_size']}.")
    return ppo


def run_one(task: str, method: str, seed: int, overrides: list[str]) -> dict[str, Any]:
    """Warm start (cached), evaluate, TokenPPO with ``method``, evaluate again: the before/after metrics."""
    from agents.commands import evaluate_greedy_and_sampled, make_train_env, warm_started_model
    from agents.models import ActorCriticLM
    from agents.ppo import TokenPPO
    from textgym.config import load_config

    config = load_config(task, overrides)
    config["seed"] = seed
    env, eval_env = make_train_env(config), make_train_env(config, split="test")
    model = warm_started_model(config, env, log=lambda *a, **k: None)
    reference = ActorCriticLM.from_config(model.config)
    reference.load_state_dict(model.state_dict())
    episodes = min(int(config.get("eval_episodes", 128)), len(eval_env.unwrapped.prompt_source))
    algo = TokenPPO(model, env, seed=seed, device=config.get("device", "auto"), **method_options(config, method))
    with algo.state.preserved_rng():
        before = evaluate_greedy_and_sampled(algo, eval_env, episodes, reference)
    start = time.perf_counter()
    algo.learn(int(config["total_timesteps"]))
    rl_seconds = time.perf_counter() - start
    with algo.state.preserved_rng():
        after = evaluate_greedy_and_sampled(algo, eval_env, episodes, reference)
        greedy_samples = _greedy_samples(algo, eval_env, episodes)
    return {"task": task, "method": method, "seed": seed, "before": before, "after": after,
            "rl_seconds": rl_seconds, "timesteps": algo.num_timesteps,
            "greedy_reward_by_qtype": _per_field(greedy_samples, eval_env, "qtype"),
            "top_greedy_completions": _top_completions(greedy_samples)}


def _greedy_samples(algo: Any, env: Any, episodes: int) -> list[dict]:
    from agents.evaluation import evaluate_policy_text

    return evaluate_policy_text(algo, env, episodes, deterministic=True, keep_samples=True)["samples"]


def _per_field(samples: list[dict], env: Any, field: str) -> dict[str, float] | None:
    """Greedy test reward grouped by a record field (``None`` when the records have no such field)."""
    records = env.unwrapped.prompt_source
    if field not in records[0]:
        return None
    groups: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        groups[str(records[s["prompt_index"]][field])].append(s["reward"])
    return {k: float(np.mean(v)) for k, v in sorted(groups.items())}


def _top_completions(samples: list[dict], k: int = 5) -> list[dict]:
    """The ``k`` most frequent greedy completions with their count and mean reward: what a collapse looks like."""
    groups: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        groups[s["completion"]].append(s["reward"])
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:k]
    return [{"completion": c, "count": len(r), "reward": float(np.mean(r))} for c, r in ranked]


def _mean_std(values: list[float], fmt: str = "{:.3f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} +- {fmt.format(statistics.stdev(values))}"


def table_rows(results: list[dict]) -> list[list[str]]:
    """One row for each task's warm start (its runs' "before"), then one per (task, method)."""

    by_task: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        by_task[r["task"]][r["method"]].append(r)
    rows = []
    for task, methods in by_task.items():
        first = next(iter(methods.values()))
        n = first[0]["before"]["greedy"]["num_episodes"]

        def row(name: str, sides: list[dict], runs: list[dict] | None) -> list[str]:
            g = [s["greedy"] for s in sides]
            smp = [s["sampled"] for s in sides]
            cells = [
                task, name,
                _mean_std([m["reward_mean"] for m in g]), _mean_std([m["reward_mean"] for m in smp]),
                "-" if runs is None else f"{sum(_gained(r) for r in runs)}/{len(runs)}",
                _mean_std([m["distinct_2"] for m in smp]),
                _mean_std([m["distinct_completions"] for m in g], "{:.0f}") + f" / {n}",
                _mean_std([m["self_bleu"] for m in smp]),
                _mean_std([m.get("perplexity_under_reference", float("nan")) for m in smp], "{:.2f}"),
                _mean_std([m.get("kl_to_reference", float("nan")) for m in smp], "{:.2f}"),
                "-" if runs is None else _mean_std([r["rl_seconds"] for r in runs], "{:.0f}"),
            ]
            cells.append("-" if runs is None else _warning_summary(runs))
            return cells

        rows.append(row("warm start", [r["before"] for r in first], None))
        for method, runs in methods.items():
            rows.append(row(method, [r["after"] for r in runs], runs))
    return rows


def _warning_summary(runs: list[dict]) -> str:
    """Each kind of warning (``greedy: collapsed``, ``sampled: diversity fell``...) with the seeds it hit;
    ``(warm start too)`` when the warm start was already collapsed."""
    from textgym.evaluation import diversity_warnings

    seeds: dict[str, list[int]] = defaultdict(list)
    for r in runs:
        for mode in ("greedy", "sampled"):
            for w in diversity_warnings(r["after"][mode], r["before"][mode], label=f"{mode}: "):
                kind = ":".join(w.split(":")[:2]) + (" (warm start too)" if "as was the warm start" in w else "")
                seeds[kind].append(r["seed"])
    return "; ".join(f"{kind} (seed {', '.join(map(str, s))})" for kind, s in seeds.items()) or "none"


def _gained(run: dict) -> bool:
    """RL raised held-out reward both greedy and sampled."""
    return all(run["after"][m]["reward_mean"] > run["before"][m]["reward_mean"] for m in ("greedy", "sampled"))


HEADERS = ("task", "method", "greedy reward", "sampled reward", "gain (both)", "sampled distinct-2",
           "greedy distinct completions", "sampled self-BLEU", "ppl under ref", "KL to ref", "RL s",
           "collapse/drift warnings")


def load_average() -> str:
    """``uptime``'s three load averages: a table's wall times mean something only next to them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_markdown(rows: list[list[str]]) -> None:
    print("| " + " | ".join(HEADERS) + " |")
    print("|" + "|".join("---" for _ in HEADERS) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def _read_results(path: str) -> list[dict]:
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--from-json {path}: cannot read it ({e}); pass files written by --json.") from e
    if not isinstance(results, list) or not all(isinstance(r, dict) and {"task", "method", "seed", "before", "after"} <= set(r) for r in results):
        raise SystemExit(f"--from-json {path}: not a task-table result list (write one with --json).")
    return results


def main() -> None:
    p = parser("RL on every built-in task from its warm start: held-out reward, diversity, wall time.")
    p.add_argument("--tasks", nargs="+", default=list(ALL_TASKS), help="shipped config names (default: all 8)")
    p.add_argument("--methods", nargs="+", default=["gae", "grpo", "rloo"], choices=list(METHODS),
                   help="TokenPPO baselines (default gae grpo rloo; config: each task's shipped recipe)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--json", help="also write every result (per seed) to this JSON file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override applied to every run (repeatable), e.g. --set ppo.learning_rate=1e-4")
    p.add_argument("--from-json", nargs="+", metavar="FILE", help="run nothing: print the table of the results "
                   "these --json files hold (seeds measured in separate invocations, one table)")
    args = p.parse_args()
    if args.from_json:
        results = [r for path in args.from_json for r in _read_results(path)]
        print_markdown(table_rows(results))
        return
    overrides = list(args.overrides)
    if args.quick:  # a smoke test of the script, not a measurement
        args.tasks, args.methods, args.seeds = args.tasks[:1], args.methods[:2], args.seeds[:1]
        overrides += QUICK_OVERRIDES
    setup_torch(args.threads)
    print(f"## Task table ({machine()}; load average {load_average()} at the start)\n")
    print(f"Tasks {' '.join(args.tasks)}; methods {' '.join(args.methods)}; seeds {' '.join(map(str, args.seeds))}; "
          f"overrides {' '.join(overrides) or 'none'}.\n", flush=True)
    results = []
    for task in args.tasks:
        for seed in args.seeds:
            for method in args.methods:
                r = run_one(task, method, seed, overrides)
                results.append(r)
                print(f"{task} {method} seed {seed}: greedy {r['before']['greedy']['reward_mean']:.3f} -> "
                      f"{r['after']['greedy']['reward_mean']:.3f}, sampled {r['before']['sampled']['reward_mean']:.3f}"
                      f" -> {r['after']['sampled']['reward_mean']:.3f} ({r['rl_seconds']:.0f} s)", file=sys.stderr,
                      flush=True)
                if args.json:  # written after every run: a long table interrupted keeps what it measured
                    with open(args.json, "w") as f:
                        json.dump(results, f, indent=1)
    print_markdown(table_rows(results))
    print(f"\nLoad average at the end: {load_average()}; torch threads {torch.get_num_threads()}.")


if __name__ == "__main__":
    main()
