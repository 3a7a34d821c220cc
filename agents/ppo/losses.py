"""PPO's losses over the response tokens of a minibatch of sequences (all ``[B, T]`` with a ``mask``).

Theory: ``docs/theory.md`` sections "The importance-sampling ratio" and "Clipping as a trust region".
"""

from __future__ import annotations

import torch

from agents.ppo.advantages import masked_mean

#: How the per-token policy loss (and entropy bonus) become one number (``TokenPPOConfig.loss_aggregation``).
LOSS_AGGREGATIONS = ("token_mean", "sequence_mean", "constant")


def aggregate_loss(per_token: torch.Tensor, mask: torch.Tensor, aggregation: str = "token_mean",
                   max_new_tokens: int | None = None) -> torch.Tensor:
    """``[B, T]`` per-token terms -> a scalar, over the tokens where ``mask`` is 1.

    * ``"token_mean"``: ``sum_{b,t} m x / sum_{b,t} m``, every token weighs the same (DAPO; TRL's default).
    * ``"sequence_mean"``: ``mean_b (sum_t m x / sum_t m)``, each sequence weighs the same (GRPO's original:
      a long completion's tokens weigh less each).
    * ``"constant"``: ``sum_{b,t} m x / (B * max_new_tokens)`` (Dr. GRPO: a fixed normaliser, no length bias).

    Args:
        per_token: the terms ``x``.
        mask: 1 on valid tokens.
        aggregation: one of :data:`LOSS_AGGREGATIONS`.
        max_new_tokens: the constant's token count (the env's ``max_new_tokens``); needed by ``"constant"``.
    """
    if aggregation == "token_mean":
        return masked_mean(per_token, mask)
    maskf = mask.to(per_token.dtype)
    per_sequence = (per_token * maskf).sum(dim=1)
    if aggregation == "sequence_mean":
        return (per_sequence / maskf.sum(dim=1).clamp(min=1.0)).mean()
    if aggregation == "constant":
        if max_new_tokens is None:
            raise ValueError("loss_aggregation='constant' divides by sequences x max_new_tokens: pass max_new_tokens.")
        return per_sequence.sum() / (per_token.shape[0] * max_new_tokens)
    raise ValueError(f"loss_aggregation must be one of {LOSS_AGGREGATIONS}, got {aggregation!r}.")


def clipped_policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip_range: float,
    clip_range_high: float | None = None, aggregation: str = "token_mean", max_new_tokens: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate ``-E[min(rho A, clip(rho, 1 - eps, 1 + eps_high) A)]``, ``rho = exp(logp - old_logp)``.

    Args:
        logp: log-probs of the taken tokens under the current policy (differentiable).
        old_logp: their log-probs under the policy that sampled them (rollout time, constant).
        advantages: per-token advantages ``A_t``.
        mask: 1 on valid tokens; the loss is aggregated over them (:func:`aggregate_loss`).
        clip_range: ``eps``, the clip below 1.
        clip_range_high: ``eps_high``, the clip above 1 (DAPO's clip-higher); ``None``: ``eps`` (symmetric).
        aggregation, max_new_tokens: how the per-token terms become the loss (:func:`aggregate_loss`); the
            stats are token means whatever it is.

    Returns:
        ``(loss, stats)`` with ``stats``: ``clip_fraction`` (share of tokens whose ratio lies outside
        ``[1 - eps, 1 + eps_high]``, on either side),
        ``approx_kl`` (``E[(rho - 1) - log rho]``, the k3 estimate of KL(old || new)), ``ratio_mean``.
    """
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    high = clip_range if clip_range_high is None else clip_range_high
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + high) * advantages
    loss = -aggregate_loss(torch.min(unclipped, clipped), mask, aggregation, max_new_tokens)
    with torch.no_grad():
        stats = {
            # Each side against its own bound. 1 - ratio is exactly -(ratio - 1) (rounding is symmetric), so with
            # high == clip_range this counts the same tokens as |ratio - 1| > clip_range.
            "clip_fraction": masked_mean(((ratio - 1.0 > high) | (1.0 - ratio > clip_range)).float(), mask).item(),
            # Over the tokens where both log-probs are finite: under top-k / top-p a sampled token can fall out of
            # the current policy's support (logp = -inf), which would make the estimate inf and trip target_kl.
            "approx_kl": _finite_k3(log_ratio, mask),
            "ratio_mean": masked_mean(ratio, mask).item(),
        }
    return loss, stats


def _finite_k3(log_ratio: torch.Tensor, mask: torch.Tensor) -> float:
    """``E[(rho - 1) - log rho]`` over the masked tokens whose log-ratio is finite (0 when there are none)."""
    finite = torch.isfinite(log_ratio) & mask.bool()
    safe = torch.where(finite, log_ratio, torch.zeros_like(log_ratio))
    return masked_mean(torch.expm1(safe) - safe, finite).item()


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip_range_vf: float | None
) -> torch.Tensor:
    """``0.5 * E[max((V - R)^2, (V_clip - R)^2)]`` with ``V_clip = V_old + clip(V - V_old, -eps_v, eps_v)``.

    Args:
        values: current critic values (differentiable).
        old_values: values at rollout time.
        returns: GAE returns (targets).
        mask: 1 on valid tokens.
        clip_range_vf: ``eps_v``; ``None`` disables value clipping (plain squared error).
    """
    unclipped = (values - returns) ** 2
    if clip_range_vf is None:
        return 0.5 * masked_mean(unclipped, mask)
    values_clipped = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    return 0.5 * masked_mean(torch.max(unclipped, (values_clipped - returns) ** 2), mask)
