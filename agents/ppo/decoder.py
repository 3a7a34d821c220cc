"""The rollout's KV-cached decoding: :class:`CachedDecoder` prefills the prompts once, then feeds one token per
slot and step (or, in a multi-turn env, the agent's token and the env's text as one block, :func:`env_block`)
through the model's cache. Used by :func:`agents.ppo.rollout.generate_episodes`; theory: docs/theory.md section 11.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from agents.models import position_ids_from_mask
from textgym.envs.core import split_flat_observation


class CachedDecoder:
    """Prefill once, then one token per step through the model's KV cache."""

    def __init__(self, model: nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor):
        self.model = model
        out = model(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            position_ids=position_ids_from_mask(prompt_mask),
            use_cache=True,
        )
        self.past = out.past_key_values
        self.hidden = out.hidden[:, -1]
        self.values = out.values[:, -1]

    def step(self, tokens: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> None:
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=attention_mask,
            position_ids=positions[:, None],
            past_key_values=self.past,
            use_cache=True,
        )
        self.past = out.past_key_values
        self.hidden = out.hidden[:, -1]
        self.values = out.values[:, -1]

    def extend(self, tokens: torch.Tensor, counts: torch.Tensor, attention_mask: torch.Tensor,
               positions: torch.Tensor) -> None:
        """Feed a block of up to ``W`` tokens per slot (a multi-turn step: the agent's token, then the env's).

        Args:
            tokens: ``[N, W]`` ids; slot ``i`` uses its first ``counts[i]`` (>= 1), the rest is padding.
            counts: ``[N]`` tokens each slot adds.
            attention_mask: ``[N, past + W]``, the block's columns 1 on each slot's used tokens only (a padded
                column is never attended to, now or later).
            positions: ``[N]`` the position id of each slot's first new token.
        """
        width = tokens.shape[1]
        out = self.model(
            input_ids=tokens,
            attention_mask=attention_mask,
            position_ids=positions[:, None] + torch.arange(width, device=tokens.device),
            past_key_values=self.past,
            use_cache=True,
        )
        self.past = out.past_key_values
        last = (counts - 1).to(tokens.device)  # each slot's state after its last new token
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        self.hidden = out.hidden[rows, last]
        self.values = out.values[rows, last]


def env_block(obs: Any, P: int, length: np.ndarray, counts: np.ndarray, active: np.ndarray, tokens: torch.Tensor,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A multi-turn step's new tokens as a right-padded ``[N, W]`` block (an active slot ``i``: its ``counts[i]``
    tokens from response column ``length[i]`` of the observation; a slot that finished before this step: the token
    it was given, as in the one-token step) and the block's attention-mask columns (1 on used tokens)."""
    ids = np.asarray(split_flat_observation(obs)["input_ids"])
    width = int(counts.max())
    block = np.zeros((len(counts), width), dtype=np.int64)
    block[:, 0] = tokens.cpu().numpy()
    mask = np.arange(width)[None, :] < counts[:, None]
    for i in np.flatnonzero(active):  # a finished slot's row may sit at the budget: nothing to read there
        start, n = int(length[i]), int(counts[i])
        block[i, :n] = ids[i, P + start : P + start + n]
    return torch.from_numpy(block).to(device), torch.from_numpy(mask).long().to(device)
