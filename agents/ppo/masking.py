"""NLPO-style action masking (Ramamurthy et al. 2023, RL4LMs): restrict each step's vocabulary to the top-p
nucleus of a *lagged* copy of the policy.

The mask policy ``pi_mask`` is a frozen snapshot of the policy, refreshed every ``update_interval`` iterations
(``TokenPPO(nlpo_top_p=..., nlpo_update_interval=...)``). At every step the policy may only pick tokens in
``pi_mask``'s top-p set (at least ``min_tokens`` of them), which keeps exploration inside what a recent policy
found plausible. The masked policy is what PPO optimises: the same mask enters sampling, the old log-probs
and the update's log-probs, so the importance ratio compares two distributions over the same support.
Masks are recomputed from the snapshot when needed and never stored (they are vocabulary-sized).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def top_p_mask(logits: torch.Tensor, top_p: float, min_tokens: int = 1) -> torch.Tensor:
    """bool ``[..., V]``: True on the smallest set of most likely tokens whose probability reaches ``top_p``,
    and on at least ``min_tokens`` tokens.

    Args:
        logits: ``[..., V]`` logits of the mask policy.
        top_p: nucleus mass in (0, 1].
        min_tokens: the mask keeps at least this many tokens (RL4LMs: 100), capped at ``V``.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"nlpo_top_p must be in (0, 1], got {top_p!r}.")
    if min_tokens < 1:
        raise ValueError(f"nlpo_min_tokens must be >= 1, got {min_tokens!r}.")
    sorted_logits, order = torch.sort(logits.float(), dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
    keep_sorted = mass_before < top_p
    keep_sorted[..., : min(min_tokens, logits.shape[-1])] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


class LaggedMaskPolicy:
    """A frozen snapshot of the policy that yields NLPO masks; ``refresh`` copies the current weights in.

    Args:
        model: the policy (``ActorCriticLM``); deep-copied once.
        top_p: nucleus mass of the mask.
        min_tokens: minimum tokens kept per step.
        update_interval: refresh every this many PPO iterations (RL4LMs: 5).
    """

    def __init__(self, model: nn.Module, top_p: float, min_tokens: int, update_interval: int):
        if update_interval < 1:
            raise ValueError(f"nlpo_update_interval must be >= 1 iteration, got {update_interval!r}.")
        top_p_mask(torch.zeros(1, 2), top_p, min_tokens)  # validate the arguments now
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.top_p, self.min_tokens, self.update_interval = top_p, min_tokens, update_interval

    @torch.no_grad()
    def refresh(self, model: nn.Module) -> None:
        self.model.load_state_dict(model.state_dict())

    def maybe_refresh(self, model: nn.Module, iteration: int) -> bool:
        """Refresh when ``iteration`` (1-based, completed updates) is a multiple of ``update_interval``."""
        if iteration % self.update_interval == 0:
            self.refresh(model)
            return True
        return False

    def mask_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The lagged copy's float32 logits from its final hidden states ``[..., H]`` (what :meth:`mask_from_logits`
        takes)."""
        return self.model.lm_head(hidden).float()

    def mask_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return top_p_mask(logits, self.top_p, self.min_tokens)
