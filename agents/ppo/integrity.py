"""Checksums of the files TokenPPO writes (checkpoints and ``TokenPPO.save`` exports), checked on load.

Each directory records the sha256 of every file written before its JSON manifest (``training_state.json`` of a
checkpoint, ``token_ppo.json`` of an export) under the key ``"sha256"``; loading recomputes them. A file whose
bytes changed since it was written (a flipped bit on disk, an interrupted copy, a hand edit) then raises
:class:`CheckpointError` naming the file, even when it still parses. Directories written before checksums were
recorded have no ``"sha256"`` key and load unchecked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DIGEST_KEY = "sha256"
_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or corrupt; the message names the path and the fix."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(directory: str | os.PathLike, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``directory`` except the names in ``exclude``."""
    root = Path(directory)
    return {
        path.relative_to(root).as_posix(): sha256_of(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() not in exclude
    }


def verify_file_digests(directory: str | os.PathLike, digests: object, manifest: str) -> None:
    """Check the files under ``directory`` against ``digests`` (as :func:`file_digests` made them; ``None``:
    nothing recorded, nothing checked).

    Raises:
        CheckpointError: a recorded file is missing or its sha256 differs; or ``digests`` is not such a mapping.
    """
    if digests is None:
        return
    root = Path(directory)
    if not isinstance(digests, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
        raise CheckpointError(f"{str(root / manifest)!r}: {DIGEST_KEY!r} must map file names to sha256 hex digests; it is corrupt.")
    for name, expected in digests.items():
        path = root / name
        if not path.is_file():
            raise CheckpointError(
                f"{str(path)!r} is missing: {manifest} records its sha256, so the directory is incomplete (copied or "
                "deleted in part?). Use an intact copy (e.g. the previous checkpoint) or start again."
            )
        if sha256_of(path) != expected:
            raise CheckpointError(
                f"{str(path)!r} does not match the sha256 recorded in {manifest} when it was written: the file is "
                "corrupt (a disk or copy error) or was edited. Use an intact copy (e.g. the previous checkpoint) or "
                "start again."
            )
