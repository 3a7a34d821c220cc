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
from typing import Any

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


# ---------------------------------------------------------------------------------------------- JSON types
# The manifests are JSON a user can edit: a value of the wrong type must be an error naming the file and the key,
# not a TypeError from deep inside the restore. Kinds: the JSON type names used in the messages.
INT, NUMBER, BOOL, STR, LIST, OBJECT, NULL = "an integer", "a number", "true or false", "a string", "a list", "an object", "null"
ANY_VALUE = "*"  # in a schema: the rule for every value of an object

#: ``training_state.json`` (agents/ppo/checkpoint.py); a key ending in ``?`` may be missing (older checkpoints).
TRAINING_STATE_SCHEMA = {
    "format": STR, "num_timesteps": INT, "iteration": INT, "first_reset": BOOL,
    "kl_controller": {ANY_VALUE: NUMBER},
    "sampler": {"temperature": NUMBER, "top_k": (INT, NULL), "top_p": (NUMBER, NULL)},
    "nonfinite": {"consecutive": INT},
    "optimizer": {"state": {ANY_VALUE: OBJECT}, "param_groups": LIST},
    "rng": {"python": LIST, "numpy_global": OBJECT, "np_random": OBJECT, "env_np_random": (OBJECT, NULL),
            "env_np_random_seed?": (INT, NULL), "cuda_devices?": INT},
    "modules?": LIST, f"{DIGEST_KEY}?": OBJECT,
}
#: ``token_ppo.json`` (agents/ppo/export.py); ``hyperparams`` values are checked against the constructor's defaults.
SAVED_STATE_SCHEMA = {
    "format?": STR, "hyperparams": OBJECT, "env_id?": (STR, NULL), "kl_coef_now": NUMBER, "num_timesteps": INT,
    "iteration": INT, "lora_merged?": BOOL, f"{DIGEST_KEY}?": OBJECT,
}


def _is_kind(value: object, kind: str) -> bool:
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {BOOL: bool, STR: str, LIST: list, OBJECT: dict, NULL: type(None)}[kind])


def check_json_types(path: str | os.PathLike, data: dict, schema: dict, _where: tuple[str, ...] = ()) -> None:
    """Check ``data`` (read from the JSON file ``path``) against ``schema``: ``{key: kind, (kinds...) or a nested
    schema}``, ``"key?"`` optional, ``"*"`` for every value.

    Raises:
        CheckpointError: a key is missing or holds the wrong type; the message names the file and the key.
    """
    for raw_key, rule in schema.items():
        keys = list(data) if raw_key == ANY_VALUE else [raw_key.rstrip("?")]
        for key in keys:
            dotted = ".".join((*_where, str(key)))
            if key not in data:
                if raw_key.endswith("?"):
                    continue
                raise CheckpointError(
                    f"{str(path)!r} lacks the key {dotted!r}: the file is corrupt or was edited. Use an intact copy "
                    "(e.g. the previous checkpoint) or start again."
                )
            value = data[key]
            if isinstance(rule, dict):
                if not isinstance(value, dict):
                    _wrong_type(path, dotted, value, (OBJECT,))
                check_json_types(path, value, rule, (*_where, str(key)))
            elif not any(_is_kind(value, kind) for kind in (rule if isinstance(rule, tuple) else (rule,))):
                _wrong_type(path, dotted, value, rule if isinstance(rule, tuple) else (rule,))


def _wrong_type(path: str | os.PathLike, key: str, value: object, kinds: tuple[str, ...]) -> None:
    raise CheckpointError(
        f"{str(path)!r}: {key!r} must be {' or '.join(kinds)}, got {type(value).__name__} {value!r:.60}: the file is "
        "corrupt or was edited by hand. Put back a value of that type, or use an intact copy (e.g. the previous "
        "checkpoint)."
    )


def check_saved_state(path: str | os.PathLike, state: dict, defaults: dict[str, Any]) -> None:
    """``token_ppo.json``'s types, its hyperparameters included: each must have the JSON type of its default in
    ``defaults`` (the hyperparameter name -> its default value), or be null (a number where the default is a
    number...; anything where the default is ``None``). The config then checks the values themselves (and names
    the bad one)."""
    check_json_types(path, state, SAVED_STATE_SCHEMA)
    # Loose on purpose: refuse what cannot be meant (a string for a number), never a value the constructor takes.
    kinds = {bool: (BOOL, NUMBER, NULL), int: (NUMBER, NULL), float: (NUMBER, NULL), str: (STR, NULL)}
    for name, default in defaults.items():
        value = state["hyperparams"].get(name)
        expected = kinds.get(type(default))
        if name in state["hyperparams"] and expected and not any(_is_kind(value, kind) for kind in expected):
            _wrong_type(path, f"hyperparams.{name}", value, expected)
