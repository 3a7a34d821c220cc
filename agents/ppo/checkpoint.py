"""Training checkpoints of ``TokenPPO``: everything a run needs to continue exactly where it stopped.

``TokenPPO.save(path)`` writes what inference needs (the policy, the hyperparameters). A checkpoint is that,
plus the training state, so that on CPU with the same seed an interrupted and resumed run logs exactly the
metrics of an uninterrupted one (``tests/agents/ppo/test_checkpoint.py`` checks every metric)::

    path/
        policy/                         the policy as a Hugging Face directory (as TokenPPO.save)
        token_ppo.json                  hyperparameters, env id, KL coefficient, counters (as TokenPPO.save)
        training_state.safetensors      exact weights (LoRA adapters unmerged), the frozen reference, the NLPO
                                        lagged copy, the optimizer's tensors, the torch RNG states
        training_state.json             the optimizer's other state, the KL controller, the Python / numpy /
                                        TokenPPO / env RNG states, step counters, the non-finite streak

No pickle anywhere: tensors are safetensors, the rest JSON. A checkpoint is written into ``path.tmp`` and
renamed into place, so a crash or a signal mid-write leaves the previous checkpoint intact (if the crash falls
between the two renames that replace an old checkpoint, :func:`read_checkpoint` finds it at ``path.old``).

Checkpoints are taken at iteration boundaries (after an update, before the next rollout): nothing of a
half-done iteration needs saving.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from agents.ppo import export as ppo_export
from agents.ppo.integrity import (DIGEST_KEY, TRAINING_STATE_SCHEMA, CheckpointError, check_json_types, file_digests,
                                   verify_file_digests)
from agents.ppo.state import TrainingState
from agents.ppo.write_errors import CheckpointWriteError, explain_write_failure

FORMAT = "textgym.TokenPPO.checkpoint/1"
STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"


__all__ = ["CheckpointError", "CheckpointWriteError", "SavedCheckpoint", "read_checkpoint", "save_checkpoint"]



# ---------------------------------------------------------------------------------------------- save
def save_checkpoint(path: str | os.PathLike, state: TrainingState, write_export: Callable[[str], None]) -> Path:
    """Write a checkpoint of ``state`` to ``path`` (a directory) atomically; returns ``path``.

    ``write_export(directory)`` writes what :meth:`TokenPPO.save` writes (the checkpoint is a superset of it,
    so ``TokenPPO.load(path)`` also works on it); the training state goes next to it.

    Raises:
        CheckpointWriteError: the write failed (disk full, ...): ``path.tmp`` was removed, the previous
            checkpoint at ``path`` is untouched, and the message says which file, which disk and how to resume.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    old = target.with_name(target.name + ".old")
    # A failed write (disk full...) removes tmp and names the intact previous checkpoint (agents/ppo/write_errors.py).
    with explain_write_failure(tmp, target, restore=(old, target)) as progress:
        _write_checkpoint(state, write_export, target, tmp, old, progress)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _write_checkpoint(training: TrainingState, write_export: Callable[[str], None], target: Path, tmp: Path,
                      old: Path, progress: dict) -> None:
    from safetensors.torch import save_file

    write_export(str(tmp))
    state, tensors = training.state_dict()
    state = {"format": FORMAT, **state}
    progress["writing"] = tmp / STATE_TENSORS
    save_file(tensors, str(tmp / STATE_TENSORS), metadata={"format": FORMAT})
    state[DIGEST_KEY] = file_digests(tmp, exclude=(STATE_JSON,))  # every other file, checked on load
    progress["writing"] = tmp / STATE_JSON
    with open(tmp / STATE_JSON, "w") as f:
        json.dump(state, f)
    progress["writing"] = tmp
    _fsync_tree(tmp)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)


def _fsync_tree(directory: Path) -> None:
    """Flush every file to disk before the rename makes the checkpoint visible (a power cut must not leave a
    renamed directory of empty files)."""
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            except OSError as e:
                # A full or failing disk may report it only now (NFS, delayed allocation): the write failed.
                # Other errors (a filesystem without fsync) do not make the files wrong.
                if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                    e.filename = e.filename or os.path.join(root, name)
                    raise
            finally:
                os.close(fd)


