"""What the ``textgym train`` command does (the parsers live in :mod:`agents.cli`; ``sft``, ``eval`` and
``generate`` are in :mod:`agents.model_commands`, re-exported here for the CLI).

The main job, ``textgym train``: build or load the policy, warm it up with supervised cross-entropy on the
task's demonstrations (cached on disk, so the second run skips it), print sample generations with their
rewards, run TokenPPO with a progress bar, print the same prompts' generations again, and leave a run
directory behind::

    runs/<config>-seed<seed>/
        config.yaml        the resolved config (file + overrides) the run used
        progress.csv       every logged metric per iteration (SB3 logger)
        tb/                tensorboard scalars
        checkpoints/last/  the latest TokenPPO checkpoint (TokenPPO.save_checkpoint; ``textgym train --resume
                           RUN_DIR`` continues it exactly: same metrics as a run that never stopped, on CPU)
        reference/         the warm-started model (the KL reference; `textgym eval` scores perplexity under it)
        final/             the trained TokenPPO (TokenPPO.load); final/policy/ is a Hugging Face model directory
        curves.png         reward, KL and entropy against generated tokens
        samples.json       the before/after generations with their rewards
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

import textgym  # noqa: F401  (registers the ids)
from agents.evaluation import is_multi_turn
from agents.models import ActorCriticLM, build_default_model
from agents.ppo import TokenPPO
from agents.ppo.checkpoint import STATE_JSON
from agents.ppo.config import LAUNCH_OPTIONS, check_ppo_section
from agents.ppo.distributed import join_torchrun, leave_torchrun
from agents.ppo.interrupt import TrainingInterrupted
from agents.ppo.sft import supervised_warm_start
from agents.ppo.write_errors import CheckpointWriteError, checkpoint_iteration, os_error_code
from agents.model_commands import (  # noqa: F401 (evaluate, generate, sft: the CLI's handlers)
    evaluate, generate, sample_generations, sft, tokenizer_kwargs,
)
from agents.run_report import before_after_warnings, evaluate_greedy_and_sampled, print_before_after, print_samples
from agents.run_directory import claim_for_new_run, finished_message, lock_run_directory
from agents.run_files import (  # noqa: F401 (CheckpointCallback, save_checkpoint: the train command's, and tests')
    CheckpointCallback, checkpoint_dir, continue_progress, progress_rows, save_checkpoint, save_final,
)
from textgym.config import load_config, save_config, validate_config
from textgym.errors import UsageError
from textgym.evaluation import is_collapsed

SAMPLE_PROMPTS = 4  # before/after generations shown by `textgym train`


def cache_dir() -> Path:
    """Where warm-started models are cached: ``$TEXTGYM_CACHE`` or ``~/.cache/textgym``."""
    return Path(os.environ.get("TEXTGYM_CACHE", Path.home() / ".cache" / "textgym"))


def make_train_env(config: dict[str, Any], split: str = "train"):
    """The vector env of a run: ``num_envs`` slots, autoreset disabled (one synchronised batch per rollout), the
    config's ``tokenizer`` (a local path; ``None``: the env's default)."""
    return gym.make_vec(
        config["env"],
        num_envs=config.get("num_envs", 16),
        autoreset_mode=AutoresetMode.DISABLED,
        split=split,
        **tokenizer_kwargs(config),
        **config.get("env_kwargs", {}),
    )


def _check_tokenizer(config: dict[str, Any]) -> None:
    """The top-level ``tokenizer`` must name a local path, and not contradict ``env_kwargs.tokenizer``."""
    from textgym.config import ConfigError

    tokenizer = config.get("tokenizer")
    if tokenizer is None:
        return
    if config.get("env_kwargs", {}).get("tokenizer") not in (None, tokenizer):
        raise ConfigError(
            f"tokenizer: {tokenizer!r} and env_kwargs.tokenizer: {config['env_kwargs']['tokenizer']!r} disagree; set one of them."
        )
    if not Path(tokenizer).expanduser().exists():
        raise ConfigError(
            f"tokenizer: {tokenizer!r} does not exist. Give a local sentencepiece .model file, a directory written "
            "by `textgym tokenizer train`, or a local Hugging Face tokenizer directory (or drop the key for the "
            "default tokenizer)."
        )


def warm_started_model(config: dict[str, Any], env: Any, log=print, write_cache: bool = True) -> ActorCriticLM:
    """The policy after the supervised warm start, loaded from the cache when this exact warm start ran before.

    The cache key covers everything that changes the result: the env and its kwargs, the model spec, the
    ``sft`` section, the seed, the tokenizer file, the demonstrations themselves and textgym's version. ``write_cache=False`` computes without
    writing (ranks other than 0 under torchrun: one writer, and TokenPPO starts every rank from rank 0's weights).
    """
    base = env.unwrapped
    model_spec = config.get("model", "default")
    sft_section = dict(config.get("sft", {}))
    key_material = {
        "env": config["env"],
        "env_kwargs": config.get("env_kwargs", {}),
        "model": model_spec,
        "model_size": config.get("model_size", "small"),
        "sft": sft_section,
        "seed": config.get("seed", 0),
        "tokenizer": base.tokenizer.fingerprint,
        "data": _records_fingerprint(base.prompt_source),
        "textgym": textgym.__version__,
    }
    key = hashlib.sha256(json.dumps(key_material, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cached = cache_dir() / "warm_start" / key
    if (cached / "config.json").is_file():
        log(f"Supervised warm start: cached, loading {cached}")
        return ActorCriticLM.from_pretrained(cached)
    if model_spec == "default":
        model = build_default_model(tokenizer=base.tokenizer, size=config.get("model_size", "small"), seed=config.get("seed", 0))
    else:
        model = ActorCriticLM.from_pretrained(model_spec)
    if sft_section.get("steps", 0) > 0:
        start = time.perf_counter()
        log(f"Supervised warm start: {sft_section['steps']} steps of cross-entropy on {config['env']}'s demonstrations")
        # A multi-turn task's demonstrations are replayed through a single env of it (the agent's tokens trained).
        replay_env = gym.make(config["env"], **config.get("env_kwargs", {})) if is_multi_turn(env) else None
        supervised_warm_start(
            model, base.tokenizer, base.prompt_source, max_prompt_tokens=base.max_prompt_tokens,
            max_new_tokens=base.max_new_tokens, seed=config.get("seed", 0), log=log, replay_env=replay_env,
            **sft_section,
        )
        log(f"Supervised warm start: done in {time.perf_counter() - start:.0f} s")
        if not write_cache:
            return model
        tmp = cached.with_name(key + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, tokenizer=base.tokenizer)
        shutil.rmtree(cached, ignore_errors=True)
        tmp.rename(cached)  # atomic: a crash mid-save never leaves a half-written cache entry
    return model


def _records_fingerprint(records: Any) -> str:
    """A hash of the prompts and demonstrations the warm start trains on (a changed data file or generator must
    not load a warm start trained on the old one)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps([record.get("prompt"), record.get("completion")], default=str).encode())
    return digest.hexdigest()[:16]


