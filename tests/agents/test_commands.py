"""``textgym train`` (agents/commands.py) as a user sees it: its output and the run directory it leaves."""

from __future__ import annotations

import pytest

from textgym.cli import main

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