# ---------------------------------------------------------------------------------------------- load
def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory at ``path`` (or ``path.old`` left by a crash mid-replace); a clear error if
    there is none or it is incomplete."""
    target = Path(path)
    if not target.is_dir():
        old = target.with_name(target.name + ".old")
        if old.is_dir() and (old / STATE_JSON).is_file():
            warnings.warn(f"{target} is missing but {old} exists (a crash while replacing it): loading {old}.", stacklevel=3)
            return old
        raise CheckpointError(
            f"No checkpoint at {str(target)!r}: the directory does not exist. Pass a directory written by "
            "TokenPPO.save_checkpoint(path) (or learn(..., checkpoint_path=path)); `textgym train` keeps its "
            "latest one in RUN_DIR/checkpoints/last."
        )
    missing = [name for name in (ppo_export.STATE_FILE, STATE_JSON, STATE_TENSORS, ppo_export.POLICY_DIR) if not (target / name).exists()]
    if missing:
        hint = (
            " It looks like a TokenPPO.save() export (inference only): load it with TokenPPO.load(path), or save "
            "checkpoints with TokenPPO.save_checkpoint(path)."
            if (target / ppo_export.STATE_FILE).is_file()
            else " The checkpoint is incomplete (copied or deleted in part?): use an intact copy or start again."
        )
        raise CheckpointError(f"{str(target)!r} is not a complete TokenPPO checkpoint: it lacks {', '.join(missing)}.{hint}")
    return target


def _read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"Cannot read {str(path)!r}: {type(e).__name__}: {e}. The file is corrupt or truncated (a crash during "
            "a copy?); use an intact checkpoint (e.g. the previous one) or start the run again."
        ) from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{str(path)!r} must hold a JSON object, got {type(data).__name__}: it is corrupt.")
    return data


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError on a truncated or garbled file
        raise CheckpointError(
            f"Cannot read {str(path)!r}: {type(e).__name__}: {e}. The file is corrupt or truncated; use an intact "
            "checkpoint (e.g. the previous one) or start the run again."
        ) from e


@dataclass
class SavedCheckpoint:
    """A checkpoint read back: the export to build the algorithm from, and the training state to restore into it."""

    export: ppo_export.SavedRun
    directory: Path
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def restore(self, training_state: TrainingState) -> None:
        """Load the saved training state into ``training_state`` (of the TokenPPO built from :attr:`export`), then
        check every file's sha256 sum."""
        try:
            training_state.load_state_dict(self.state, self.tensors)
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as e:
            raise CheckpointError(
                f"The checkpoint {str(self.directory)!r} ({STATE_JSON} and {STATE_TENSORS}) does not match the TokenPPO it describes ({type(e).__name__}: {str(e)[:500]}). "
                "It is corrupt, or was written by another version of textgym or for another model."
            ) from e
        # Last: a file that is damaged enough not to parse has had its own error above; this catches the silent ones.
        verify_file_digests(self.directory, self.state.get(DIGEST_KEY), STATE_JSON)


def read_checkpoint(path: str | os.PathLike, env: Any = None, launch: dict | None = None) -> SavedCheckpoint:
    """Read :func:`save_checkpoint`'s directory (or its ``.old`` twin after a crash between two renames).

    ``launch``: ``distributed`` / ``fsdp`` (never saved). A missing or corrupt file raises :class:`CheckpointError`
    naming it; ``TokenPPO.load_checkpoint`` builds the algorithm from the result and restores its state.
    """
    target = find_checkpoint(path)
    state = _read_json(target / STATE_JSON)
    if state.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(target / STATE_JSON)!r} has format {state.get('format')!r}; this textgym reads {FORMAT!r}."
        )
    check_json_types(target / STATE_JSON, state, TRAINING_STATE_SCHEMA)  # an edited type names the file and key
    _read_json(target / ppo_export.STATE_FILE)  # a clear error for a corrupt token_ppo.json before it is parsed
    tensors = _read_tensors(target / STATE_TENSORS)
    try:
        export = ppo_export.read_export(str(target), env, dict(launch or {}), verify=False)  # checked in restore, whole
    except (OSError, ValueError, KeyError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"Cannot rebuild TokenPPO from the checkpoint {str(target)!r}: {type(e).__name__}: {e}") from e
    return SavedCheckpoint(export, target, state, tensors)
