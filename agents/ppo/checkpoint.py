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
between the two renames that replace an old checkpoint, :func:`load_checkpoint` finds it at ``path.old``).

Checkpoints are taken at iteration boundaries (after an update, before the next rollout): nothing of a
half-done iteration needs saving.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from agents.ppo import io as ppo_io
from agents.ppo.integrity import (DIGEST_KEY, TRAINING_STATE_SCHEMA, CheckpointError, check_json_types, file_digests,
                                   verify_file_digests)
from agents.ppo.write_errors import CheckpointWriteError, explain_write_failure

FORMAT = "textgym.TokenPPO.checkpoint/1"
STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"


__all__ = ["CheckpointError", "CheckpointWriteError", "load_checkpoint", "save_checkpoint", "preserved_rng"]


# ---------------------------------------------------------------------------------------------- RNG states
def capture_rng_state(algo: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Every random state a run draws from: ``(json_part, tensor_part)``.

    Python's ``random``, numpy's global generator, torch's global CPU (and CUDA) generators, the run's
    ``TokenPPO.generator`` (token sampling), ``TokenPPO.np_random`` (prompts, minibatch order) and the env's
    ``np_random`` (its own prompt draws; a reward may also use the global generators).
    """
    np_state = np.random.get_state(legacy=False)
    base = algo.env.unwrapped
    env_rng = getattr(base, "_np_random", None)
    json_part = {
        "python": _jsonable_python_state(random.getstate()),
        "numpy_global": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
        "np_random": algo.np_random.bit_generator.state,
        "env_np_random": env_rng.bit_generator.state if env_rng is not None else None,
        "env_np_random_seed": _int_or_none(getattr(base, "_np_random_seed", None)),
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_initialized() else 0,
    }
    tensors = {"rng/torch_cpu": torch.get_rng_state(), "rng/generator": algo.generator.get_state()}
    for i in range(json_part["cuda_devices"]):
        tensors[f"rng/torch_cuda/{i}"] = torch.cuda.get_rng_state(i)
    return json_part, tensors


def restore_rng_state(algo: Any, json_part: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Put back what :func:`capture_rng_state` recorded."""
    version, internal, gauss = json_part["python"]
    random.setstate((version, tuple(internal), gauss))
    g = json_part["numpy_global"]
    np.random.set_state({**g, "state": {"key": np.asarray(g["state"]["key"], dtype=np.uint32), "pos": g["state"]["pos"]}})
    algo.np_random.bit_generator.state = json_part["np_random"]
    base = algo.env.unwrapped
    if json_part["env_np_random"] is not None:
        base.np_random.bit_generator.state = json_part["env_np_random"]  # the property creates one if needed
        if hasattr(base, "_np_random_seed"):
            base._np_random_seed = json_part["env_np_random_seed"]
    torch.set_rng_state(tensors["rng/torch_cpu"])
    algo.generator.set_state(tensors["rng/generator"])
    for i in range(min(json_part.get("cuda_devices", 0), torch.cuda.device_count() if torch.cuda.is_available() else 0)):
        torch.cuda.set_rng_state(tensors[f"rng/torch_cuda/{i}"], i)


@contextlib.contextmanager
def preserved_rng(algo: Any) -> Iterator[None]:
    """Run the body (e.g. sample generations shown to the user) without moving any of the run's random states,
    so that showing samples before training does not change the training run (nor a resumed one)."""
    json_part, tensors = capture_rng_state(algo)
    try:
        yield
    finally:
        restore_rng_state(algo, json_part, tensors)


def _jsonable_python_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# ---------------------------------------------------------------------------------------------- save
def save_checkpoint(algo: Any, path: str | os.PathLike) -> Path:
    """Write ``algo``'s full training state to ``path`` (a directory) atomically; returns ``path``.

    The directory is a superset of :meth:`TokenPPO.save`'s, so ``TokenPPO.load(path)`` also works on it.

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
        _write_checkpoint(algo, target, tmp, old, progress)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _write_checkpoint(algo: Any, target: Path, tmp: Path, old: Path, progress: dict) -> None:
    from safetensors.torch import save_file

    ppo_io.save(algo, str(tmp))

    tensors: dict[str, torch.Tensor] = {}
    # clone(): tied weights share storage, which safetensors refuses; cpu(): one file whatever the device.
    for prefix, module in (("policy", algo.policy), ("reference", algo.ref_policy), ("nlpo", algo.nlpo.model if algo.nlpo else None)):
        if module is not None:
            tensors.update({f"{prefix}/{k}": v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()})
    optimizer_json, optimizer_tensors = _split_optimizer_state(algo.optimizer.state_dict())
    tensors.update(optimizer_tensors)
    rng_json, rng_tensors = capture_rng_state(algo)
    tensors.update(rng_tensors)
    state = {
        "format": FORMAT,
        "num_timesteps": algo.num_timesteps,
        "iteration": algo.iteration,
        "first_reset": algo._first_reset,
        "kl_controller": dict(vars(algo.kl_controller)),
        "sampler": {"temperature": algo.sampler.temperature, "top_k": algo.sampler.top_k, "top_p": algo.sampler.top_p},
        "nonfinite": algo.nonfinite_guard.state_dict(),
        "optimizer": optimizer_json,
        "rng": rng_json,
        "modules": sorted({k.split("/", 1)[0] for k in tensors if k.split("/", 1)[0] in ("policy", "reference", "nlpo")}),
    }
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


def _split_optimizer_state(state_dict: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """``optimizer.state_dict()`` -> (JSON: param groups + non-tensor state, tensors named ``optimizer/<id>/<key>``)."""
    tensors, per_param = {}, {}
    for pid, entry in state_dict["state"].items():
        json_entry = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{pid}/{key}"] = value.detach().cpu().clone().contiguous()
                json_entry[key] = {"tensor": f"optimizer/{pid}/{key}"}
            else:
                json_entry[key] = {"value": value}
        per_param[str(pid)] = json_entry
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return {"state": per_param, "param_groups": groups}, tensors


def _join_optimizer_state(json_part: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {
        int(pid): {k: (tensors[v["tensor"]] if "tensor" in v else v["value"]) for k, v in entry.items()}
        for pid, entry in json_part["state"].items()
    }
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in json_part["param_groups"]]
    return {"state": state, "param_groups": groups}


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
    missing = [name for name in (ppo_io.STATE_FILE, STATE_JSON, STATE_TENSORS, ppo_io.POLICY_DIR) if not (target / name).exists()]
    if missing:
        hint = (
            " It looks like a TokenPPO.save() export (inference only): load it with TokenPPO.load(path), or save "
            "checkpoints with TokenPPO.save_checkpoint(path)."
            if (target / ppo_io.STATE_FILE).is_file()
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


def load_checkpoint(cls: type, path: str | os.PathLike, env: Any = None, device: Any = "auto", launch: dict | None = None) -> Any:
    """Rebuild a ``TokenPPO`` from :func:`save_checkpoint`'s directory with every training state restored.

    ``launch``: ``distributed`` / ``fsdp`` (never saved). Under torchrun every rank loads rank 0's checkpoint,
    then takes its own random streams again (``seed + rank``, moved on by the iteration): a distributed resume
    continues the run, but only a single-process resume reproduces the uninterrupted run exactly.
    """
    target = find_checkpoint(path)
    state = _read_json(target / STATE_JSON)
    if state.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(target / STATE_JSON)!r} has format {state.get('format')!r}; this textgym reads {FORMAT!r}."
        )
    check_json_types(target / STATE_JSON, state, TRAINING_STATE_SCHEMA)  # an edited type names the file and key
    _read_json(target / ppo_io.STATE_FILE)  # a clear error for a corrupt token_ppo.json before load() parses it
    tensors = _read_tensors(target / STATE_TENSORS)
    try:
        algo = ppo_io.load(cls, str(target), env, device, dict(launch or {}), verify=False)  # checked below, whole
    except (OSError, ValueError, KeyError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"Cannot rebuild TokenPPO from the checkpoint {str(target)!r}: {type(e).__name__}: {e}") from e
    try:
        for prefix, module in (("policy", algo.policy), ("reference", algo.ref_policy), ("nlpo", algo.nlpo.model if algo.nlpo else None)):
            if module is None:
                continue
            weights = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + "/")}
            if not weights:
                raise KeyError(f"no {prefix!r} weights")
            module.load_state_dict(weights, strict=True)
        algo.optimizer.load_state_dict(_join_optimizer_state(state["optimizer"], tensors))
        restore_rng_state(algo, state["rng"], tensors)
        algo.num_timesteps, algo.iteration = int(state["num_timesteps"]), int(state["iteration"])
        algo._first_reset = bool(state["first_reset"])
        for key, value in state["kl_controller"].items():
            setattr(algo.kl_controller, key, value)
        for key, value in state["sampler"].items():
            setattr(algo.sampler, key, value)
        algo.nonfinite_guard.load_state_dict(state["nonfinite"])
        if getattr(algo, "dist", None) is not None and algo.dist.enabled:
            stream = algo.dist.rank_seed((algo.seed or 0) + 1_000_003 * algo.iteration)
            algo.generator.manual_seed(stream)
            algo.np_random = np.random.default_rng(stream)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise CheckpointError(
            f"The checkpoint {str(target)!r} ({STATE_JSON} and {STATE_TENSORS}) does not match the TokenPPO it describes ({type(e).__name__}: {str(e)[:500]}). "
            "It is corrupt, or was written by another version of textgym or for another model."
        ) from e
    # Last: a file that is damaged enough not to parse has had its own error above; this catches the silent ones.
    verify_file_digests(target, state.get(DIGEST_KEY), STATE_JSON)
    return algo
