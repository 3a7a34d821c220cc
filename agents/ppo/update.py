"""Step 4 of a TokenPPO iteration: ``n_epochs`` of minibatch PPO over a rollout.

:func:`minibatches` yields, for each global minibatch, this rank's micro-batches with the weights each one's
losses get (its share of the minibatch's tokens for a token mean, of its sequences for the per-sequence
aggregations, times the world size: the summed micro-batch gradients equal the whole minibatch's, and DDP's
gradient average divides the world size out again). :func:`ppo_update` runs
the epochs over them: one optimiser step per minibatch, SB3's ``target_kl`` early stop, and the non-finite
guard's checks of the losses and the gradient norm (the first problem ends the update).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from agents.ppo.advantages import masked_mean
from agents.ppo.buffer import SequenceBatch, SequenceRolloutBuffer
from agents.ppo.losses import aggregate_loss, clipped_policy_loss, clipped_value_loss
from agents.ppo.rollout import LogitsProcessor, evaluate_sequences

#: The update's per-step ("loss") and per-micro-batch statistics, in the order they are logged.
STAT_KEYS = ("loss", "policy_loss", "value_loss", "entropy", "clip_fraction", "approx_kl", "ratio_mean")
#: The statistics that SB3's PPO logs under another name (``train/<SB3 name>``). The mean entropy is logged as
#: SB3's ``train/entropy_loss``, its negative.
SB3_TRAIN_TAGS = {"policy_loss": "policy_gradient_loss"}


@dataclass
class MicroBatch:
    """This rank's part of a minibatch, sized for one forward / backward.

    Attributes:
        batch: the rows as model inputs.
        share: its tokens over the whole (global) minibatch's: the weight of its token-mean losses (the value
            loss always, the policy loss and entropy bonus under ``loss_aggregation="token_mean"``).
        last: the minibatch's last micro-batch on this rank (DDP all-reduces the gradients after it).
        policy_share: the weight of its policy loss and entropy bonus: ``share`` itself (the same tensor) for a
            token mean; its sequences over the minibatch's for ``"sequence_mean"`` and ``"constant"``, whose
            micro-batch losses are per-sequence means / sums over ``sequences x max_new_tokens``.
    """

    batch: SequenceBatch
    share: torch.Tensor
    last: bool
    policy_share: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.policy_share is None:
            self.policy_share = self.share


@dataclass
class Minibatch:
    """One optimiser step's rows: ``indices`` of the global buffer, this rank's ``micro_batches`` of them, and
    ``max_new_tokens``, the buffer's response width ``T`` (the env's ``max_new_tokens``: the observation holds
    ``P + max_new_tokens`` columns), which ``loss_aggregation="constant"`` divides by."""

    indices: torch.Tensor
    micro_batches: list[MicroBatch]
    max_new_tokens: int = 0


@dataclass
class UpdateResult:
    """What an update did.

    Attributes:
        stats: :data:`STAT_KEYS` -> the per-step / per-micro-batch values (their means are logged).
        steps: optimiser steps taken.
        early_stop: the ``target_kl`` early stop ended it.
        problem: the non-finite guard's problem that ended it (``None``: none).
    """

    stats: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STAT_KEYS})
    steps: int = 0
    early_stop: bool = False
    problem: dict[str, Any] | None = None


def minibatches(buf: SequenceRolloutBuffer, batch_size: int, shuffle: torch.Generator, dist: Any,
                accumulation_steps: int, loss_aggregation: str = "token_mean") -> Iterator[Minibatch]:
    """One pass over ``buf`` in shuffled global minibatches of ``batch_size`` rows, each split into this rank's
    slice (``dist.shard``) and that slice into up to ``accumulation_steps`` micro-batches, weighted for
    ``loss_aggregation`` (:class:`MicroBatch`)."""
    for batch in buf.minibatches(batch_size, shuffle):
        rows_here = dist.shard(batch.indices)  # this rank's slice of the (global) minibatch
        micro_rows = rows_here.tensor_split(min(accumulation_steps, rows_here.numel()))
        # Over the tokens and the sequences in the loss (overlong_filter leaves truncated episodes out).
        batch_tokens = batch.loss_mask.sum().clamp(min=1)
        batch_sequences = batch.loss_mask.any(dim=1).sum().clamp(min=1)
        micro = []
        for i, rows in enumerate(micro_rows):
            part = buf.get(rows)
            share = part.loss_mask.sum() / batch_tokens
            # A per-sequence mean (or a sum over sequences x T) of a micro-batch, weighted by its share of the
            # sequences, sums to the minibatch's: the token share would weigh its sequences by their lengths.
            policy_share = share if loss_aggregation == "token_mean" else (
                part.loss_mask.any(dim=1).sum() / batch_sequences).to(share.dtype)
            micro.append(MicroBatch(part, share, last=i == len(micro_rows) - 1, policy_share=policy_share))
        yield Minibatch(batch.indices, micro, max_new_tokens=buf.response_ids.shape[1])


def ppo_update(
    buf: SequenceRolloutBuffer,
    *,
    config: Any,
    train_policy: nn.Module,
    policy: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: LogitsProcessor,
    guard: Any,
    dist: Any,
    shuffle: torch.Generator,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> UpdateResult:
    """``config.n_epochs`` passes of minibatch PPO over ``buf``; stops at the first non-finite value (the
    rollout's, a loss's or the gradient norm's: ``guard``) or at SB3's ``target_kl`` early stop.

    Args:
        buf: the rollout with its advantages and returns.
        config: the run's ``TokenPPOConfig``.
        train_policy: what runs forward and backward (the policy, DDP over it, or its FSDP shards).
        policy: the policy itself (its parameters are clipped and stepped).
        optimizer: the policy's optimizer.
        sampler: the distribution the log-probs are taken under (the rollout's).
        guard: the run's ``NonFiniteGuard``.
        dist: the run's ``DistributedContext`` (a disabled one on a single process).
        shuffle: the minibatch order's generator (the same seed on every rank).
        autocast: bf16 autocast on CUDA, a no-op otherwise.
    """
    result = UpdateResult()
    if (problem := guard.check_rollout(buf)) is not None:  # a NaN / inf anywhere in the rollout: no update
        result.problem = problem
        return result
    for _epoch in range(config.n_epochs):
        for minibatch in minibatches(buf, config.batch_size, shuffle, dist, config.gradient_accumulation_steps,
                                     config.loss_aggregation):
            optimizer.zero_grad(set_to_none=True)
            result.problem, step_loss, step_kl = _accumulate_gradients(minibatch, result.stats, config, train_policy,
                                                                       sampler, guard, dist, autocast)
            if result.problem is not None:
                return _stopped(result, optimizer)
            # The minibatch's loss and token-mean approx KL, summed over ranks: every rank takes the same branch.
            step_loss, step_kl = dist.all_sum(step_loss, step_kl)
            result.stats["loss"].append(step_loss)
            if config.target_kl is not None and step_kl > 1.5 * config.target_kl:
                result.early_stop = True  # SB3: skip this step and end the update, the policy moved too far already
                return _stopped(result, optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            result.problem = guard.check_grad_norm(grad_norm, minibatch.indices)
            if result.problem is not None:
                return _stopped(result, optimizer)
            optimizer.step()
            result.steps += 1
    return result


def _accumulate_gradients(minibatch: Minibatch, stats: dict[str, list[float]], config: Any, train_policy: nn.Module,
                          sampler: LogitsProcessor, guard: Any, dist: Any,
                          autocast: Callable[[], Any]) -> tuple[dict[str, Any] | None, float, float]:
    """Forward and backward over this rank's micro-batches: ``(problem or None, step loss, step approx KL)``."""
    step_kl = step_loss = 0.0
    for micro in minibatch.micro_batches:
        b = micro.batch
        # Gradients are all-reduced on the last micro-batch only (DDP's no_sync on the others).
        with dist.micro_batch(train_policy, last=micro.last):
            logp, entropy, values = evaluate_sequences(
                train_policy, b.input_ids, b.attention_mask, b.prompt_length, b.response_ids, b.response_mask,
                sampler, autocast, entropy_grad=config.ent_coef != 0,  # at 0 the entropy is only logged: no backward
            )
            pg_loss, pg_stats = clipped_policy_loss(logp, b.old_logp, b.advantages, b.loss_mask, config.clip_range,
                                                    config.clip_range_high, config.loss_aggregation,
                                                    minibatch.max_new_tokens, config.importance_ratio)
            ent = masked_mean(entropy, b.loss_mask)  # logged as the mean entropy per token, whatever the loss's
            ent_bonus = ent if config.loss_aggregation == "token_mean" else aggregate_loss(
                entropy, b.loss_mask, config.loss_aggregation, minibatch.max_new_tokens)
            policy_term = loss = pg_loss - config.ent_coef * ent_bonus
            v_loss = value_term = torch.zeros(())
            if config.uses_critic:
                v_loss = clipped_value_loss(values, b.values, b.returns, b.loss_mask, config.clip_range_vf)
                value_term = config.vf_coef * v_loss
                loss = loss + value_term
            problem = guard.check_loss(b.indices, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": ent, "loss": loss},
                                       {"logp": logp, "entropy": entropy, "values": values})
            if dist.any_true(problem is not None):  # all ranks skip together (DDP would wait)
                return problem or guard.on_another_rank(), step_loss, step_kl
            weighted, weighted_value = _weighted_loss(loss, policy_term, value_term, micro)
            (weighted * dist.world_size).backward()
        for key, value in (("policy_loss", pg_loss.item()), ("value_loss", v_loss.item()), ("entropy", ent.item()), *pg_stats.items()):
            stats[key].append(value)
        step_kl += pg_stats["approx_kl"] * micro.share.item()
        step_loss += weighted_value
    return None, step_loss, step_kl


def _weighted_loss(loss: torch.Tensor, policy_term: torch.Tensor, value_term: torch.Tensor,
                   micro: MicroBatch) -> tuple[torch.Tensor, float]:
    """This micro-batch's part of the minibatch's loss, as the tensor to backward and the float to log: the
    policy term (policy loss and entropy bonus) weighted by ``policy_share``, the value term by ``share``."""
    if micro.policy_share is micro.share:  # a token mean: one weight for the whole loss, the same rounding as ever
        return loss * micro.share, loss.item() * micro.share.item()
    return (policy_term * micro.policy_share + value_term * micro.share,
            policy_term.item() * micro.policy_share.item() + value_term.item() * micro.share.item())


def update_metrics(result: UpdateResult, lr: float, clip_range: float) -> dict[str, float]:
    """The update's ``train/...`` metrics: the means of its statistics under SB3's PPO tags where SB3 logs the
    same quantity (``entropy_loss`` is minus the mean entropy, as in SB3), textgym's own names for the rest."""
    means = {k: float(np.mean(v)) if v else float("nan") for k, v in result.stats.items()}
    metrics = {f"train/{SB3_TRAIN_TAGS.get(k, k)}": v for k, v in means.items() if k != "entropy"}
    metrics["train/entropy_loss"] = -means["entropy"]
    metrics["train/learning_rate"] = lr
    metrics["train/clip_range"] = float(clip_range)
    metrics["train/nonfinite_skipped"] = float(result.problem is not None)
    return metrics


def _stopped(result: UpdateResult, optimizer: torch.optim.Optimizer) -> UpdateResult:
    optimizer.zero_grad(set_to_none=True)  # never let a non-finite gradient reach a later step
    return result
