"""A checkpoint write that fails part-way (disk full, any OSError): one clear message, no partial ``last.tmp``,
the previous checkpoint untouched. The failure is injected into the writers, not made by filling a disk."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

from agents.ppo import TokenPPO
from agents.ppo.write_errors import CheckpointWriteError, disk_of, os_error_code
from tests.agents.ppo.conftest import ToyVectorEnv
from tests.agents.ppo.test_checkpoint import make

pytestmark = pytest.mark.usefixtures("single_thread")


def digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def full_disk_after(nbytes: int):
    """A writer that writes ``nbytes`` of its output to the file, then fails as a full disk does."""
    def fail(path) -> None:
        with open(path, "wb") as f:
            f.write(b"\0" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")
    return fail


def partial_tensors(tensors, filename, metadata=None):
    full_disk_after(1000)(filename)


def partial_json(obj, fp, **kwargs):
    fp.write(json.dumps(obj)[:50])
    fp.flush()
    raise OSError(errno.ENOSPC, "No space left on device")


def safetensors_storage_full(tensors, filename, metadata=None):
    from safetensors import SafetensorError

    Path(filename).write_bytes(b"\0" * 100)
    # What safetensors (Rust) raises when write(2) fails with ENOSPC.
    raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')


def fsync_full(fd):
    raise OSError(errno.ENOSPC, "No space left on device")


INJECTIONS = {  # where the write fails -> (what to patch, the replacement, the file the message must name)
    "training_state.safetensors": ("safetensors.torch.save_file", partial_tensors, "last.tmp/training_state.safetensors"),
    "safetensors' own error": ("safetensors.torch.save_file", safetensors_storage_full, "last.tmp/training_state.safetensors"),
    "token_ppo.json": ("json.dump", partial_json, "last.tmp"),
    "fsync": ("os.fsync", fsync_full, "last.tmp/"),
}


@pytest.fixture(scope="module")
def run_with_checkpoint(tmp_path_factory):
    algo = make()
    algo.learn(20)
    path = tmp_path_factory.mktemp("full") / "last"
    algo.save_checkpoint(str(path))
    algo.learn(20, reset_num_timesteps=False)  # a later state, whose checkpoint will fail to write
    return algo, path


@pytest.mark.parametrize("where", INJECTIONS)
def test_a_full_disk_mid_checkpoint_says_so_and_leaves_the_previous_one_intact(run_with_checkpoint, where, monkeypatch):
    algo, path = run_with_checkpoint
    before, iteration = digest(path), json.loads((path / "training_state.json").read_text())["iteration"]
    assert algo.iteration > iteration
    target, replacement, named = INJECTIONS[where]
    monkeypatch.setattr(target, replacement)
    with pytest.raises(CheckpointWriteError) as info:
        algo.save_checkpoint(str(path))
    monkeypatch.undo()
    message = str(info.value)
    assert message.startswith("no space left on "), message
    assert f"while writing {path.parent / named}" in message
    assert f"the last checkpoint (iteration {iteration}, {path}) is intact" in message
    assert "free space and resume with TokenPPO.load_checkpoint(" in message
    assert info.value.errno == errno.ENOSPC
    assert sorted(os.listdir(path.parent)) == ["last"]  # no last.tmp, no last.old
    assert digest(path) == before
    assert TokenPPO.load_checkpoint(str(path), env=ToyVectorEnv(num_envs=8), device="cpu").iteration == iteration


def test_a_failed_rename_puts_the_previous_checkpoint_back(run_with_checkpoint, monkeypatch):
    # Any OSError counts, also in the last step: the previous checkpoint was already moved to last.old.
    algo, path = run_with_checkpoint
    before = digest(path)
    real_rename = Path.rename

    def rename(self, target):
        if self.name == "last.tmp":
            raise OSError(errno.EIO, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(CheckpointWriteError, match=r"Input/output error \(errno 5\) on .* while writing .*last.tmp.*is intact; fix the disk"):
        algo.save_checkpoint(str(path))
    monkeypatch.undo()
    assert sorted(os.listdir(path.parent)) == ["last"] and digest(path) == before


def test_the_first_checkpoint_failing_says_there_is_none_to_resume(tmp_path, monkeypatch):
    algo = make()
    monkeypatch.setattr("safetensors.torch.save_file", partial_tensors)
    with pytest.raises(CheckpointWriteError, match=r"there is no earlier checkpoint; free space and start again$"):
        algo.save_checkpoint(str(tmp_path / "last"))
    assert os.listdir(tmp_path) == []


def test_errors_that_are_not_about_the_disk_pass_through_and_still_clean_up(tmp_path, monkeypatch):
    algo = make()

    def bug(*args, **kwargs):
        raise RuntimeError("a bug, not a disk")

    monkeypatch.setattr("safetensors.torch.save_file", bug)
    with pytest.raises(RuntimeError, match="a bug, not a disk"):
        algo.save_checkpoint(str(tmp_path / "last"))
    assert os.listdir(tmp_path) == []


def test_os_error_code_and_disk_description(tmp_path):
    from safetensors import SafetensorError

    assert os_error_code(OSError(errno.ENOSPC, "full")) == errno.ENOSPC
    assert os_error_code(SafetensorError("Error while serializing: IoError(Os { code: 122, kind: QuotaExceeded })")) == 122
    assert os_error_code(SafetensorError("Error while deserializing header: HeaderTooLarge")) is None
    assert os_error_code(ValueError("x")) is None
    assert "MB free" in disk_of(tmp_path / "not" / "yet" / "made")


def test_under_torchrun_a_full_disk_on_rank_0_stops_every_rank(tmp_path):
    # Only rank 0 writes; the others used to wait at the barrier after the write for ever (NCCL: 30 minutes).
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    worker = Path(__file__).with_name("write_errors_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker), str(tmp_path)]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as e:  # a rank waiting for ever: the failure this test is about
        raise AssertionError(f"the ranks did not stop: {e.stdout!s:.3000} {e.stderr!s:.3000}") from None
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0 = json.loads((tmp_path / "rank0.json").read_text())["outcome"]
    rank1 = json.loads((tmp_path / "rank1.json").read_text())["outcome"]
    assert rank0.startswith("CheckpointWriteError: no space left on ") and "there is no earlier checkpoint" in rank0
    assert rank1 == f"WriteFailedOnAnotherRank: rank 0 could not write the checkpoint {tmp_path / 'last'} (rank 0's error says why); this rank stops with it."
    assert not (tmp_path / "last.tmp").exists()
