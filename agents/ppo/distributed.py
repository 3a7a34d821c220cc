"""Data-parallel TokenPPO on ``torch.distributed``: launch the same script with ``torchrun``.

::

    torchrun --nproc_per_node 4 train.py                       # one node, 4 processes (GPUs)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 train.py
    torchrun --nproc_per_node 2 -m agents.cli train --config arithmetic

What changes under ``torchrun`` (``WORLD_SIZE`` > 1), and why the update is the single-process one:

* **Rollouts are per rank.** Each rank drives its own ``num_envs`` env slots (``num_envs`` is *per rank*) with
  seed ``seed + rank`` for its prompts, its sampling and its env, so ranks generate different episodes. The
  model is built from ``seed`` on every rank and then broadcast from rank 0, so all ranks start identical.
* **Scoring is per rank, the buffer is global.** Each rank scores its own episodes (old / reference log-probs
  and values: the costly forwards), then one ``all_gather`` of the sequence-level buffer (ids, masks and a few
  floats per token, nothing of vocabulary size: ~100 KB per 64 sequences) gives every rank the whole rollout,
  rank 0's rows first. Advantages, their whitening, the per-rollout KL of the KL controller and the rollout
  metrics are then computed on the global batch: they are the single-process statistics, not averages of
  per-rank ones.
* **The update is sharded by rows.** ``batch_size`` is *global* (sequences per optimiser step, summed over
  ranks; it must be a multiple of the world size). Every rank draws the same permutation of the global buffer
  (a seed broadcast from rank 0), so all ranks agree on each minibatch; rank ``r`` runs forward and backward on
  the ``r``-th of ``world_size`` equal slices of it. Each slice's loss is weighted by its share of the
  minibatch's tokens (of its sequences, for the policy term under ``loss_aggregation="sequence_mean"`` or
  ``"constant"``) times ``world_size``, so DDP's gradient *average* is the gradient of the whole
  minibatch's loss, exactly as on one process. Micro-batches other than the last skip DDP's
  all-reduce (``no_sync``); the early-stop KL and the logged loss are all-reduced, so every rank takes the same
  branch.
* **Only rank 0 writes**: ``TokenPPO.save`` and the default SB3 logger are no-ops elsewhere; ``textgym train``
  keeps the run directory, samples and evaluation on rank 0.
* **Resume** reads the same checkpoint on every rank; any world size that divides ``batch_size`` works.

``distributed=None`` (the default) turns this on when the process was started by ``torchrun`` with
``WORLD_SIZE`` > 1 (or when a process group is already initialised with more than one rank); ``False`` keeps a
process single even under ``torchrun``; ``True`` insists (and raises if there is nothing to join; a
one-process ``torchrun`` is joined, as a world of one). The process
group is initialised if needed (NCCL on CUDA, gloo on CPU) and on CUDA the device becomes ``cuda:LOCAL_RANK``.

``fsdp=True`` shards the policy with PyTorch's FSDP (``torch.distributed.fsdp.fully_shard``, one unit per
transformer block plus the root) instead of replicating it with DDP, for models that do not fit one GPU. The
frozen reference is sharded the same way, or under LoRA it is the policy with adapters disabled (no second
copy). Every forward of a sharded model gathers weights with the other ranks, so under FSDP the rollout
steps until *all* ranks' episodes are done, and inference (``evaluate``, ``predict``, ``save``) must be called on
every rank. FSDP runs on CPU/gloo as well (that is how it is tested); NLPO's lagged copy is not supported with it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from typing import Any, Iterator

import torch
from torch import nn

from agents.ppo.torchrun import (  # noqa: F401  (re-exported: defined here before)
    TORCHRUN_ENV_VARS, check_layout, init_process_group, launched_by_torchrun, should_distribute,
)


class DataParallelPolicy(nn.parallel.DistributedDataParallel):
    """DDP over an ``ActorCriticLM`` that still exposes the model's attributes (``lm_head``, ``vocab_size``...).

    ``evaluate_sequences`` calls the model's forward and then its ``lm_head``: calling it on this wrapper runs
    DDP's forward (which arms the gradient all-reduce), and the ``lm_head`` weights it uses outside that forward
    are the same parameters, so their gradients are reduced with the rest.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


