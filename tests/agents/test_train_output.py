"""``textgym train`` (agents/commands.py) as a user sees it: its output and the run directory it leaves."""

from __future__ import annotations

import pytest

from agents.cli import main

TINY = ["model_size=tiny", "num_envs=8", "total_timesteps=200", "eval_episodes=8", "sft.steps=3", "sft.batch_size=8",
        "checkpoint_every=1"]
#: What a run saves, each announced by one "Saved ..." line.
ARTEFACTS = ("reference", "final", "checkpoints/last", "samples.json", "curves.png")


@pytest.fixture(scope="module")
def train_output(tmp_path_factory):
    """(run_dir, stdout + stderr) of a tiny `textgym train` with its progress bar on."""
    import contextlib
    import io
    import os

    root = tmp_path_factory.mktemp("commands")
    os.environ["TEXTGYM_CACHE"] = str(root / "cache")
    run_dir = root / "run"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(["train", *TINY, "--output-dir", str(run_dir)])
    return run_dir, out.getvalue() + err.getvalue()


def test_train_prints_no_save_progress_bars_and_one_line_per_artefact(train_output):
    run_dir, output = train_output
    assert "Writing model shards" not in output and "Loading weights" not in output
    saved = [line for line in output.splitlines() if line.startswith("Saved ")]
    assert len(saved) == len(ARTEFACTS), saved
    for artefact in ARTEFACTS:
        assert sum(line.rstrip().endswith(str(run_dir / artefact)) for line in saved) == 1, (artefact, saved)


def test_every_model_directory_of_a_run_loads_in_transformers_with_its_tokenizer(train_output):
    """final/policy, reference/ and the cached warm start: AutoTokenizer and pipeline() need nothing else."""
    from agents.commands import cache_dir
    from tests.agents.hf_exports import assert_loads_as_hf_model
    from textgym.tokenizers import default_tokenizer

    run_dir, _ = train_output
    warm_starts = sorted((cache_dir() / "warm_start").iterdir())
    assert warm_starts
    for directory in (run_dir / "final" / "policy", run_dir / "reference", *warm_starts):
        assert_loads_as_hf_model(directory, default_tokenizer(), prompt="Review: I saw this film")


def test_tensorboard_scalars_go_to_run_tb_under_sb3_tags(train_output):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = train_output
    assert not list(run_dir.glob("events.out.tfevents*"))  # the README promises tb/, not the run root
    events = EventAccumulator(str(run_dir / "tb")).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("rollout/ep_rew_mean", "rollout/ep_len_mean", "train/policy_gradient_loss", "train/value_loss",
                "train/entropy_loss", "train/approx_kl", "train/clip_fraction", "train/learning_rate",
                "train/clip_range", "time/fps", "train/kl"):
        assert tag in tags, (tag, sorted(tags))
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert "rollout/ep_rew_mean" in header and (run_dir / "curves.png").is_file()
