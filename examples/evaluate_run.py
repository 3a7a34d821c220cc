"""Evaluate a finished `textgym train` run: reward, perplexity under its reference, distinct-n, self-BLEU, length.

    textgym train                                   # makes runs/sentiment-seed0
    python examples/evaluate_run.py runs/sentiment-seed0 --episodes 128

The same as ``textgym eval RUN_DIR``, from Python.
"""

from __future__ import annotations

import argparse
import json

from agents.commands import evaluate


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run directory made by `textgym train`")
    p.add_argument("--episodes", type=int, default=128)
    args = p.parse_args(argv)
    result = evaluate(argparse.Namespace(model=args.run_dir, env=None, reference=None, episodes=args.episodes,
                                         split="test", greedy=False, seed=0))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
