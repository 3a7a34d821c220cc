"""A short supervised warm start: cross-entropy on a task's reference completions, before RL.

RL from a randomly initialised model almost never samples a rewarded answer; a few hundred steps of
supervised fine-tuning on the prompt records' ``completion`` field put the policy where PPO's exploration can
find the reward (the usual SFT -> RL recipe). Only the completion tokens and the EOS are trained on.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from agents.ppo.buffer import model_inputs
from agents.ppo.rollout import LogitsProcessor, evaluate_sequences
from textgym.envs.core import left_padded_prompt


def encode_pairs(tokenizer: Any, records: Sequence[dict], max_prompt_tokens: int, max_new_tokens: int):
    """Token ids of ``(prompt, completion + EOS)`` pairs in TokenPPO's layout: prompts placed as the env places
    them (:func:`textgym.envs.core.left_padded_prompt`), completions right-padded to ``max_new_tokens``."""
    missing = [i for i, r in enumerate(records) if "completion" not in r]
    if missing:
        raise ValueError(f"Supervised warm start needs a 'completion' field in every record; record {missing[0]} has none.")
    n, pad, eos = len(records), tokenizer.pad_token_id, tokenizer.eos_token_id
    prompt_ids = np.full((n, max_prompt_tokens), pad, dtype=np.int64)
    prompt_mask = np.zeros_like(prompt_ids)
    response_ids = np.full((n, max_new_tokens), pad, dtype=np.int64)
    response_mask = np.zeros_like(response_ids, dtype=bool)
    for i, record in enumerate(records):
        prompt_ids[i], prompt_mask[i] = left_padded_prompt(tokenizer.encode(record["prompt"]), max_prompt_tokens, pad)
        c = (list(tokenizer.encode(record["completion"])) + [eos])[:max_new_tokens]
        response_ids[i, : len(c)], response_mask[i, : len(c)] = c, True
    return tuple(torch.from_numpy(a) for a in (prompt_ids, prompt_mask, response_ids, response_mask))


def supervised_warm_start(
    model: nn.Module,
    tokenizer: Any,
    records: Sequence[dict],
    *,
    max_prompt_tokens: int,
    max_new_tokens: int,
    steps: int = 200,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    log_every: int = 50,
    log: Callable[[str], None] | None = print,
) -> list[float]:
    """Train ``model`` (an ``ActorCriticLM``) by maximum likelihood of ``completion`` given ``prompt``.

    Args:
        model: the policy; trained in place.
        tokenizer: the env's tokenizer (``encode``, ``pad_token_id``, ``eos_token_id``).
        records: prompt records with ``prompt`` and ``completion`` (e.g. ``env.unwrapped.prompt_source``).
        max_prompt_tokens, max_new_tokens: the env's ``P`` and ``T``.
        steps: optimiser steps.
        batch_size: records per step (sampled with replacement from a seeded RNG).
        learning_rate: AdamW learning rate.
        seed: RNG seed for batch sampling.
        log_every: report the mean loss every this many steps (0: never).
        log: where reports go (``None``: silent).

    Returns:
        The loss (mean negative log-likelihood per completion token) of every step.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}.")
    records = [records[i] for i in range(len(records))]
    prompt_ids, prompt_mask, response_ids, response_mask = encode_pairs(tokenizer, records, max_prompt_tokens, max_new_tokens)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    rng = np.random.default_rng(seed)
    sampler = LogitsProcessor()
    losses = []
    model.train()
    for step in range(steps):
        rows = torch.from_numpy(rng.integers(0, len(records), size=batch_size))
        # The update's padding trim: drop the columns that are padding in every row of the batch (exact).
        batch = model_inputs(prompt_ids, prompt_mask, response_ids, response_mask, rows)
        r_mask = batch.response_mask.to(device)
        logp, _, _ = evaluate_sequences(
            model, batch.input_ids.to(device), batch.attention_mask.to(device), batch.prompt_length,
            batch.response_ids.to(device), r_mask, sampler,
        )
        loss = -(logp.sum() / r_mask.sum())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if log is not None and log_every and (step + 1) % log_every == 0:
            log(f"sft step {step + 1}/{steps}: loss {np.mean(losses[-log_every:]):.3f}")
    model.eval()
    return losses
