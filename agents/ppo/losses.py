"""PPO's losses over the response tokens of a minibatch of sequences (all ``[B, T]`` with a ``mask``).

Theory: ``docs/theory.md`` sections "The importance-sampling ratio" and "Clipping as a trust region".
"""

from __future__ import annotations

import torch

from agents.ppo.advantages import masked_mean

#: How the per-token policy loss (and entropy bonus) become one number (``TokenPPOConfig.loss_aggregation``).
LOSS_AGGREGATIONS = ("token_mean", "sequence_mean", "constant")
#: What the clipped ratio is taken of (``TokenPPOConfig.importance_ratio``): each token (PPO's) or each sequence
#: (GSPO's geometric mean of its tokens' ratios).
IMPORTANCE_RATIOS = ("token", "sequence")


def aggregate_loss(per_token: torch.Tensor, mask: torch.Tensor, aggregation: str = "token_mean",
                   max_new_tokens: int | None = None) -> torch.Tensor:
    """``[B, T]`` per-token terms -> a scalar, over the tokens where ``mask`` is 1.

    * ``"token_mean"``: ``sum_{b,t} m x / sum_{b,t} m``, every token weighs the same (DAPO; TRL's default).
    * ``"sequence_mean"``: ``mean_b (sum_t m x / sum_t m)``, each sequence weighs the same (GRPO's original:
      a long completion's tokens weigh less each).
    * ``"constant"``: ``sum_{b,t} m x / (B * max_new_tokens)`` (Dr. GRPO: a fixed normaliser, no length bias).

    ``B`` and the per-sequence mean count the rows with at least one token in ``mask``: a row left out of the
    loss entirely (``overlong_filter``) is not a sequence of the minibatch.

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
    # The sequences counted are those with a token in the mask (every one, unless overlong_filter left some out).
    sequences = mask.any(dim=1).sum().clamp(min=1)
    if aggregation == "sequence_mean":
        return (per_sequence / maskf.sum(dim=1).clamp(min=1.0)).sum() / sequences
    if aggregation == "constant":
        if max_new_tokens is None:
            raise ValueError("loss_aggregation='constant' divides by sequences x max_new_tokens: pass max_new_tokens.")
        return per_sequence.sum() / (sequences * max_new_tokens)
    raise ValueError(f"loss_aggregation must be one of {LOSS_AGGREGATIONS}, got {aggregation!r}.")


def sequence_log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GSPO's per-token log-ratio: every token of sequence ``b`` carries the *value* of the sequence's
    length-normalised log-ratio ``log s_b = mean_t (logp - old_logp)`` and the *gradient* of its own
    ``logp`` scaled by ``s_b``: ``log s_b.detach() + logp - logp.detach()`` (GSPO-token, Zheng et al. 2025).

    With one advantage per sequence and ``sequence_mean`` aggregation the clipped loss over these equals GSPO's
    sequence-level ``min(s_b A_b, clip(s_b) A_b)`` in value and gradient; with per-token advantages (GAE) it is
    GSPO-token. Padded entries (``mask`` 0) are ignored; they come back as 0.
    """
    valid = mask.bool()
    log_ratio = torch.where(valid, logp - old_logp, torch.zeros_like(logp))
    per_sequence = log_ratio.sum(dim=1, keepdim=True) / valid.sum(dim=1, keepdim=True).clamp(min=1)
    # Value 0, gradient d logp; a token outside the current support (logp = -inf under top-k / top-p) makes the
    # sequence's ratio 0 and contributes no gradient (not inf - inf = nan).
    own = torch.where(valid & torch.isfinite(logp), logp - logp.detach(), torch.zeros_like(logp))
    return torch.where(valid, per_sequence.detach() + own, torch.zeros_like(logp))


def clipped_policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip_range: float,
    clip_range_high: float | None = None, aggregation: str = "token_mean", max_new_tokens: int | None = None,
    importance_ratio: str = "token",
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
        importance_ratio: ``"token"``: ``rho`` per token (PPO's); ``"sequence"``: GSPO's per-sequence ratio
            (:func:`sequence_log_ratio`), clipped once per sequence (GSPO's clip ranges are ~1e-3, not 0.2).

    Returns:
        ``(loss, stats)`` with ``stats``: ``clip_fraction`` (share of tokens whose ratio lies outside
        ``[1 - eps, 1 + eps_high]``, on either side),
        ``approx_kl`` (``E[(rho - 1) - log rho]``, the k3 estimate of KL(old || new)), ``ratio_mean``.
    """
    token_log_ratio = logp - old_logp
    if importance_ratio == "token":
        log_ratio = token_log_ratio
    elif importance_ratio == "sequence":
        log_ratio = sequence_log_ratio(logp, old_logp, mask)
    else:
        raise ValueError(f"importance_ratio must be one of {IMPORTANCE_RATIOS}, got {importance_ratio!r}.")
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
            # Per token whatever the clipped ratio: target_kl's early stop means the same under GSPO.
            "approx_kl": _finite_k3(token_log_ratio, mask),
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
