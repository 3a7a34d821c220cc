"""What ``textgym train`` writes into its run directory, and how a resume picks it up again.

``checkpoints/last/`` (every ``checkpoint_every`` iterations, :class:`CheckpointCallback`), ``final/``
(:func:`save_final`, atomically), and ``progress.csv``, whose rows up to the checkpoint a resumed run carries
over (:func:`progress_rows`, :func:`continue_progress`). Who may write the directory at all is
:mod:`agents.run_directory`'s business.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from agents.ppo.write_errors import explain_write_failure


class CheckpointCallback(BaseCallback):
    """Checkpoint the run to ``checkpoints/last`` every ``every`` iterations (atomically: temp dir, then rename)."""

    def __init__(self, run_dir: Path, every: int):
        super().__init__()
        self.run_dir, self.every = run_dir, every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        # Before a rollout = after the previous update: an iteration boundary, so a resume continues exactly.
        iteration = self.model.iteration
        if self.every and iteration and iteration % self.every == 0:
            save_checkpoint(self.model, self.run_dir)


def save_checkpoint(algo: Any, run_dir: Path) -> Path:
    """``algo.save_checkpoint(run_dir / "checkpoints" / "last")``. Under torchrun call it on every rank: only rank 0
    writes."""
    return Path(algo.save_checkpoint(str(checkpoint_dir(run_dir))))


def save_final(algo: Any, run_dir: Path, main: bool = True) -> Path:
    """``algo.save(run_dir / "final")`` through ``final.tmp``, renamed into place: a failed or interrupted write
    leaves no partial ``final/`` (a finished run is one with a complete ``final/``; a resume writes the missing
    one). Under torchrun call it on every rank (FSDP gathers the weights on all of them): only rank 0 writes.

    Raises:
        CheckpointWriteError: the write failed (disk full, ...); ``final.tmp`` was removed.
    """
    final, tmp, old = Path(run_dir) / "final", Path(run_dir) / "final.tmp", Path(run_dir) / "final.old"
    if not main:
        algo.save(str(tmp))
        return final
    shutil.rmtree(tmp, ignore_errors=True)
    with explain_write_failure(tmp, checkpoint_dir(run_dir), restore=(old, final)) as progress:
        algo.save(str(tmp))
        progress["writing"] = final
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last"


def progress_rows(progress: Path, upto_iteration: int) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of an earlier ``progress.csv`` up to ``upto_iteration`` (the checkpoint's): the rows
    logged after it are redone by the resumed run."""
    import csv

    if not progress.is_file():
        return [], []
    with open(progress, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "time/iterations" not in rows[0]:
        return [], []
    column = rows[0].index("time/iterations")
    kept = [r for r in rows[1:] if len(r) == len(rows[0]) and r[column] and float(r[column]) <= upto_iteration]
    return rows[0], kept


def continue_progress(logger: Any, header: list[str], rows: list[list[str]]) -> None:
    """Put the earlier rows back into the (freshly truncated) CSV of SB3's logger, so a resumed run's
    progress.csv holds the whole run."""
    import csv

    from stable_baselines3.common.logger import CSVOutputFormat

    for fmt in logger.output_formats:
        if isinstance(fmt, CSVOutputFormat) and header:
            csv.writer(fmt.file, lineterminator="\n").writerows([header, *rows])
            fmt.file.flush()
            fmt.keys = list(header)  # SB3 appends under these columns (and pads the rows if new ones appear)