def resolve_train_config(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The config file, then ``key=value`` overrides, then the explicit flags; validated."""
    if args.resume:
        if getattr(args, "overwrite", False):
            raise UsageError("--overwrite starts the run again; --resume continues it: pass one of them.")
        resolved = Path(args.resume) / "config.yaml"
        if not resolved.is_file():
            what = "does not exist" if not Path(args.resume).exists() else "is not a run directory (it has no config.yaml)"
            raise UsageError(f"--resume {args.resume}: {what}; pass a run directory made by `textgym train` (runs/<config>-seed<seed>).")
        config, name = load_config(resolved, args.overrides), Path(args.resume).name
    else:
        config, name = load_config(args.config, args.overrides), Path(str(args.config)).stem
    for flag, key in (("env", "env"), ("seed", "seed"), ("output_dir", "output_dir"), ("total_timesteps", "total_timesteps")):
        if getattr(args, flag, None) is not None:
            config[key] = getattr(args, flag)
    config.setdefault("seed", 0)
    validate_config(config, sft_class=supervised_warm_start)  # the top level and sft
    check_ppo_section(config.get("ppo", {}), seed=config["seed"], num_envs=config.get("num_envs", 16))
    _check_tokenizer(config)
    if "env" not in config:
        raise SystemExit("The config names no env: add `env: textgym/<Task>-v0` or pass --env.")
    return config, name


def train(args: argparse.Namespace) -> dict[str, Any] | None:
    """``textgym train``: warm start, TokenPPO, run directory. Returns the before/after summary (``None`` on
    ranks other than 0 under ``torchrun``, and for a finished run). The run directory is locked while it runs
    (``agents.run_directory``): a second ``textgym train`` into it is refused at once."""
    with contextlib.ExitStack() as held:  # the run directory's lock, released however train ends
        return _train(args, held)


def _train(args: argparse.Namespace, held: contextlib.ExitStack) -> dict[str, Any] | None:
    from stable_baselines3.common.logger import Logger, make_output_format

    from textgym.plotting import plot_training_curves

    config, name = resolve_train_config(args)
    # Under torchrun every rank runs this function; rank 0 alone writes the run directory and prints.
    ppo_options = config.get("ppo", {})
    job = join_torchrun(ppo_options.get("distributed"), config.get("device", "auto"))
    main = job is None or job.is_main
    say = print if main else (lambda *a, **k: None)
    run_dir = Path(args.resume or config.get("output_dir") or Path("runs") / f"{name}-seed{config['seed']}")
    config["output_dir"] = str(run_dir)
    if main:
        held.enter_context(lock_run_directory(run_dir))  # first: nothing is read or written unlocked
    total = int(config.get("total_timesteps", 20_000))
    if args.resume and (finished := finished_message(run_dir, total)):
        say(finished)  # before anything is written: a finished run's final/, config and checkpoint stay as they are
        leave_torchrun(job)
        return None
    if main and not args.resume:
        claim_for_new_run(run_dir, overwrite=getattr(args, "overwrite", False), log=say)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))

    env = make_train_env(config)
    eval_env = make_train_env(config, split="test")
    checkpoint = checkpoint_dir(run_dir)
    resuming = bool(args.resume) and (checkpoint.is_dir() or checkpoint.with_name("last.old").is_dir())
    launch = {k: ppo_options[k] for k in LAUNCH_OPTIONS if k in ppo_options}
    if resuming:
        say(f"Resuming from {checkpoint}")
        if (checkpoint / STATE_JSON).is_file() or not (checkpoint / "token_ppo.json").is_file():
            algo = TokenPPO.load_checkpoint(str(checkpoint), env=env, device=config.get("device", "auto"), **launch)
        else:  # an FSDP run's checkpoint: gathered weights and counters only (TokenPPO.save_checkpoint)
            algo = TokenPPO.load(str(checkpoint), env=env, device=config.get("device", "auto"), **launch)
        header, rows = progress_rows(run_dir / "progress.csv", algo.iteration)
    else:
        if args.resume:
            say(f"{run_dir} has no checkpoint yet (stopped before the first one): starting the run from the beginning.")
        model = warm_started_model(config, env, log=say, write_cache=main)
        if main:
            model.save_pretrained(run_dir / "reference", tokenizer=env.unwrapped.tokenizer)  # for `textgym eval`
            say(f"Saved the warm-started model (the KL reference) to {run_dir / 'reference'}")
        algo = TokenPPO(model, env, seed=config["seed"], device=config.get("device", "auto"), **ppo_options)
        header, rows = [], []
    if main:
        # progress.csv at the run root, tensorboard scalars in tb/ (`tensorboard --logdir RUN_DIR/tb`).
        algo.set_logger(Logger(str(run_dir), [make_output_format("csv", str(run_dir)),
                                              make_output_format("tensorboard", str(run_dir / "tb"))]))
        continue_progress(algo.logger, header, rows)

    # Every rank generates (an FSDP model needs all ranks for each forward); rank 0's results are shown.
    prompt_indices = np.arange(min(SAMPLE_PROMPTS, len(eval_env.unwrapped.prompt_source)))
    reference = ActorCriticLM.from_pretrained(run_dir / "reference") if (run_dir / "reference").is_dir() else None
    eval_episodes = config.get("eval_episodes", 64)
    with algo.state.preserved_rng():  # showing samples must not change the training run (nor a resumed one)
        before = sample_generations(algo, eval_env, prompt_indices)
        before_eval = evaluate_greedy_and_sampled(algo, eval_env, eval_episodes, reference)
    say(
        f"Before RL: test reward {before_eval['greedy']['reward_mean']:.3f} greedy / "
        f"{before_eval['sampled']['reward_mean']:.3f} sampled on {eval_episodes} test prompts"
    )

    start = time.perf_counter()
    # A resumed run trains only the steps it still lacks: none when it was stopped after its last checkpoint
    # but before final/ was written (then only final/ is written).
    remaining = total - algo.num_timesteps if resuming else total
    if remaining <= 0:
        say(f"{checkpoint} already holds {algo.num_timesteps} of {total} timesteps: no training left; writing final/.")
    try:
        if remaining > 0:
            algo.learn(
                remaining,
                callback=CheckpointCallback(run_dir, every=int(config.get("checkpoint_every", 5))),
                progress_bar=not getattr(args, "no_progress", False),
                reset_num_timesteps=not resuming,
                checkpoint_path=str(checkpoint),
            )
        train_s = time.perf_counter() - start
        # The checkpoint first: a run stopped (or out of disk) before final/ then resumes by writing final/ alone.
        save_checkpoint(algo, run_dir)
        say(f"Saved the checkpoint (textgym train --resume) to {checkpoint}")
        save_final(algo, run_dir, main)
        say(f"Saved the trained model (TokenPPO.load; a Hugging Face model in policy/) to {run_dir / 'final'}")
    except CheckpointWriteError as failed:  # disk full...: one message, the partial write removed (cli.py prints it)
        raise failed.with_resume(f"`textgym train --resume {run_dir}`") from failed.__cause__
    except OSError as error:  # the logs (progress.csv, tensorboard) on a full disk: the same message
        if os_error_code(error) not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise CheckpointWriteError(
            error.errno, error.filename or f"{run_dir} (its logs)", str(checkpoint) if checkpoint.is_dir() else None,
            checkpoint_iteration(checkpoint), error.strerror or str(error), f"`textgym train --resume {run_dir}`",
        ) from error
    except TrainingInterrupted as stop:
        say(
            f"\nTraining stopped by {stop.signal_name} after iteration {algo.iteration} ({algo.num_timesteps} of "
            f"{total} timesteps); checkpoint saved to {stop.checkpoint_path}.\nResume with: textgym train --resume {run_dir}",
            file=sys.stderr,
        )
        raise SystemExit(130) from None

    with algo.state.preserved_rng():
        after = sample_generations(algo, eval_env, prompt_indices)
        after_eval = evaluate_greedy_and_sampled(algo, eval_env, eval_episodes, reference)
    if not main:
        leave_torchrun(job)
        return None
    print_samples(before, after)
    warnings = before_after_warnings(before_eval, after_eval)
    print_before_after(before_eval, after_eval, warnings)
    summary = {
        "env": config["env"],
        "reward_before": before_eval["sampled"]["reward_mean"],
        "reward_after": after_eval["sampled"]["reward_mean"],
        "greedy_reward_before": before_eval["greedy"]["reward_mean"],
        "greedy_reward_after": after_eval["greedy"]["reward_mean"],
        "collapsed": any(is_collapsed(after_eval[mode]) for mode in after_eval),
        "warnings": warnings,
        "rl_seconds": round(train_s, 1),
        "timesteps": algo.num_timesteps,
        "run_dir": str(run_dir),
        "before": before_eval,
        "after": after_eval,
    }
    (run_dir / "samples.json").write_text(json.dumps({"before": before, "after": after, "summary": summary}, indent=2))
    print(f"Saved the before/after generations to {run_dir / 'samples.json'}")
    progress = run_dir / "progress.csv"
    if progress.is_file():
        plot_training_curves(progress, run_dir / "curves.png", title=f"TokenPPO on {config['env']}")
        print(f"Saved the training curves to {run_dir / 'curves.png'}")
    print(
        f"Test reward {summary['greedy_reward_before']:.3f} -> {summary['greedy_reward_after']:.3f} greedy, "
        f"{summary['reward_before']:.3f} -> {summary['reward_after']:.3f} sampled, after {train_s:.0f} s of RL"
        f"{' (see the warnings above)' if warnings else ''}. "
        f"Run directory: {run_dir} (final model in {run_dir / 'final' / 'policy'}, curves in {run_dir / 'curves.png'})"
    )
    leave_torchrun(job)
    return summary


