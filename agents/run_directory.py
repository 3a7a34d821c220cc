"""``textgym train``'s run directory: is the run finished, who holds it, may it be written.

A run directory holds one run. These helpers decide, before anything is written into it, whether a command
may go on: one process at a time holds it (:func:`lock_run_directory`), a finished run is left as it is
(:func:`finished_message`), and a new run never lands silently on an old one (:func:`claim_for_new_run`:
refused, or with ``--overwrite`` the old run's files are removed first so that no log of it stays mixed in).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator

from textgym.errors import UsageError

#: The lock file in a run directory: who holds it (pid, host, start time). The lock itself is an ``flock`` on
#: it, which the kernel releases when the holder exits however it exits: a file left by a killed process
#: does not block anyone.
LOCK_FILE = ".textgym.lock"


class RunDirectoryError(UsageError):
    """The run directory cannot be used as asked (in use, or holding another run); the message says why and what
    to do instead."""


@contextlib.contextmanager
def lock_run_directory(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the body (creating the directory); refuse at once if another process holds it.

    Raises:
        RunDirectoryError: another process holds the lock; the message names it (pid, host, start time).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (Windows: no flock; runs are not locked there)
        yield Path(run_dir)
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"{run_dir} is in use by another textgym train ({_holder(path)}). Two runs writing one directory "
                "would mix their checkpoints and logs: wait for it to finish (or stop it), or pass another "
                "--output-dir."
            ) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        yield run_dir
    finally:
        os.close(fd)  # releases the flock


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"a process that has not written {path} yet"


def saved_timesteps(directory: Path) -> int | None:
    """``num_timesteps`` of a ``TokenPPO.save`` / checkpoint directory (``None`` if it has no readable
    ``token_ppo.json``: missing, or written in part)."""
    try:
        value = json.loads((Path(directory) / "token_ppo.json").read_text())["num_timesteps"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def finished_message(run_dir: Path, total_timesteps: int) -> str | None:
    """What to tell the user when ``run_dir`` already trained for ``total_timesteps`` and wrote ``final/``;
    ``None`` when there is something left to do (training, or writing ``final/``)."""
    done = saved_timesteps(Path(run_dir) / "final")
    if done is None or done < total_timesteps:
        return None
    return (
        f"{run_dir} is finished: {done} of {total_timesteps} timesteps trained and final/ written; nothing to do "
        f"(final/ is left as it is). To train it longer, pass a bigger total: "
        f"textgym train --resume {run_dir} --total-timesteps {max(2 * total_timesteps, done + 1)}"
    )


#: What ``textgym train`` writes into a run directory (plus SB3's ``events.out.tfevents*`` files): an existing
#: directory holding any of them holds a run. Anything else in it is the user's and is never removed.
RUN_FILES = ("config.yaml", "progress.csv", "samples.json", "curves.png", "checkpoints", "final", "reference", "tb")


def run_files(run_dir: Path) -> list[Path]:
    """The files and directories of a run in ``run_dir`` (empty: no run there)."""
    run_dir = Path(run_dir)
    return [run_dir / name for name in RUN_FILES if (run_dir / name).exists()] + sorted(run_dir.glob("events.out.tfevents*"))


def claim_for_new_run(run_dir: Path, overwrite: bool, log=print) -> None:
    """Make ``run_dir`` ready for a run that starts from the beginning.

    Raises:
        RunDirectoryError: ``run_dir`` holds a run and ``overwrite`` is false (the message points at
            ``--resume`` and ``--overwrite``).
    """
    found = run_files(run_dir)
    if not found:
        return
    if not overwrite:
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found[:6]) + (" ..." if len(found) > 6 else "")
        raise RunDirectoryError(
            f"{run_dir} already holds a run ({names}). Continue it with `textgym train --resume {run_dir}`, "
            f"start it again with --overwrite (deletes its final model, checkpoints and logs), or pass another "
            "--output-dir."
        )
    for path in found:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    log(f"--overwrite: removed the previous run in {run_dir} ({len(found)} entries: final/, checkpoints, logs).")
