"""Run by ``test_write_errors.py`` under ``torchrun --nproc_per_node 2`` (CPU, gloo): rank 0's disk is full when
the checkpoint is written. Usage: ``write_errors_worker.py OUT_DIR``; each rank writes ``OUT_DIR/rank<r>.json``
with what ``save_checkpoint`` did (before the fix, rank 1 waited at the barrier for ever)."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root

import safetensors.torch  # noqa: E402

from agents.ppo import TokenPPO  # noqa: E402
from agents.ppo.write_errors import CheckpointWriteError  # noqa: E402
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model  # noqa: E402


def full_disk(tensors, filename, metadata=None):
    Path(filename).write_bytes(b"\0" * 100)
    raise OSError(errno.ENOSPC, "No space left on device")


def main() -> None:
    out = Path(sys.argv[1])
    algo = TokenPPO(tiny_model(), ToyVectorEnv(num_envs=4), batch_size=8, seed=0, device="cpu")
    safetensors.torch.save_file = full_disk  # rank 0 is the one that writes
    try:
        algo.save_checkpoint(str(out / "last"))
        outcome = "saved"
    except CheckpointWriteError as error:
        outcome = f"{type(error).__name__}: {error}"
    (out / f"rank{algo.dist.rank}.json").write_text(json.dumps({"outcome": outcome}))
    dist.barrier()
    # No teardown: destroying a gloo group under a live DDP model can deadlock (seen here: the gloo thread
    # waits for the GIL while the main thread, holding it, waits for the gloo thread); the results are written.
    os._exit(0)


if __name__ == "__main__":
    main()
