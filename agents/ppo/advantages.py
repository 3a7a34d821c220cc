"""Advantages: GAE over per-token rewards (critic), group baselines (GRPO, RLOO) and REINFORCE++'s
whitened returns (both critic-free).

All tensors are ``[B, T]`` over the response tokens of ``B`` sequences, with ``mask[b, t] = 1`` on the tokens
sequence ``b`` actually generated (its EOS included). Theory: ``docs/theory.md`` sections "GAE" and "Group
baselines".
"""

from __future__ import annotations

import torch

GROUP_BASELINES = ("grpo", "rloo")
#: REINFORCE++ (Hu 2025): the discounted return-to-go of the per-token rewards, whitened over the global batch;
#: ``"reinforce++_baseline"`` first subtracts each prompt group's mean task reward (needs ``group_size >= 2``).
REINFORCE_BASELINES = ("reinforce++", "reinforce++_baseline")
#: What a group baseline divides its centred returns by (``TokenPPOConfig.scale_rewards``): the std of the
#: group's returns, the std of the whole batch's, or nothing.
REWARD_SCALINGS = ("group", "batch", "none")
#: Each baseline's own scaling, used when none is asked for: GRPO divides by the group's std, RLOO does not.
BASELINE_REWARD_SCALING = {"grpo": "group", "rloo": "none"}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1 (0 when the mask is empty)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of ``x`` over the masked entries (0 with fewer than two of them)."""
    mask = mask.to(x.dtype)
    n = mask.sum()
    mean = (x * mask).sum() / n.clamp(min=1.0)
    return (((x - mean) ** 2) * mask).sum() / (n - 1).clamp(min=1.0)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise ``x`` to zero mean / unit variance over the valid tokens; padded entries come back as 0.

    Args:
        x: values ``[B, T]``.
        mask: 1 on valid entries.
        eps: added to the variance.
    """
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask.to(x.dtype)


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, gae_lambda: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation along each sequence's response tokens.

    ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` with ``V = 0`` after the last valid token (every episode
    ends inside the buffer: EOS terminates, the token limit truncates and the reward is given then, so there
    is nothing to bootstrap), and ``A_t = delta_t + gamma * lam * A_{t+1}``.

    The valid tokens need not be a prefix of each row: in a multi-turn episode the env's tokens sit between the
    policy's, and they are not time steps. The recursion then steps from one valid token to the next (``s_{t+1}``
    is the state before the next token the policy wrote), as if the env's tokens were not there.

    Args:
        rewards: per-token rewards ``r_t`` ``[B, T]`` (KL penalty on every token plus the task reward on the last).
        values: critic values ``V(s_t)`` ``[B, T]`` of the state before token ``t``.
        mask: 1 on the policy's tokens (a prefix of each row, or not: see above).
        gamma: discount (1.0: the task reward is about the whole text).
        gae_lambda: GAE ``lambda``.

    Returns:
        ``(advantages, returns)``, both ``[B, T]`` and 0 on padding; ``returns = advantages + values``.
    """
    if rewards.shape != values.shape or rewards.shape != mask.shape:
        raise ValueError(f"rewards, values and mask must share a shape, got {rewards.shape}, {values.shape}, {mask.shape}.")
    valid = mask.bool()
    if not (valid[:, 1:] <= valid[:, :-1]).all():  # not a prefix: pack each row's valid tokens to the front
        order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices
        packed = compute_gae(rewards.gather(1, order), values.gather(1, order), valid.gather(1, order), gamma, gae_lambda)
        return tuple(torch.zeros_like(x).scatter_(1, order, x) for x in packed)
    maskf = mask.to(values.dtype)
    values = values * maskf
    rewards = rewards * maskf
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(values[:, 0])
    num_tokens = values.shape[1]
    for t in reversed(range(num_tokens)):
        next_value = values[:, t + 1] if t + 1 < num_tokens else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * gae_lambda * last) * maskf[:, t]
        advantages[:, t] = last
    return advantages, (advantages + values) * maskf


def returns_to_go(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """REINFORCE's per-token return ``G_t = sum_{s >= t} gamma^(s - t) r_s`` along each sequence (0 on padding):
    GAE with ``V = 0`` and ``lambda = 1``, so it is :func:`compute_gae` with zero values.

    Args:
        rewards: per-token rewards ``[B, T]`` (KL penalty on every token, task reward on the last).
        mask: 1 on generated tokens (a prefix of each row).
        gamma: discount.
    """
    advantages, _ = compute_gae(rewards, torch.zeros_like(rewards), mask, gamma, gae_lambda=1.0)
    return advantages


def group_advantages(scores: torch.Tensor, group_size: int, method: str = "grpo", eps: float = 1e-6,
                     scale: str | None = None) -> torch.Tensor:
    """Critic-free baselines from ``G = group_size`` completions of the same prompt.

    The rows of ``scores`` are grouped consecutively: rows ``[g*G, (g+1)*G)`` answer the same prompt.

    * ``"grpo"`` (DeepSeekMath): ``A_i = (R_i - mean_g R) / (std_g R + eps)``.
    * ``"rloo"`` (Ahmadian et al. 2024): ``A_i = R_i - mean_{j != i} R_j = G/(G-1) * (R_i - mean_g R)``, the
      leave-one-out baseline, unbiased because ``R_i`` is not in its own baseline.

    ``scale`` replaces the division: ``"group"`` by ``std_g R + eps`` (GRPO's), ``"batch"`` by the std of all of
    ``scores`` ``+ eps`` (one scale for every group), ``"none"`` no division (RLOO's; Dr. GRPO's for GRPO: a
    group's std weights prompts by how (un)certain they are, and easy or hard prompts with small std get
    blown up). ``None``: the method's own (:data:`BASELINE_REWARD_SCALING`). Stds are unbiased (``torch.std``).

    Args:
        scores: one scalar return per sequence ``[B]`` (task reward, minus the summed KL penalty if any).
        group_size: ``G`` >= 2, dividing ``B``.
        method: ``"grpo"`` or ``"rloo"``.
        eps: keeps the division finite when the scores it divides by are all equal (the advantages are then 0).
        scale: one of :data:`REWARD_SCALINGS`, or ``None``.

    Returns:
        ``[B]`` advantages, one per sequence (broadcast over its tokens by the caller).
    """
    if method not in GROUP_BASELINES:
        raise ValueError(f"baseline must be one of {GROUP_BASELINES} (or 'gae'), got {method!r}.")
    if scale is not None and scale not in REWARD_SCALINGS:
        raise ValueError(f"scale_rewards must be one of {REWARD_SCALINGS} or None, got {scale!r}.")
    if group_size < 2:
        raise ValueError(f"Group baselines need group_size >= 2 completions per prompt, got {group_size}.")
    if scores.ndim != 1 or scores.numel() % group_size:
        raise ValueError(f"scores must be 1-D with a length divisible by group_size={group_size}, got {tuple(scores.shape)}.")
    grouped = scores.view(-1, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    centred = grouped - mean if method == "grpo" else (grouped - mean) * group_size / (group_size - 1)
    scale = BASELINE_REWARD_SCALING[method] if scale is None else scale
    if scale == "group":
        adv = centred / (grouped.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        adv = centred / (scores.std() + eps)
    else:
        adv = centred
    return adv.reshape(-1)


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor, mask: torch.Tensor) -> float:
    """``1 - Var[y_true - y_pred] / Var[y_true]`` over valid tokens (SB3's diagnostic; nan if Var[y_true] = 0)."""
    var_y = masked_var(y_true, mask)
    if var_y.item() == 0:
        return float("nan")
    return float(1.0 - masked_var(y_true - y_pred, mask) / var_y)
