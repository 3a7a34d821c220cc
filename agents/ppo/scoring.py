"""Steps 2 and 3 of a TokenPPO iteration: score the sampled episodes, then turn them into rewards and advantages.

* :func:`score_episodes`: the old log-probs and values (kept by the sampling loop, or one teacher-forced pass)
  and the reference's log-probs of every generated token: a complete :class:`SequenceRolloutBuffer`.
* :func:`rewards_and_advantages`: per-token rewards (task reward - ``kl_coef`` x KL - the missing-EOS and
  overlong penalties), then GAE, a group baseline or REINFORCE++'s whitened returns; returns the buffer with them and the rollout's mean per-sequence KL, which the KL
  controller reads after the update.

Theory: ``docs/theory.md`` sections 2-4.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from agents.ppo.advantages import (REINFORCE_BASELINES, compute_gae, group_advantages, returns_to_go,
                                   whiten)
from agents.ppo.buffer import SequenceRolloutBuffer, model_inputs
from agents.ppo.kl import kl_estimate
from agents.ppo.rollout import Episodes, LogitsProcessor, evaluate_sequences


@dataclass
class Rollout:
    """One iteration's data, from the rollout to the update.

    Attributes:
        buffer: the scored episodes with their rewards and advantages (the global rollout under ``torchrun``).
        kl: mean over sequences of the summed per-token KL to the reference (the KL controller's input).
        completions: this rank's decoded completions, row for row.
        reward_components: name -> ``[N]`` per-component task rewards of this rank's episodes.
        generate_s: seconds spent sampling.
        rollout_s: seconds spent sampling and scoring.
        dynamic_sampling: what ``dynamic_sampling``'s refill did (``None``: off).
    """

    buffer: SequenceRolloutBuffer
    kl: float
    completions: list[str]
    reward_components: dict[str, np.ndarray]
    generate_s: float = 0.0
    rollout_s: float = 0.0
    dynamic_sampling: Any = None

    def describe_row(self, row: int, prompt_source: Any) -> dict[str, Any]:
        """Buffer row -> ``{"row", "prompt", "completion"}``: the prompt text and completion it came from, as far
        as they are known (the non-finite guard's messages)."""
        prompt, completion = None, None
        if row < len(self.buffer.prompt_indices):
            try:
                prompt = prompt_source[int(self.buffer.prompt_indices[row])]["prompt"]
            except Exception:  # a custom env without records: the row number is still reported
                prompt = None
        if row < len(self.completions):
            completion = self.completions[row]
        return {"row": row, "prompt": prompt, "completion": completion}


@torch.no_grad()
def score_episodes(
    episodes: Episodes,
    prompt_indices: np.ndarray,
    policy: nn.Module,
    reference: Callable[[], Any] | None,
    sampler: LogitsProcessor,
    ref_sampler: LogitsProcessor,
    *,
    batch_size: int,
    with_values: bool,
    device: torch.device,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> SequenceRolloutBuffer:
    """Old log-probs and values, then the reference log-probs, one forward per sequence, ``batch_size``
    sequences at a time (each chunk trimmed of its all-padding columns).

    Args:
        episodes: a rollout; with ``episodes.logp`` (kept by the sampling loop) the policy is not run again.
        prompt_indices: the prompt of each row.
        policy: the policy that sampled them.
        reference: a context-manager factory yielding the frozen reference (``None``: no KL penalty, the
            reference log-probs equal the old ones and the KL is 0).
        sampler, ref_sampler: the distributions the policy and the reference are scored under.
        batch_size: sequences per forward.
        with_values: keep the critic's values (GAE); ``False``: values are 0 (group baselines, no critic).
        device: where the forwards run (the buffer stays on the CPU).
        autocast: bf16 autocast on CUDA, a no-op otherwise.
    """
    zeros = torch.zeros(episodes.response_ids.shape, dtype=torch.float32)
    from_rollout = episodes.logp is not None
    old_logp = episodes.logp.clone() if from_rollout else zeros.clone()
    values = episodes.values.clone() if from_rollout and with_values else zeros.clone()
    if from_rollout and reference is None:
        ref_logp = old_logp.clone()  # no reference: KL 0
    else:
        ref_logp = zeros.clone()
        for rows in torch.arange(episodes.response_ids.shape[0]).split(batch_size):
            inputs = model_inputs(episodes.prompt_ids, episodes.prompt_mask, episodes.response_ids,
                                  episodes.response_mask, rows)
            cols = slice(0, inputs.response_ids.shape[1])
            args = (inputs.input_ids.to(device), inputs.attention_mask.to(device), inputs.prompt_length,
                    inputs.response_ids.to(device), inputs.response_mask.to(device))
            if not from_rollout:
                logp, _, value = evaluate_sequences(policy, *args, sampler, autocast, with_entropy=False)
                old_logp[rows, cols] = logp.cpu()
                if with_values:
                    values[rows, cols] = value.cpu()
            if reference is not None:
                with reference() as ref:
                    ref_logp[rows, cols] = evaluate_sequences(ref, *args, ref_sampler, autocast, with_entropy=False)[0].cpu()
            else:
                ref_logp[rows, cols] = old_logp[rows, cols]
    return SequenceRolloutBuffer(
        prompt_ids=episodes.prompt_ids, prompt_mask=episodes.prompt_mask, response_ids=episodes.response_ids,
        response_mask=episodes.response_mask, env_rewards=episodes.env_rewards, old_logp=old_logp,
        ref_logp=ref_logp, values=values, terminated=episodes.terminated,
        prompt_indices=torch.as_tensor(prompt_indices, dtype=torch.long), agent_mask=episodes.agent_mask,
    )


def rewards_and_advantages(buf: SequenceRolloutBuffer, kl_coef: float, config: Any) -> tuple[SequenceRolloutBuffer, float]:
    """Per-token rewards (env reward + length shaping - ``kl_coef`` x KL), then the advantages.

    Args:
        buf: a scored rollout (:func:`score_episodes`); its width ``T`` is the env's ``max_new_tokens``.
        kl_coef: the KL coefficient ``beta`` now.
        config: the run's ``TokenPPOConfig`` (``kl_estimator``, ``missing_eos_penalty``, ``overlong_buffer``,
            ``overlong_penalty``, ``overlong_filter``, ``baseline``, ``group_size``, ``scale_rewards``, ``gamma``,
            ``gae_lambda``, ``normalize_advantage``).

    Returns:
        ``(buffer with token_rewards / advantages / returns / loss_mask, mean per-sequence KL)``.
    """
    # The policy's tokens: every response token, or (multi-turn) those between the env's own text.
    mask = buf.action_mask
    rows = torch.arange(buf.num_sequences)
    last = last_action_column(mask)
    kl = kl_estimate(buf.old_logp, buf.ref_logp, config.kl_estimator) * mask
    rollout_kl = float((kl.sum(1)).mean())
    rewards = buf.env_rewards * mask - kl_coef * kl
    # The length shaping, on each episode's last token.
    shaping = torch.zeros(buf.num_sequences)
    if config.missing_eos_penalty is not None:
        shaping -= torch.where(buf.terminated, 0.0, float(config.missing_eos_penalty))
    if config.overlong_buffer is not None:
        shaping += overlong_penalty(buf.response_lengths, buf.response_ids.shape[1], config.overlong_buffer,
                                    config.overlong_penalty)
    if config.missing_eos_penalty is not None or config.overlong_buffer is not None:
        rewards[rows, last] += shaping
    if config.baseline == "reinforce++_baseline":
        # REINFORCE++-baseline: the task reward against its prompt group's mean (before the KL, which stays per token).
        task_return = (buf.env_rewards * mask).sum(1) + shaping
        rewards[rows, last] -= task_return.view(-1, config.group_size).mean(dim=1).repeat_interleave(config.group_size)
    # DAPO's overlong filtering: truncated episodes take no part in any loss (nor in the whitening).
    loss_mask = mask & buf.terminated[:, None] if config.overlong_filter else mask
    if config.baseline == "gae":
        advantages, returns = compute_gae(rewards, buf.values, mask, config.gamma, config.gae_lambda)
    elif config.baseline in REINFORCE_BASELINES:
        # Critic-free: each token's return-to-go, whitened below over the global batch (REINFORCE++'s baseline).
        advantages, returns = returns_to_go(rewards, mask, config.gamma), torch.zeros_like(rewards)
    else:
        # Critic-free: the sequence's return (KL penalty included as reward shaping) against its group.
        seq_adv = group_advantages(rewards.sum(1), config.group_size, config.baseline, scale=config.scale_rewards)
        advantages = seq_adv[:, None] * mask
        returns = torch.zeros_like(advantages)
    if config.normalize_advantage:
        advantages = whiten(advantages, loss_mask)
    scored = dataclasses.replace(buf, token_rewards=rewards, advantages=(advantages * loss_mask).float(),
                                 returns=returns.float(), loss_mask=loss_mask)
    return scored, rollout_kl


def last_action_column(mask: torch.Tensor) -> torch.Tensor:
    """``[N]`` each row's last True column of ``mask`` (0 for an empty row): where the episode's task reward and
    length shaping sit (the last generated token; in a multi-turn episode the last token the policy wrote)."""
    columns = torch.arange(mask.shape[1]).expand_as(mask)
    return torch.where(mask.bool(), columns, torch.zeros_like(columns)).max(dim=1).values


def overlong_penalty(lengths: torch.Tensor, max_new_tokens: int, buffer_tokens: int, factor: float) -> torch.Tensor:
    """DAPO's soft overlong punishment: 0 up to ``max_new_tokens - buffer_tokens`` tokens, then falling linearly
    to ``-factor`` at ``max_new_tokens`` (the env's limit, where an episode is truncated).

    ``penalty(L) = -factor * max(0, L - (L_max - L_buffer)) / L_buffer`` for ``[N]`` response lengths ``L``.
    """
    if not 0 < buffer_tokens <= max_new_tokens:
        raise ValueError(f"overlong_buffer={buffer_tokens} must lie in [1, max_new_tokens={max_new_tokens}] (the env's "
                         "max_new_tokens): lower it, or raise the env's max_new_tokens.")
    over = (lengths.float() - (max_new_tokens - buffer_tokens)).clamp(min=0.0)
    return -factor * over / buffer_tokens


def rollout_metrics(rollout: Rollout, kl_coef: float) -> dict[str, float]:
    """The rollout's ``rollout/...`` metrics (episode return, its spread, length, EOS rate, each reward
    component), its KL and the KL coefficient its rewards were shaped with."""
    buf = rollout.buffer
    scores = buf.scores.float()
    metrics = {
        "rollout/ep_rew_mean": float(scores.mean()),
        "rollout/reward_std": float(scores.std()) if scores.numel() > 1 else 0.0,
        "rollout/ep_len_mean": float(buf.response_lengths.float().mean()),
        "rollout/eos_rate": float(buf.terminated.float().mean()),
    }
    for name, values in rollout.reward_components.items():
        metrics[f"rollout/reward_{name}"] = float(np.nanmean(values))
    if rollout.dynamic_sampling is not None:
        metrics.update(rollout.dynamic_sampling.metrics())
    metrics["train/kl"] = rollout.kl
    metrics["train/kl_coef"] = kl_coef
    return metrics
