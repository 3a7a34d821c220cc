"""Run by ``test_distributed.py`` under ``python -m torch.distributed.run --nproc_per_node 2`` (CPU, gloo).

Usage: ``distributed_worker.py OUT_DIR``. Each rank runs every case below; rank 0 also runs the single-process
reference and writes ``OUT_DIR/results.json``. Also usable by hand to measure the loss equivalence::

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/agents/ppo/distributed_worker.py /tmp/out
    cat /tmp/out/results.json

The "same global batch": every process samples the same 8 episodes (fixed prompts, fixed sampling seed, the
same initial tiny model); rank ``r`` keeps rows ``[4r, 4r + 4)`` and the single-process reference keeps all 8.
From there the real code runs: scoring, the buffer gather, advantages, and ``train()``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root

from agents.ppo import TokenPPO  # noqa: E402
from agents.ppo import export as ppo_export  # noqa: E402
from agents.ppo.rollout import Episodes, generate_episodes  # noqa: E402
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model  # noqa: E402

GLOBAL_SLOTS = 8

CASES = {
    # GAE with a critic, a KL reference, 2 epochs of 2 minibatches, 2 micro-batches per rank.
    "gae": dict(batch_size=4, n_epochs=2, gradient_accumulation_steps=2, kl_coef=0.05, learning_rate=3e-3),
    # Critic-free group baseline (groups of 2 stay on one rank), adaptive KL, k3.
    "grpo": dict(batch_size=8, n_epochs=2, baseline="grpo", group_size=2, kl_coef=0.1, kl_target=0.01,
                 kl_estimator="k3", learning_rate=3e-3),
    # The same GAE case with the policy sharded by FSDP instead of replicated by DDP.
    "gae_fsdp": dict(batch_size=4, n_epochs=2, gradient_accumulation_steps=2, kl_coef=0.05, learning_rate=3e-3,
                     fsdp=True),
}


def global_episodes(group_size: int) -> tuple[Episodes, np.ndarray]:
    """The same 8 episodes on every process: fixed prompts, a fixed sampling seed, the seed-0 tiny model."""
    env = ToyVectorEnv(num_envs=GLOBAL_SLOTS)
    algo = TokenPPO(tiny_model(), env, kl_coef=0.0, seed=0, device="cpu", distributed=False)
    prompts = np.repeat(np.arange(GLOBAL_SLOTS // group_size) * 3 % 12, group_size)
    generator = torch.Generator().manual_seed(123)
    return generate_episodes(algo.policy, env, algo.sampler, prompt_indices=prompts, generator=generator), prompts


def rows_of(ep: Episodes, rows: slice) -> Episodes:
    def take(v):
        return v[rows] if isinstance(v, (torch.Tensor, np.ndarray, list)) else v

    return Episodes(**{k: (take(v) if k != "reward_components" else {n: c[rows] for n, c in v.items()})
                       for k, v in vars(ep).items()})


def update(algo: TokenPPO, ep: Episodes, prompts: np.ndarray) -> dict:
    algo.rollout = algo.prepare_rollout(ep, prompts)
    metrics = algo.train()
    state = {k: v.detach().full_tensor() if hasattr(v, "full_tensor") else v.detach()
             for k, v in algo.policy.state_dict().items()}
    return {"losses": list(algo.last_update_stats["loss"]), "metrics": metrics, "state": state,
            "advantages": algo.buffer.advantages.cpu()}


def main(out_dir: Path) -> None:
    dist.init_process_group("gloo")  # TokenPPO would do it too; the reference below must not
    rank, world = dist.get_rank(), dist.get_world_size()
    per_rank = GLOBAL_SLOTS // world
    results = {"world_size": world}
    for name, kwargs in CASES.items():
        ep, prompts = global_episodes(kwargs.get("group_size", 1))
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        algo = TokenPPO(tiny_model(), ToyVectorEnv(num_envs=per_rank), seed=0, device="cpu", **kwargs)
        run = update(algo, rows_of(ep, mine), prompts[mine])
        if rank == 0:
            single_kwargs = {k: v for k, v in kwargs.items() if k != "fsdp"}
            ref = update(TokenPPO(tiny_model(), ToyVectorEnv(num_envs=GLOBAL_SLOTS), seed=0, device="cpu",
                                  distributed=False, **single_kwargs), ep, prompts)
            shared = [k for k in ref["metrics"] if not k.startswith("time/")]
            results[name] = {
                "steps": len(ref["losses"]),
                "losses_distributed": run["losses"],
                "losses_single": ref["losses"],
                "max_abs_loss_diff": max(abs(a - b) for a, b in zip(run["losses"], ref["losses"])),
                "num_losses_match": len(run["losses"]) == len(ref["losses"]),
                "max_abs_param_diff": max(float((run["state"][k] - ref["state"][k]).abs().max()) for k in ref["state"]),
                "max_abs_advantage_diff": float((run["advantages"] - ref["advantages"]).abs().max()),
                "policy_class": type(algo.policy).__name__,
                "train_policy_class": type(algo.train_policy).__name__,
                "metric_diffs": {k: abs(run["metrics"][k] - ref["metrics"][k]) for k in shared
                                 if np.isfinite(ref["metrics"][k]) and k in ("train/loss", "train/kl", "train/kl_coef",
                                                                            "rollout/ep_rew_mean", "train/explained_variance")},
            }
        dist.barrier()

    # learn() end to end: per-rank seeds, the global token count, checkpoints written by rank 0 only.
    from agents.commands import CheckpointCallback, save_checkpoint

    run_dir = out_dir / "run"
    algo = TokenPPO(tiny_model(), ToyVectorEnv(num_envs=4), batch_size=4, n_epochs=1, seed=0, device="cpu")
    writes = out_dir / f"writes-rank{rank}.txt"
    original_write = ppo_export.save_export

    def counting_write(path, *args, **kwargs):  # records which rank actually writes a checkpoint
        with open(writes, "a") as f:
            f.write(f"{path}\n")
        original_write(path, *args, **kwargs)

    ppo_export.save_export = counting_write
    try:
        algo.learn(3 * 8 * ToyVectorEnv.T, callback=CheckpointCallback(run_dir, every=1))
        save_checkpoint(algo, run_dir)
    finally:
        ppo_export.save_export = original_write
    responses = [torch.zeros_like(algo.buffer.response_ids) for _ in range(world)]
    dist.all_gather(responses, algo.buffer.response_ids.contiguous())
    halves = algo.buffer.response_ids.split(4)
    if rank == 0:
        results["learn"] = {
            "num_timesteps": algo.num_timesteps,
            "iterations": algo.iteration,
            "ranks_sampled_different_episodes": not torch.equal(halves[0], halves[1]),
            "buffers_equal_on_all_ranks": all(torch.equal(r, responses[0]) for r in responses),
        }
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(out)
