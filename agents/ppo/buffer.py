"""The sequence-level rollout buffer: one row per episode, not one per token.

A row holds what PPO needs for a whole completion: the left-padded prompt, the response token ids (int32:
vocabularies are far below 2**31), their mask, and per-token old log-probs, reference log-probs, values and
env rewards, then the advantages and returns computed from them. Nothing of vocabulary size is stored:
at 64 sequences x 48 tokens the buffer is ~100 KB, where a per-transition buffer of float32 observations
(RL4LMs) or of action masks (MaskablePPO) grows with ``P + T`` or ``vocab_size`` per token.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterator

import numpy as np
import torch


@dataclass
class SequenceBatch:
    """A minibatch of sequences, trimmed to the columns any of its rows uses.

    Attributes:
        input_ids: ``[B, P' + T']`` int64 prompt + response ids, ready for the model.
        attention_mask: ``[B, P' + T']`` int64, 1 on real tokens.
        prompt_length: ``P'``: response token ``t`` sits at column ``P' + t``; its log-prob and value are read
            from the hidden state at column ``P' - 1 + t``.
        response_ids: ``[B, T']`` int64.
        response_mask: ``[B, T']`` bool, True on generated tokens.
        old_logp, ref_logp, values, advantages, returns: ``[B, T']`` float32.
        indices: the rows of the buffer this minibatch holds.
        loss_mask: ``[B, T']`` bool, the tokens the losses are taken over: ``response_mask`` less the rows the
            rollout left out of the loss (``overlong_filter``).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    indices: torch.Tensor
    loss_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.loss_mask is None:
            self.loss_mask = self.response_mask


@dataclass
class SequenceRolloutBuffer:
    """One rollout: ``N`` episodes of up to ``T`` response tokens after prompts left-padded to ``P`` tokens.

    Attributes:
        prompt_ids: ``[N, P]`` int32, left-padded.
        prompt_mask: ``[N, P]`` bool.
        response_ids: ``[N, T]`` int32, the generated tokens (EOS included), right-padded.
        response_mask: ``[N, T]`` bool, True on generated tokens; always a prefix of each row.
        env_rewards: ``[N, T]`` float32, the env's reward for each token (task reward on the last one).
        old_logp: ``[N, T]`` float32, ``log pi_old(a_t | s_t)`` of the sampling policy (kept while sampling,
            or a teacher-forced pass: ``TokenPPO(old_logprobs=...)``).
        ref_logp: ``[N, T]`` float32, the reference policy's log-prob of the same tokens (0 without a reference).
        values: ``[N, T]`` float32, ``V(s_t)`` (0 when the advantages come from a group baseline).
        terminated: ``[N]`` bool, the episode ended with EOS (False: truncated at ``T`` tokens).
        prompt_indices: ``[N]`` int64, which prompt of the env's prompt source each row answers.
        advantages, returns, token_rewards: ``[N, T]`` float32, filled by ``TokenPPO`` after the rollout.
        loss_mask: ``[N, T]`` bool, the tokens the losses are taken over, filled with the advantages:
            the policy's tokens (``action_mask``), less truncated episodes under ``overlong_filter`` (``None``:
            ``response_mask``).
        agent_mask: ``[N, T]`` bool, True on the tokens the policy sampled when the env wrote tokens of its own
            in between (multi-turn: a tool's output, a user's reply); ``None``: every response token is the
            policy's. The env's tokens are context (the model reads them) but not actions: no log-prob ratio,
            KL, advantage or loss term.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    env_rewards: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    values: torch.Tensor
    terminated: torch.Tensor
    prompt_indices: torch.Tensor
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    token_rewards: torch.Tensor | None = None
    loss_mask: torch.Tensor | None = None
    agent_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n, t = self.response_ids.shape
        if self.prompt_ids.shape[0] != n or self.prompt_mask.shape != self.prompt_ids.shape:
            raise ValueError("prompt_ids / prompt_mask must be [N, P] with the N of response_ids.")
        for name in ("response_mask", "env_rewards", "old_logp", "ref_logp", "values"):
            if getattr(self, name).shape != (n, t):
                raise ValueError(f"{name} must have shape {(n, t)} like response_ids, got {tuple(getattr(self, name).shape)}.")
        self.prompt_ids = self.prompt_ids.to(torch.int32)
        self.response_ids = self.response_ids.to(torch.int32)
        self.prompt_mask = self.prompt_mask.bool()
        self.response_mask = self.response_mask.bool()

    @property
    def num_sequences(self) -> int:
        return self.response_ids.shape[0]

    @property
    def action_mask(self) -> torch.Tensor:
        """``[N, T]`` bool: the tokens the policy sampled (``agent_mask``, else ``response_mask``)."""
        return self.response_mask if self.agent_mask is None else self.agent_mask

    @property
    def num_tokens(self) -> int:
        """Generated tokens (env transitions: the policy's tokens) in the buffer."""
        return int(self.action_mask.sum())

    @property
    def response_lengths(self) -> torch.Tensor:
        return self.response_mask.sum(dim=1)

    @property
    def scores(self) -> torch.Tensor:
        """``[N]`` episode returns from the env (task reward plus any per-step shaping)."""
        return (self.env_rewards * self.response_mask).sum(dim=1)

    def nbytes(self) -> int:
        """Memory held by the buffer's tensors."""
        return sum(
            getattr(self, f.name).element_size() * getattr(self, f.name).numel()
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        )

    def to(self, device: torch.device | str) -> "SequenceRolloutBuffer":
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                setattr(self, f.name, value.to(device))
        return self

    def get(self, indices: torch.Tensor) -> SequenceBatch:
        """The rows ``indices`` as a model-ready :class:`SequenceBatch` for the update, trimmed of all-padding
        columns (:func:`model_inputs`, which is all the scoring before the advantages needs)."""
        if self.advantages is None or self.returns is None:
            raise RuntimeError("Advantages are not computed yet: TokenPPO fills them after the rollout.")
        inputs = model_inputs(self.prompt_ids, self.prompt_mask, self.response_ids, self.response_mask, indices)
        cols = slice(0, inputs.response_ids.shape[1])

        def rows(values: torch.Tensor) -> torch.Tensor:
            return values[indices, cols]

        return SequenceBatch(
            input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, prompt_length=inputs.prompt_length,
            response_ids=inputs.response_ids, response_mask=inputs.response_mask, old_logp=rows(self.old_logp),
            ref_logp=rows(self.ref_logp), values=rows(self.values), advantages=rows(self.advantages),
            returns=rows(self.returns), indices=indices,
            # never wider than the response mask, even if that was edited after the advantages
            loss_mask=None if self.loss_mask is None else rows(self.loss_mask) & inputs.response_mask,
        )

    def minibatches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[SequenceBatch]:
        """Shuffled minibatches of ``batch_size`` sequences (the last may be smaller); one pass over the rows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 sequence, got {batch_size}.")
        order = torch.randperm(self.num_sequences, generator=generator)
        for start in range(0, self.num_sequences, batch_size):
            yield self.get(order[start : start + batch_size].to(self.response_ids.device))


@dataclass
class ModelInputs:
    """Prompt + response rows trimmed to the columns any of them uses (see :func:`model_inputs`)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int
    response_ids: torch.Tensor
    response_mask: torch.Tensor


def model_inputs(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                 response_mask: torch.Tensor, indices: torch.Tensor) -> ModelInputs:
    """The rows ``indices`` of left-padded prompts and right-padded responses as one int64 ``[B, P' + T']``
    sequence, without the columns that are padding in every one of those rows.

    Trimming is exact: position ids come from the attention mask, so dropping columns that are padding in every
    row changes no log-prob, and it saves the compute of short minibatches.
    """
    prompt_mask = prompt_mask[indices].bool()
    response_mask = response_mask[indices].bool()
    first = first_used_column(prompt_mask)
    used_response = response_mask.any(dim=0).nonzero()
    t_max = int(used_response[-1]) + 1 if used_response.numel() else 1
    prompt = prompt_ids[indices, first:].long()
    response = response_ids[indices, :t_max].long()
    response_mask = response_mask[:, :t_max]
    return ModelInputs(
        input_ids=torch.cat([prompt, response], dim=1),
        attention_mask=torch.cat([prompt_mask[:, first:], response_mask], dim=1).long(),
        prompt_length=prompt.shape[1], response_ids=response, response_mask=response_mask,
    )


def first_used_column(prompt_mask: torch.Tensor) -> int:
    """The first column of left-padded prompts that any row uses (the last column if none does)."""
    used = prompt_mask.any(dim=0).nonzero()
    return int(used[0]) if used.numel() else prompt_mask.shape[1] - 1


def layout_to_sequences(input_ids: np.ndarray, attention_mask: np.ndarray, prompt_slots: int) -> tuple[torch.Tensor, ...]:
    """Split env observations in textgym's layout (``docs/design.md``) into prompt and response tensors.

    Args:
        input_ids: ``[N, P + T]`` ids, prompt left-padded into ``[0, P)``, token ``t`` at ``P + t``.
        attention_mask: ``[N, P + T]``, 1 on real tokens.
        prompt_slots: ``P`` (the env's ``max_prompt_tokens``).

    Returns:
        ``(prompt_ids, prompt_mask, response_ids, response_mask)`` as torch tensors.
    """
    ids = torch.as_tensor(np.asarray(input_ids), dtype=torch.long)
    mask = torch.as_tensor(np.asarray(attention_mask), dtype=torch.bool)
    return ids[:, :prompt_slots], mask[:, :prompt_slots], ids[:, prompt_slots:], mask[:, prompt_slots:]
