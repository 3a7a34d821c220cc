"""Soak test: many short episodes through a textgym env and TokenPPO (rollout + update), RSS over time.

A leak of a few objects per episode (cached tensors, info dicts, logger rows, KV caches kept alive...) is
invisible in a unit test and fatal in a week-long run. This script runs ``--episodes`` short episodes (the
tiny default model, ``--max-new-tokens`` tokens each) as full TokenPPO iterations, samples the process's
resident set size (RSS) along the way, prints a table and the growth after the warm-up, and exits 1 if that
growth exceeds ``--max-growth`` percent::

    OMP_NUM_THREADS=1 python scripts/soak.py                       # 10k episodes
    python scripts/soak.py --episodes 256 --num-envs 32            # a quick check

Not a unit test (it takes a minute or two); ``tests/scripts/test_soak.py`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def rss_mib() -> float:
    """Resident set size of this process in MiB (``/proc/self/statm``; ``resource`` peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=10_000, help="episodes to run in total")
    p.add_argument("--num-envs", type=int, default=64, help="episodes per rollout (one TokenPPO iteration)")
    p.add_argument("--env", default="textgym/Arithmetic-v0", help="textgym env id")
    p.add_argument("--max-new-tokens", type=int, default=4, help="tokens per episode at most")
    p.add_argument("--samples", type=int, default=10, help="rows of the RSS table")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the episodes treated as warm-up")
    p.add_argument("--max-growth", type=float, default=5.0, help="fail (exit 1) above this RSS growth after warm-up, in percent")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from agents.ppo import TokenPPO

    algo = TokenPPO(
        "default", args.env, num_envs=args.num_envs, env_kwargs={"max_new_tokens": args.max_new_tokens},
        policy_kwargs={"size": "tiny"}, n_epochs=1, batch_size=args.num_envs, learning_rate=1e-4, seed=args.seed,
        device="cpu",
    )
    iterations = max(1, -(-args.episodes // args.num_envs))
    warmup = max(1, int(iterations * args.warmup))
    every = max(1, (iterations - warmup) // max(1, args.samples - 1))
    table = []  # (episodes, iteration, seconds, rss MiB)
    start = time.perf_counter()
    for iteration in range(1, iterations + 1):
        algo.collect_rollout()
        algo.train()
        if iteration == warmup or (iteration > warmup and ((iteration - warmup) % every == 0 or iteration == iterations)):
            gc.collect()  # measure what is kept, not what the collector has not reached yet
            table.append((iteration * args.num_envs, iteration, time.perf_counter() - start, rss_mib()))
    wall = time.perf_counter() - start

    base = table[0][3]
    print(f"{'episodes':>9} {'iteration':>9} {'seconds':>8} {'RSS MiB':>8} {'vs warm-up':>10}")
    for episodes, iteration, seconds, rss in table:
        print(f"{episodes:>9,} {iteration:>9} {seconds:>8.1f} {rss:>8.1f} {100 * (rss - base) / base:>+9.2f}%")
    growth = 100 * (table[-1][3] - base) / base
    peak = 100 * (max(r[3] for r in table) - base) / base
    print(
        f"\n{iterations * args.num_envs:,} episodes ({iterations} TokenPPO iterations of {args.num_envs}) on {args.env} "
        f"in {wall:.1f} s; RSS after warm-up ({table[0][0]:,} episodes) {base:.1f} MiB -> {table[-1][3]:.1f} MiB: "
        f"growth {growth:+.2f}% (peak {peak:+.2f}%), limit {args.max_growth}%."
    )
    return 0 if growth <= args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