@dataclass
class DistributedContext:
    """What TokenPPO needs to know about the job it runs in; a disabled context is a no-op everywhere.

    Attributes:
        enabled: more than one rank.
        rank, world_size: this rank and the number of ranks.
        fsdp: shard the policy with FSDP instead of DDP.
        device: this rank's device.
    """

    enabled: bool = False
    rank: int = 0
    world_size: int = 1
    fsdp: bool = False
    device: torch.device = torch.device("cpu")
    _save_twin: nn.Module | None = field(default=None, repr=False)  # FSDP: rank 0's unsharded copy to save
    owns_group: bool = False  # join_torchrun created the process group (leave_torchrun destroys it)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and the run directory."""
        return self.rank == 0

    def rank_seed(self, seed: int | None) -> int | None:
        """This rank's seed for prompts, sampling and its env (``seed + rank``)."""
        return None if seed is None else seed + self.rank

    # ------------------------------------------------------------------ collectives
    def _comm_device(self) -> torch.device:
        import torch.distributed as dist

        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def shared_int(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (the minibatch shuffle seed: all ranks must agree on the order)."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.long, device=self._comm_device())
        dist.broadcast(t, src=0)
        return int(t.item())

    def all_sum(self, *values: float) -> tuple[float, ...]:
        """Element-wise sum over ranks of a few floats (float64, one all-reduce)."""
        if not self.enabled:
            return tuple(float(v) for v in values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return tuple(float(v) for v in t.tolist())

    def any_true(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a callback that stops one rank stops them all)."""
        return bool(self.all_sum(float(flag))[0] > 0) if self.enabled else bool(flag)

    def write_together(self, write: Any, path: str) -> None:
        """``write()`` (which writes ``path`` on rank 0), then a barrier that tells every rank whether it failed on
        any: no rank reads the result before it is complete, and when rank 0's write fails (a full disk, say)
        the other ranks raise ``WriteFailedOnAnotherRank`` instead of waiting for it forever."""
        from agents.ppo.write_errors import WriteFailedOnAnotherRank

        failed = None
        try:
            write()
        except Exception as error:
            failed = error
        if self.any_true(failed is not None):
            raise failed if failed is not None else WriteFailedOnAnotherRank(path)

    def reduce_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Mean of each metric over ranks (one all-reduce; metrics of the global buffer are equal on all ranks)."""
        if not self.enabled:
            return metrics
        keys = sorted(metrics)
        sums = self.all_sum(*(metrics[k] for k in keys))
        return {**metrics, **{k: s / self.world_size for k, s in zip(keys, sums)}}

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank (before the reference is copied)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                comm = tensor.detach().to(self._comm_device())
                dist.broadcast(comm, src=0)
                if comm.data_ptr() != tensor.data_ptr():
                    tensor.copy_(comm)

    def check(self, num_envs: int, env: Any, nlpo_top_p: float | None) -> None:
        """Errors, before any work, for a job whose ranks could not run in lockstep (the slot layout:
        ``TokenPPOConfig.check_slots``)."""
        if not self.enabled:
            return
        if self.fsdp and nlpo_top_p is not None:
            raise ValueError("fsdp=True does not support NLPO (nlpo_top_p): its lagged copy of the policy is unsharded.")
        self.check_same_slots(num_envs, (env.max_prompt_tokens, env.max_new_tokens))

    def check_same_slots(self, num_envs: int, shape: tuple[int, int]) -> None:
        """Every rank must have the same slots and ``(P, T)``: the buffers are gathered row-wise."""
        import torch.distributed as dist

        mine = torch.tensor([num_envs, *shape], dtype=torch.long, device=self._comm_device())
        every = [torch.zeros_like(mine) for _ in range(self.world_size)]
        dist.all_gather(every, mine)
        layouts = [tuple(t.tolist()) for t in every]
        if len(set(layouts)) > 1:
            raise ValueError(
                f"Ranks disagree on (num_envs, max_prompt_tokens, max_new_tokens): {layouts}. Give every rank the "
                "same env config (same num_envs and token limits): their rollouts are concatenated."
            )

    def gather_buffer(self, buf: Any) -> Any:
        """The global rollout: every rank's buffer concatenated row-wise in rank order, on every rank."""
        if not self.enabled:
            return buf
        import torch.distributed as dist

        from agents.ppo.buffer import SequenceRolloutBuffer

        gathered = {}
        for f in fields(SequenceRolloutBuffer):
            value = getattr(buf, f.name)
            if not isinstance(value, torch.Tensor):
                gathered[f.name] = value
                continue
            # bool goes as uint8 (gloo has no bool all_gather); everything else as is.
            comm = value.to(self._comm_device(), torch.uint8 if value.dtype == torch.bool else value.dtype).contiguous()
            parts = [torch.empty_like(comm) for _ in range(self.world_size)]
            dist.all_gather(parts, comm)
            gathered[f.name] = torch.cat(parts).to(value.device, value.dtype)
        return SequenceRolloutBuffer(**gathered)

    # ------------------------------------------------------------------ the update
    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's equal slice of a global minibatch's rows (all of them on one process)."""
        if not self.enabled:
            return indices
        return indices.tensor_split(self.world_size)[self.rank]

    def wrap(self, policy: nn.Module, ref_policy: nn.Module | None, critic_trains: bool) -> nn.Module:
        """The module the update runs forward/backward through: ``policy`` itself, DDP over it, or (FSDP) the
        policy sharded in place, with ``ref_policy`` (if any) sharded too. ``critic_trains``: False under group
        baselines, whose value head gets no gradient; DDP must not wait for one, so those weights are frozen
        (which changes nothing: they never had a gradient). Call it before building the optimizer."""
        if not self.enabled:
            return policy
        if not critic_trains:
            critic = [getattr(policy, "value_head", None), getattr(policy, "critic_lm", None)]
            for module in filter(None, critic):
                module.requires_grad_(False)
        if self.fsdp:
            import copy

            # Rank 0 keeps an unsharded CPU twin to save into (host memory, not GPU memory).
            self._save_twin = copy.deepcopy(policy).cpu() if self.is_main else None
            if ref_policy is not None:
                fsdp_shard(ref_policy)
            return fsdp_shard(policy)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DataParallelPolicy(policy, device_ids=device_ids)

    def all_done(self, done_here: bool) -> bool:
        """True once every rank's episodes are finished (an FSDP rollout steps until then)."""
        return self.all_sum(float(not done_here))[0] == 0

    @property
    def rollout_all_done(self) -> Any:
        """``generate_episodes``' ``all_done``: under FSDP every forward gathers weights with the other ranks, so
        a rollout steps until every rank's episodes are done; ``None`` otherwise."""
        return self.all_done if self.fsdp else None

    def save(self, policy: nn.Module, write: Any) -> None:
        """``write(policy)`` on rank 0 only; under FSDP every rank first takes part in gathering the full
        weights, which rank 0 loads into its unsharded twin and writes instead."""
        if not self.fsdp:
            if self.is_main:
                write(policy)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(policy, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.is_main:
            self._save_twin.load_state_dict(state)
            write(self._save_twin)

    @contextlib.contextmanager
    def micro_batch(self, model: nn.Module, last: bool) -> Iterator[None]:
        """Around one micro-batch's forward and backward: gradients are synchronised on the last one only."""
        if not self.enabled or last:
            yield
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            with model.no_sync():
                yield
        elif hasattr(model, "set_requires_gradient_sync"):  # FSDP2
            model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                model.set_requires_gradient_sync(True)
        else:
            yield


def setup_distributed(distributed: bool | None, fsdp: bool, device: torch.device | str) -> DistributedContext:
    """Resolve TokenPPO's ``distributed`` / ``fsdp`` / ``device`` arguments into a :class:`DistributedContext`
    (joining torchrun's process group when needed)."""
    if not should_distribute(distributed):
        if fsdp:
            raise ValueError(
                "fsdp=True shards the model over ranks, but this is a single process: launch with "
                "`torchrun --nproc_per_node N ...` (or drop fsdp)."
            )
        from agents.ppo.builders import resolve_device

        return DistributedContext(device=resolve_device(device))
    import torch.distributed as dist

    device = init_process_group(device)
    return DistributedContext(enabled=True, rank=dist.get_rank(), world_size=dist.get_world_size(), fsdp=bool(fsdp),
                              device=device)


def join_torchrun(distributed: bool | None = None, device: torch.device | str = "auto") -> DistributedContext | None:
    """For scripts and the CLI: join the process group of a ``torchrun`` launch before any per-rank work
    (warm start, run directory), so rank 0 is known. ``None`` on a single process (nothing to join).
    ``distributed`` as in TokenPPO (``None``: detect)."""
    if not should_distribute(distributed):
        return None
    import torch.distributed as dist

    joined_here = not dist.is_initialized()
    ctx = DistributedContext(enabled=True, device=init_process_group(device))
    ctx.rank, ctx.world_size, ctx.owns_group = dist.get_rank(), dist.get_world_size(), joined_here
    return ctx


def leave_torchrun(ctx: DistributedContext | None) -> None:
    """Tear down the process group :func:`join_torchrun` created (after the last collective of the run)."""
    if ctx is not None and ctx.owns_group:
        import torch.distributed as dist

        dist.barrier()  # rank 0 may still be writing the run directory: nobody leaves before it is done
        dist.destroy_process_group()


def silent_logger():
    """An SB3 logger that records nothing (ranks other than 0)."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def fsdp_shard(model: nn.Module) -> nn.Module:
    """Shard ``model`` in place with FSDP2 (``fully_shard``): one unit per transformer block, then the root
    (embeddings, final norm, output head and value head: the tied input/output embedding stays in one unit)."""
    from torch.distributed.fsdp import fully_shard

    blocks = transformer_blocks(model)
    if not blocks:
        raise ValueError(f"fsdp=True found no transformer blocks (an nn.ModuleList of layers) in {type(model).__name__}.")
    for block in blocks:
        fully_shard(block)
    fully_shard(model)
    return model


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated layers of each HF transformer inside ``model`` (the ``nn.ModuleList`` of blocks)."""
    blocks: list[nn.Module] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("h", "layers", "layer", "block", "blocks"):
            blocks.extend(module)
    return blocks
