"""Data-parallel TokenPPO (agents/ppo/distributed.py): 2 gloo processes on CPU against one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.ppo import TokenPPO
from agents.ppo.distributed import DistributedContext, check_layout, launched_by_torchrun, should_distribute
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    """One `torchrun --nproc_per_node 2` launch of distributed_worker.py (every case in one go: ~15 s)."""
    out = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    # --standalone: a local rendezvous on a free port, so parallel test runs do not collide.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text()), out


@pytest.mark.parametrize("case", ["gae", "grpo", "gae_fsdp"])
def test_two_ranks_update_equals_one_process_on_the_same_global_batch(two_rank_results, case):
    r = two_rank_results[0][case]
    assert r["num_losses_match"] and r["steps"] >= 2
    assert r["max_abs_loss_diff"] < 1e-5, r
    assert r["max_abs_param_diff"] < 1e-5, r  # the whole update, not only the logged loss
    assert r["max_abs_advantage_diff"] < 1e-6  # whitening / group baselines over the global batch
    assert all(d < 1e-6 for d in r["metric_diffs"].values()), r["metric_diffs"]  # global KL, reward, loss
    # Something was learnt (the comparison is not between two untouched models).
    assert max(abs(a) for a in r["losses_single"]) > 1e-3


def test_two_ranks_run_ddp_and_fsdp(two_rank_results):
    results = two_rank_results[0]
    assert results["gae"]["train_policy_class"] == "DataParallelPolicy"
    assert results["gae_fsdp"]["policy_class"].startswith("FSDP")


def test_learn_counts_global_tokens_and_only_rank_0_writes_checkpoints(two_rank_results):
    results, out = two_rank_results
    learn = results["learn"]
    assert learn["ranks_sampled_different_episodes"]  # seed + rank
    assert learn["buffers_equal_on_all_ranks"]  # the gathered global rollout
    # 96 tokens asked; each iteration generates <= 2 ranks x 4 slots x 4 tokens = 32 globally.
    assert 96 <= learn["num_timesteps"] <= 96 + 32 and learn["iterations"] >= 3
    assert not (out / "writes-rank1.txt").exists()
    writes = (out / "writes-rank0.txt").read_text().splitlines()
    # CheckpointCallback saves at each rollout start after the first (iteration boundaries), plus the final one.
    assert len(writes) == learn["iterations"]
    assert (out / "run" / "checkpoints" / "last" / "token_ppo.json").is_file()


def test_single_process_by_default_and_errors_that_name_the_launch(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert not launched_by_torchrun() and not should_distribute(None) and not should_distribute(False)
    with pytest.raises(RuntimeError, match="torchrun"):
        should_distribute(True)
    with pytest.raises(ValueError, match="torchrun"):
        TokenPPO(tiny_model(), ToyVectorEnv(num_envs=4), device="cpu", fsdp=True)
    algo = TokenPPO(tiny_model(), ToyVectorEnv(num_envs=4), device="cpu")
    assert not algo.dist.enabled and algo.train_policy is algo.policy and algo.dist.is_main
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not should_distribute(None)  # torchrun with one process: nothing to distribute
    assert should_distribute(True)  # unless asked: a world of one (the DDP / NCCL path on one GPU, gpu_check.py)


def test_layout_checks_name_the_fix():
    check_layout(world_size=2, num_envs=4, batch_size=8, group_size=2)
    with pytest.raises(ValueError, match="multiple of the world size, e.g. batch_size=6"):
        check_layout(world_size=2, num_envs=4, batch_size=7, group_size=1)
    with pytest.raises(ValueError, match="group must stay on one rank.*num_envs=4"):
        check_layout(world_size=2, num_envs=5, batch_size=8, group_size=2)


def test_a_disabled_context_is_the_identity():
    ctx = DistributedContext()
    rows = torch.arange(6)
    assert torch.equal(ctx.shard(rows), rows)
    assert ctx.all_sum(1.5, 2.0) == (1.5, 2.0) and ctx.shared_int(7) == 7 and ctx.any_true(False) is False
    assert ctx.rank_seed(3) == 3 and ctx.rank_seed(None) is None
    assert ctx.reduce_metrics({"a": 1.0}) == {"a": 1.0}
    # Sharding a global minibatch over 2 ranks: equal contiguous halves that together are the minibatch.
    halves = [DistributedContext(enabled=True, rank=r, world_size=2).shard(rows) for r in (0, 1)]
    assert torch.equal(torch.cat(halves), rows) and halves[0].numel() == 3
