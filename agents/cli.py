"""The ``textgym`` command: train, sft, eval, generate, envs, tokenizer train.

Every subcommand's ``--help`` lists all its options. Training runs read a YAML config (shipped per task in
``textgym/configs/``, or your own file) and take ``key=value`` overrides, e.g.::

    textgym train                                   # the default task, default config
    textgym train --config arithmetic ppo.learning_rate=3e-5 seed=1
    textgym train --resume runs/sentiment-seed0     # continue an interrupted run
    textgym eval runs/sentiment-seed0 --episodes 64
    torchrun --nproc_per_node 2 -m agents.cli train  # data-parallel on 2 GPUs (README: Multi-GPU and multi-node)

This is the console script. The environment commands (``envs``, ``tokenizer``) are :mod:`textgym.cli`'s; the
training commands are added here because they run the trainers (:mod:`agents.commands`,
:mod:`agents.model_commands`), and torch is imported only when one of them runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from textgym.cli import ENV_COMMANDS, add_env_commands, new_parser, positive_int, run_env_command, run_parsed

DEFAULT_CONFIG = "sentiment"
_EXAMPLES = "examples:\n" + __doc__.split("::", 1)[1].strip("\n").split("\n\n")[0]  # the docstring's block, in --help

__all__ = ["DEFAULT_CONFIG", "build_parser", "main"]


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="supervised warm start, then TokenPPO on a task; writes a run directory",
        description="Train a policy on a textgym task: supervised warm start (cached), then TokenPPO. The run "
        "directory gets the final model (a Hugging Face directory), checkpoints, progress.csv, tensorboard "
        "scalars, curves.png and the resolved config. Under torchrun (`torchrun --nproc_per_node N -m agents.cli "
        "train ...`) it trains data-parallel: num_envs is per rank, ppo.batch_size and total_timesteps are global, "
        "rank 0 writes the run directory.",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. ppo.learning_rate=3e-5")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"a shipped config name or a .yaml path (default: {DEFAULT_CONFIG})")
    p.add_argument("--env", help="env id to train on (overrides the config's env)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config's seed)")
    p.add_argument("--output-dir", help="run directory (default: runs/<config>-seed<seed>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="if the output directory already holds a run, delete "
                   "it and start again (without it, such a directory is refused)")
    p.add_argument("--total-timesteps", type=positive_int, help="environment steps (generated tokens) to train for")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sft(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="supervised (cross-entropy) warm start on a task's data or a text file",
        description="Supervised LM training before RL: teacher-forced cross-entropy on a task's prompt + "
        "completion pairs, or on the lines of a text file. Saves a Hugging Face model directory.",
    )
    p.add_argument("--env", default="textgym/Sentiment-v0", help="env id whose built-in data to train on")
    p.add_argument("--text-file", help="train on the lines of this UTF-8 file instead of a task's data")
    p.add_argument("--model", default="default", help="'default' (the small built-in model) or a local model dir")
    p.add_argument("--output-dir", required=True, help="where to save the trained model")
    p.add_argument("--steps", type=positive_int, default=None, help="optimiser steps (default: 200)")
    p.add_argument("--learning-rate", type=float, default=None, help="AdamW learning rate")
    p.add_argument("--batch-size", type=positive_int, default=None, help="sequences per step")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a run or a model directory on a task",
        description="Mean task reward next to its diversity (distinct-n, self-BLEU, distinct completions), EOS rate, "
        "length, and perplexity and KL under the reference model, on an env's test prompts. For a run directory the "
        "warm start (the run's reference) is scored the same way under \"reference\", and a collapsed or drifting "
        "policy is named in plain words (stderr and \"warnings\"). Prints JSON.",
    )
    p.add_argument("model", help="a run directory (uses its final model and env) or a local model directory")
    p.add_argument("--env", help="env id (default: the run's env, else textgym/Sentiment-v0)")
    p.add_argument("--reference", help="reference model dir for perplexity (default: the run's warm-start model)")
    p.add_argument("--episodes", type=positive_int, default=64, help="number of completions to sample")
    p.add_argument("--split", default="test", choices=["train", "test"], help="which prompts to use")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--no-compare", action="store_true", help="do not also score the reference (warm-start) model")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="sample completions from a saved model", description="Sample completions for prompts from a saved model (a run directory or a model directory).")
    p.add_argument("model", help="a run directory or a local model directory")
    p.add_argument("prompts", nargs="*", help="prompt texts (default: a few of the env's test prompts)")
    p.add_argument("--env", help="env id whose test prompts to use when none are given")
    p.add_argument("--num", type=positive_int, default=4, help="number of env prompts when none are given")
    p.add_argument("--max-new-tokens", type=positive_int, default=None, help="new-token limit (default: the env's)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the run's, else 1)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling threshold (default: the run's, else 1)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def build_parser() -> argparse.ArgumentParser:
    parser, sub = new_parser(epilog=_EXAMPLES)
    for add in (_add_train, _add_sft, _add_eval, _add_generate):
        add(sub)
    add_env_commands(sub)
    parser.commands = sub.choices  # name -> subparser, for errors reported with the subcommand's usage
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_parsed(parser, parser.parse_args(argv), _run, _is_load_error)


def _is_load_error(error: Exception) -> bool:
    """A corrupt or missing model directory or checkpoint, a checkpoint that could not be written (disk full), or
    a run stopped for non-finite weights (their messages name the last good checkpoint); checked without importing
    torch for the light commands."""
    checkpoint, models = sys.modules.get("agents.ppo.checkpoint"), sys.modules.get("agents.models")
    nonfinite = sys.modules.get("agents.ppo.nonfinite")
    return (checkpoint is not None and isinstance(error, (checkpoint.CheckpointError, checkpoint.CheckpointWriteError))) or (
        models is not None and isinstance(error, models.ModelLoadError)
    ) or (nonfinite is not None and isinstance(error, nonfinite.NonFiniteError))


def _run(args: argparse.Namespace) -> int:
    if args.command in ENV_COMMANDS:
        return run_env_command(args)
    from agents import commands  # torch/transformers only for the commands that need them

    handler = {"train": commands.train, "sft": commands.sft, "eval": commands.evaluate, "generate": commands.generate}
    result = handler[args.command](args)
    if isinstance(result, dict):
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
