"""A short supervised warm start: cross-entropy on a task's reference completions, before RL.

RL from a randomly initialised model almost never samples a rewarded answer; a few hundred steps of
supervised fine-tuning on the prompt records' ``completion`` field put the policy where PPO's exploration can
find the reward (the usual SFT -> RL recipe). Only the completion tokens and the EOS are trained on.

A multi-turn env's records carry their demonstration as ``agent_turns`` instead: each is replayed through the
env (:func:`textgym.envs.text_actions.replay_turns`), so the model sees the conversation exactly as the env
writes it, and only the agent's tokens are trained on (the env's text is context, as in TokenPPO's loss).
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


def encode_conversations(replay_env: Any, records: Sequence[dict]):
    """Multi-turn demonstrations in TokenPPO's layout: each record's ``agent_turns`` played through
    ``replay_env`` (a single token-level env of the task) on that record's prompt. Record ``i`` is played on the
    env's prompt ``i``: ``records`` are the env's ``prompt_source`` or its first ``len(records)`` entries.

    Returns ``(prompt_ids, prompt_mask, response_ids, response_mask, agent_mask)``: the response holds the whole
    conversation after the prompt (agent and env tokens); ``agent_mask`` marks the agent's.
    """
    from textgym.envs.text_actions import TextActionEnv, replay_turns

    missing = [i for i, r in enumerate(records) if "agent_turns" not in r]
    if missing:
        raise ValueError(f"A multi-turn warm start replays each record's 'agent_turns'; record {missing[0]} has none.")
    source = replay_env.unwrapped.prompt_source
    for i, record in enumerate(records):
        if i >= len(source) or source[i]["prompt"] != record["prompt"]:
            raise ValueError(f"Record {i} is not the replay env's prompt {i}: pass the env's prompt_source (or its "
                             "first records, in order), from the same task and split as replay_env.")
    P = replay_env.unwrapped.max_prompt_tokens
    text_env = replay_env if isinstance(replay_env, TextActionEnv) else TextActionEnv(replay_env)  # built once: costly
    rows = [replay_turns(text_env, list(r["agent_turns"]), i) for i, r in enumerate(records)]
    ids = np.stack([r["input_ids"] for r in rows])
    attention = np.stack([r["attention_mask"] for r in rows]).astype(bool)
    agent = np.stack([r["agent_mask"] for r in rows]).astype(bool)
    return tuple(torch.from_numpy(a) for a in (ids[:, :P], attention[:, :P], ids[:, P:], attention[:, P:], agent[:, P:]))


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
    replay_env: Any = None,
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
        replay_env: for a multi-turn task, a single token-level env of it (``gym.make(id)``): the records'
            ``agent_turns`` are replayed through it and only the agent's tokens are trained on.

    Returns:
        The loss (mean negative log-likelihood per trained token) of every step.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}.")
    records = [records[i] for i in range(len(records))]
    if replay_env is None:
        prompt_ids, prompt_mask, response_ids, response_mask = encode_pairs(tokenizer, records, max_prompt_tokens,
                                                                            max_new_tokens)
        trained = response_mask
    else:
        prompt_ids, prompt_mask, response_ids, response_mask, trained = encode_conversations(replay_env, records)
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
        weights = trained[rows, : r_mask.shape[1]].to(device) & r_mask  # the agent's tokens (all, single-turn)
        loss = -((logp * weights).sum() / weights.sum().clamp(min=1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if log is not None and log_every and (step + 1) % log_every == 0:
            log(f"sft step {step + 1}/{steps}: loss {np.mean(losses[-log_every:]):.3f}")
    model.eval()
    return losses
