"""``textgym train``'s run directory: is the run finished, who holds it, may it be written.

A run directory holds one run. These helpers decide, before anything is written into it, whether a command
may go on: one process at a time holds it (:func:`lock_run_directory`), and a finished run is left as it is
(:func:`finished_message`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from textgym.cli import UsageError

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
