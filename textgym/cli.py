"""The environment side of the ``textgym`` command: ``textgym envs`` and ``textgym tokenizer train``.

The ``textgym`` console script is :mod:`agents.cli`: it adds the training commands (train, sft, eval, generate)
to the parser built here, so this package never imports the trainers. ``python -m textgym.cli`` runs the
environment commands alone, without torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from textgym.errors import UsageError

__all__ = ["UsageError", "add_env_commands", "build_parser", "main", "new_parser", "positive_int", "run_parsed"]

ENV_COMMANDS = ("envs", "tokenizer")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


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


def add_env_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``envs`` and ``tokenizer`` to a ``textgym`` subparser set."""
    _add_envs(sub)
    _add_tokenizer(sub)


def new_parser(epilog: str | None = None) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``textgym`` parser with no commands yet, and its subparser set to add them to."""
    parser = argparse.ArgumentParser(
        prog="textgym",
        description="Text generation as Gymnasium environments; train language models with RL from your own reward.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the environment commands alone (``python -m textgym.cli``)."""
    parser, sub = new_parser()
    add_env_commands(sub)
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


def run_env_command(args: argparse.Namespace) -> int:
    """Run ``envs`` or ``tokenizer``."""
    return cmd_envs(args) if args.command == "envs" else cmd_tokenizer(args)


def run_parsed(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], int],
    is_reported_error: Callable[[Exception], bool] = lambda error: False,
) -> int:
    """Run a parsed command, turning the errors a user can fix into messages instead of tracebacks.

    A config error exits 2 with the config's message; a :class:`UsageError` is reported argparse-style with the
    subcommand's usage line (exit 2); an exception for which ``is_reported_error`` is true (a corrupt model or
    checkpoint, say: its message names the cause and the fix) exits 1 with its message; anything else is a bug
    and keeps its traceback.
    """
    from textgym.config import ConfigError

    try:
        return run(args)
    except ConfigError as e:
        parser.exit(2, f"textgym {args.command}: config error: {e}\n")
    except UsageError as e:
        parser.commands[args.command].error(str(e))  # usage line + "error: ...", exit status 2
    except Exception as e:
        if not is_reported_error(e):
            raise
        parser.exit(1, f"textgym {args.command}: error: {e}\n")


TRAINING_COMMANDS = ("train", "sft", "eval", "generate")  # agents.cli's


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TRAINING_COMMANDS:  # e.g. an old `torchrun -m textgym.cli train` line
        parser.error(f"{argv[0]!r} is a training command: run `textgym {argv[0]} ...` (the console script) or "
                     f"`python -m agents.cli {argv[0]} ...` (also under torchrun)")
    return run_parsed(parser, parser.parse_args(argv), run_env_command)


if __name__ == "__main__":
    sys.exit(main())
