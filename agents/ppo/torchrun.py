"""Joining a torchrun job: is this process one of its ranks, the process group and its device, the per-rank
layout check. Moved out of ``agents/ppo/distributed.py`` unchanged; ``agents.ppo.distributed`` re-exports every
name."""

from __future__ import annotations

import datetime
import os

import torch

TORCHRUN_ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (``torch.distributed.run``) started this process with more than one rank."""
    return all(v in os.environ for v in TORCHRUN_ENV_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def should_distribute(distributed: bool | None) -> bool:
    """Resolve TokenPPO's ``distributed`` argument: ``None`` detects ``torchrun`` / an initialised group."""
    import torch.distributed as dist

    group_ready = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if distributed is None:
        return group_ready or launched_by_torchrun()
    # An explicit True also joins a one-process job (torchrun --nproc_per_node 1, or a group of one): the
    # DDP / NCCL code path on a single GPU, which benchmarks/gpu_check.py runs.
    in_a_job = all(v in os.environ for v in TORCHRUN_ENV_VARS) or (dist.is_available() and dist.is_initialized())
    if distributed and not in_a_job:
        raise RuntimeError(
            "distributed=True but this process is not part of a multi-process job: launch it with "
            "`torchrun --nproc_per_node N script.py` (which sets RANK / WORLD_SIZE / LOCAL_RANK), initialise "
            "torch.distributed yourself, or pass distributed=None to detect it."
        )
    return bool(distributed)


def init_process_group(device: torch.device | str = "auto") -> torch.device:
    """Join torchrun's process group if that is not done yet; returns this rank's device.

    The backend is NCCL when this rank runs on CUDA, else gloo. On CUDA the device is ``cuda:LOCAL_RANK``
    (also made the current CUDA device), so ``device="auto"`` / ``"cuda"`` put each rank on its own GPU.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or an explicit ``"cuda:i"``.
    """
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        missing = [v for v in TORCHRUN_ENV_VARS if v not in os.environ]
        if missing:
            raise RuntimeError(
                f"Cannot join a process group: {', '.join(missing)} not set. Launch with torchrun, or call "
                "torch.distributed.init_process_group yourself before building TokenPPO."
            )
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        # Gloo's default 30 min is fine; the explicit value keeps NCCL from its shorter default on slow rewards.
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30), **kwargs)
    return device


def check_layout(world_size: int, num_envs: int, batch_size: int, group_size: int) -> None:
    """The constraints on a run's slots and minibatches (``TokenPPOConfig.check_slots``), with errors that say
    what to change.

    Args:
        world_size: number of ranks (1: a single process).
        num_envs: env slots of this rank.
        batch_size: the global minibatch (sequences per optimiser step over all ranks).
        group_size: completions per prompt (group baselines).
    """
    if batch_size % world_size:
        raise ValueError(
            f"batch_size={batch_size} is the global minibatch, split evenly over {world_size} ranks: use a multiple "
            f"of the world size, e.g. batch_size={world_size * max(1, batch_size // world_size)}."
        )
    if num_envs % group_size and world_size == 1:
        raise ValueError(
            f"num_envs={num_envs} must be a multiple of group_size={group_size} (each prompt fills "
            f"{group_size} slots); use num_envs={group_size * max(1, num_envs // group_size)}."
        )
    if num_envs % group_size:
        raise ValueError(
            f"num_envs={num_envs} slots on this rank do not hold whole groups of group_size={group_size}: under "
            f"torchrun each prompt's group must stay on one rank, so num_envs (per rank) must be a multiple of "
            f"group_size; use num_envs={group_size * max(1, num_envs // group_size)}."
        )
