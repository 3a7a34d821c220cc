"""A checkpoint or export that cannot be written (disk full, quota, read-only or failing disk).

Writing a checkpoint goes into ``path.tmp`` and renames it into place (``agents/ppo/checkpoint.py``), so a
failed write never touches the previous checkpoint. What is left to do when a write fails is to remove the
partial ``path.tmp`` and to tell the user, in one message, what happened and what to do: which disk, which
file, which checkpoint is intact, how to continue. :class:`CheckpointWriteError` carries that message; the
writers raise it from whatever the failure looked like (an ``OSError`` from ``open``/``write``, or the
``SafetensorError`` that safetensors raises with the OS error inside its message).
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

__all__ = ["CheckpointWriteError", "WriteFailedOnAnotherRank", "explain_write_failure", "checkpoint_iteration"]

#: safetensors reports an OS error as ``Error while serializing: IoError(Os { code: 28, kind: StorageFull, ... })``.
_RUST_OS_CODE = re.compile(r"Os \{ code: (\d+)")


class CheckpointWriteError(OSError):
    """A checkpoint or export could not be written; the partial write was removed and the previous checkpoint
    is intact. ``str(error)`` is the whole explanation.

    Attributes:
        errno: the OS error number (``errno.ENOSPC`` for a full disk).
        path: the file (or directory) being written when it failed.
        checkpoint: the intact checkpoint to resume from (``None`` if the run has none yet).
        iteration: that checkpoint's iteration (``None`` if unknown).
    """

    def __init__(self, code: int, path: str, checkpoint: str | None, iteration: int | None, cause: str,
                 resume: str | None = None):
        super().__init__(code, cause)
        self.path, self.checkpoint, self.iteration, self.cause = path, checkpoint, iteration, cause
        self.resume = resume

    def with_resume(self, resume: str) -> "CheckpointWriteError":
        """The same error, saying to resume with ``resume`` (e.g. ``textgym train --resume DIR``)."""
        return CheckpointWriteError(self.errno, self.path, self.checkpoint, self.iteration, self.cause, resume)

    def __str__(self) -> str:
        problem = {
            errno_codes.ENOSPC: f"no space left on {disk_of(self.path)}",
            errno_codes.EDQUOT: f"disk quota exceeded on {disk_of(self.path)}",
            errno_codes.EROFS: f"{disk_of(self.path)} is read-only",
        }.get(self.errno, f"{self.cause} (errno {self.errno}) on {disk_of(self.path)}")
        if self.checkpoint is None:
            kept = "there is no earlier checkpoint"
        else:
            at = f"iteration {self.iteration}" if self.iteration is not None else "its iteration unknown"
            kept = f"the last checkpoint ({at}, {self.checkpoint}) is intact"
        fix = {errno_codes.ENOSPC: "free space", errno_codes.EDQUOT: "free space or raise the quota",
               errno_codes.EROFS: "make it writable"}.get(self.errno, "fix the disk")
        resume = self.resume or (
            f"TokenPPO.load_checkpoint({self.checkpoint!r}, env=...).learn(total_timesteps - model.num_timesteps, "
            "reset_num_timesteps=False)" if self.checkpoint else None
        )
        return f"{problem} while writing {self.path}; {kept}; {fix} and " + (f"resume with {resume}" if resume else "start again")


class WriteFailedOnAnotherRank(CheckpointWriteError):
    """Under torchrun: rank 0 could not write the checkpoint (its own error says why); this rank stops with it
    instead of waiting at the barrier for a checkpoint that will not come."""

    def __init__(self, path: str):
        super().__init__(errno_codes.EIO, path, None, None, "rank 0 could not write the checkpoint")

    def with_resume(self, resume: str) -> "WriteFailedOnAnotherRank":
        return self

    def __str__(self) -> str:
        return f"rank 0 could not write the checkpoint {self.path} (rank 0's error says why); this rank stops with it."


def os_error_code(error: BaseException) -> int | None:
    """The OS error number behind ``error`` (an ``OSError``, or safetensors' error wrapping one), else ``None``."""
    if isinstance(error, OSError):
        return error.errno if error.errno is not None else errno_codes.EIO
    if type(error).__name__ == "SafetensorError" and (match := _RUST_OS_CODE.search(str(error))):
        return int(match.group(1))
    return None


def disk_of(path: str | os.PathLike) -> str:
    """``"/dev/sda1 (mounted at /data, 12 MB free)"``: the filesystem holding ``path``, as well as it can be told."""
    existing = Path(os.path.abspath(path))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    mount = existing
    try:
        while mount != mount.parent and os.stat(mount.parent).st_dev == os.stat(mount).st_dev:
            mount = mount.parent
        free = shutil.disk_usage(existing).free
    except OSError:
        return f"the device holding {existing}"
    source = "the device"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1] == str(mount):
                source = fields[0]  # the last match is the one on top
    return f"{source} (mounted at {mount}, {free / 1e6:.0f} MB free)"


def checkpoint_iteration(path: str | os.PathLike) -> int | None:
    """The iteration recorded in a checkpoint (or export) directory, ``None`` if it has no readable one."""
    for name in ("training_state.json", "token_ppo.json"):
        try:
            value = json.loads((Path(path) / name).read_text())["iteration"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@contextlib.contextmanager
def explain_write_failure(partial: Path, checkpoint: Path | None, restore: tuple[Path, Path] | None = None) -> Iterator[dict]:
    """Around writing ``partial`` (a temp directory renamed into place afterwards): on any failure remove it;
    an OS-level failure becomes :class:`CheckpointWriteError` naming the file, the intact ``checkpoint`` and how
    to resume.

    Yields a dict whose ``"writing"`` entry the body keeps pointing at the file it is writing (an ``OSError``
    from ``write()`` does not name its file). ``restore``: ``(old, target)``: if the body had moved ``target``
    to ``old`` before failing, move it back.
    """
    state = {"writing": partial}
    try:
        yield state
    except BaseException as error:  # KeyboardInterrupt too: never leave a partial directory behind
        shutil.rmtree(partial, ignore_errors=True)
        if restore is not None and restore[0].is_dir() and not restore[1].exists():
            restore[0].rename(restore[1])
        code = os_error_code(error)
        if code is None or isinstance(error, CheckpointWriteError):
            raise
        path = getattr(error, "filename", None) or state["writing"]
        intact, iteration = None, None
        if checkpoint is not None:
            for candidate in (checkpoint, checkpoint.with_name(checkpoint.name + ".old")):  # .old: see read_checkpoint
                if candidate.is_dir():
                    intact, iteration = checkpoint, checkpoint_iteration(candidate)
                    break
        cause = getattr(error, "strerror", None) or str(error)
        raise CheckpointWriteError(code, str(path), None if intact is None else str(intact), iteration, cause) from error
