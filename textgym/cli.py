"""The ``textgym`` command: train, sft, eval, generate, envs, tokenizer train.

Every subcommand's ``--help`` lists all its options. Training runs read a YAML config (shipped per task in
``textgym/configs/``, or your own file) and take ``key=value`` overrides, e.g.::

    textgym train                                   # the default task, default config
    textgym train --config arithmetic ppo.learning_rate=3e-5 seed=1
    textgym train --resume runs/sentiment-seed0     # continue an interrupted run
    textgym eval runs/sentiment-seed0 --episodes 64
    torchrun --nproc_per_node 2 -m textgym.cli train  # data-parallel on 2 GPUs (README: Multi-GPU and multi-node)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from textgym.errors import UsageError

DEFAULT_CONFIG = "sentiment"

__all__ = ["UsageError", "build_parser", "main"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="supervised warm start, then TokenPPO on a task; writes a run directory",
        description="Train a policy on a textgym task: supervised warm start (cached), then TokenPPO. The run "
        "directory gets the final model (a Hugging Face directory), checkpoints, progress.csv, tensorboard "
        "scalars, curves.png and the resolved config. Under torchrun (`torchrun --nproc_per_node N -m textgym.cli "
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


def _add_envs(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("envs", help="list the registered env ids", description="List every registered textgym env id with a one-line description.")


def _add_tokenizer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenizer", help="tokenizer tools", description="Tokenizer tools.")
    tsub = p.add_subparsers(dest="tokenizer_command", required=True)
    t = tsub.add_parser(
        "train",
        help="train a sentencepiece tokenizer on your corpus",
        description="Train a sentencepiece model on UTF-8 text files; the output dir loads with "
        "textgym.load_tokenizer(dir) and AutoTokenizer.from_pretrained(dir).",
    )
    t.add_argument("corpus", nargs="+", help="UTF-8 text files (one sentence or document per line)")
    t.add_argument("--output-dir", required=True, help="where to write the tokenizer")
    t.add_argument("--vocab-size", type=positive_int, default=4096, help="number of tokens (the corpus must support it)")
    t.add_argument("--model-type", default="bpe", choices=["unigram", "bpe"], help="sentencepiece algorithm (bpe keeps whole words on small corpora)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textgym",
        description="Text generation as Gymnasium environments; train language models with RL from your own reward.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("::", 1)[1] if "::" in (__doc__ or "") else None,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_sft, _add_eval, _add_generate, _add_envs, _add_tokenizer):
        add(sub)
    parser.commands = sub.choices  # name -> subparser, for errors reported with the subcommand's usage
    return parser


def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import textgym
    from textgym.envs.tasks import TASKS

    by_task = {name: task for name, task in TASKS.items()}
    for env_id in textgym.env_ids():
        task = gym.spec(env_id).kwargs.get("task")
        summary = by_task[task].summary if task in by_task else "user-registered reward env"
        print(f"{env_id:28s} {summary}")
    return 0


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from textgym.spm_training import train_sentencepiece

    for path in args.corpus:
        if not Path(path).is_file():
            raise SystemExit(f"textgym tokenizer train: corpus file {path!r} does not exist.")
    tok = train_sentencepiece(args.corpus, args.output_dir, vocab_size=args.vocab_size, model_type=args.model_type)
    print(f"Trained a {args.model_type} tokenizer with {tok.vocab_size} tokens into {args.output_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from textgym.config import ConfigError

    try:
        return _run(args)
    except ConfigError as e:
        parser.exit(2, f"textgym {args.command}: config error: {e}\n")
    except UsageError as e:
        parser.commands[args.command].error(str(e))  # usage line + "error: ...", exit status 2
    except Exception as e:
        if not _is_load_error(e):
            raise
        parser.exit(1, f"textgym {args.command}: error: {e}\n")  # a corrupt model / checkpoint: the message says it all


def _is_load_error(error: Exception) -> bool:
    """A corrupt or missing model directory or checkpoint, a checkpoint that could not be written (disk full), or
    a run stopped for non-finite weights (their messages name the last good checkpoint); checked without importing torch for the light commands."""
    checkpoint, models = sys.modules.get("agents.ppo.checkpoint"), sys.modules.get("agents.models")
    nonfinite = sys.modules.get("agents.ppo.nonfinite")
    return (checkpoint is not None and isinstance(error, (checkpoint.CheckpointError, checkpoint.CheckpointWriteError))) or (
        models is not None and isinstance(error, models.ModelLoadError)
    ) or (nonfinite is not None and isinstance(error, nonfinite.NonFiniteError))


def _run(args: argparse.Namespace) -> int:
    if args.command == "envs":
        return cmd_envs(args)
    if args.command == "tokenizer":
        return cmd_tokenizer(args)
    from agents import commands  # torch/transformers only for the commands that need them

    handler = {"train": commands.train, "sft": commands.sft, "eval": commands.evaluate, "generate": commands.generate}
    result = handler[args.command](args)
    if isinstance(result, dict):
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
