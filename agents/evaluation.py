"""Evaluate a policy on a task: mean reward plus the text-quality metrics that a reward alone hides.

One loop (:func:`episodes_in_order`) runs the episodes for both reports: :func:`evaluate_policy` (what
``TokenPPO.evaluate`` returns) and :func:`evaluate_policy_text` (``textgym eval``, ``textgym train``'s before /
after table).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Protocol

import numpy as np
import torch

from textgym.evaluation import text_metrics


class TextAgent(Protocol):
    """What the evaluations need of an agent (``TokenPPO`` is one): its policy, and a batch of episodes on an env
    for given prompts (``TokenPPO.generate``)."""

    policy: torch.nn.Module

    def generate(self, env: Any, prompt_indices: np.ndarray, deterministic: bool = False) -> Any: ...


def is_multi_turn(env: Any) -> bool:
    """Whether ``env`` (single or vector) runs multi-turn episodes (the env appends its own text between turns)."""
    return getattr(getattr(env.unwrapped, "config", None), "multi_turn", None) is not None


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def episodes_in_order(algo: TextAgent, env: Any, num_episodes: int, deterministic: bool) -> Iterator[tuple[Any, int]]:
    """``(episodes, keep)`` batches of ``algo.generate`` on ``env``, prompts in order (the same episodes every
    evaluation), one batch of the env's slots at a time: the first ``keep`` rows of each count."""
    base = env.unwrapped
    n_slots, n_prompts = base.num_envs, len(base.prompt_source)
    order = np.arange(num_episodes) % n_prompts
    for start in range(0, num_episodes, n_slots):
        chunk = order[start : start + n_slots]
        yield algo.generate(env, np.resize(chunk, n_slots), deterministic=deterministic), chunk.size


@torch.no_grad()
def evaluate_policy(algo: TextAgent, env: Any, num_episodes: int, deterministic: bool = True) -> dict[str, float]:
    """``TokenPPO.evaluate``: mean / std task reward, mean length, EOS rate and the mean of each reward
    component over ``num_episodes`` episodes on ``env``."""
    scores, lengths, eos, components = [], [], [], {}
    with _eval_mode(algo.policy):
        for ep, keep in episodes_in_order(algo, env, num_episodes, deterministic):
            scores.append((ep.env_rewards * ep.response_mask).sum(1)[:keep])
            lengths.append(ep.response_mask.sum(1)[:keep].float())
            eos.append(ep.terminated[:keep].float())
            for name, values in ep.reward_components.items():
                components.setdefault(name, []).append(values[:keep])
    scores_t = torch.cat(scores)
    result = {
        "reward_mean": float(scores_t.mean()),
        "reward_std": float(scores_t.std()) if scores_t.numel() > 1 else 0.0,
        "ep_len_mean": float(torch.cat(lengths).mean()),
        "eos_rate": float(torch.cat(eos).mean()),
        "num_episodes": num_episodes,
    }
    result.update({f"reward_{k}": float(np.nanmean(np.concatenate(v))) for k, v in components.items()})
    return result


@torch.no_grad()
def evaluate_policy_text(algo: TextAgent, env: Any, num_episodes: int, deterministic: bool = False, reference: Any = None,
                         keep_samples: bool = False) -> dict[str, Any]:
    """Sample ``num_episodes`` completions on ``env`` (one batch of its slots at a time, prompts in order).

    Returns mean/std reward, EOS rate, distinct-1/2, self-BLEU, the number of distinct completions, length and,
    when ``reference`` (an ``ActorCriticLM``) is given:

    * ``perplexity_under_reference``: exp of the reference's mean negative log-likelihood per generated token
      (EOS included): how far the policy's text drifted from the reference;
    * ``kl_to_reference``: the mean over completions of ``sum_t log pi(y_t) - log pi_ref(y_t)`` (the k1 estimate
      of KL(pi || pi_ref) per completion, in nats, both distributions unprocessed by top-k/top-p). It is an
      unbiased estimate only for sampled completions; on greedy ones it is the log-ratio of those texts.

    On a multi-turn env every figure but the reward is the agent's alone: the text
    metrics read the agent's turns (:func:`agent_turns_text`: the env's text left out, which would otherwise count
    a tool's output as the policy's diversity) and perplexity and KL sum over the tokens the policy sampled;
    ``agent_turns_mean`` is the mean number of agent turns per episode (Calculator: 1 + tool calls; GuessNumber:
    the guesses).

    With ``keep_samples``, ``"samples"`` lists each episode's ``prompt_index``, ``completion`` and ``reward`` (for
    breakdowns by a record field, e.g. QA's question type).
    """
    order = np.arange(num_episodes) % len(env.unwrapped.prompt_source)
    tokenizer, multi_turn = env.unwrapped.tokenizer, is_multi_turn(env)
    rewards, completions, eos, nll, n_tokens, log_ratio, turn_counts = [], [], [], 0.0, 0, [], []
    with _eval_mode(algo.policy):
        for ep, keep in episodes_in_order(algo, env, num_episodes, deterministic):
            rewards.append((ep.env_rewards * ep.response_mask).sum(1)[:keep])
            if not multi_turn:
                completions += ep.completions[:keep]
            else:
                turns = agent_turns(ep)[:keep]
                completions += [_turns_text(t, tokenizer) for t in turns]
                turn_counts += [len(t) for t in turns]
            eos.append(ep.terminated[:keep].float())
            if reference is not None:
                nll_here, log_ratio_here = _reference_scores(algo.policy, reference, ep, keep)
                nll -= nll_here
                n_tokens += int(_policy_tokens(ep)[:keep].sum())
                log_ratio.append(log_ratio_here)
    scores = torch.cat(rewards)
    result = {
        "reward_mean": float(scores.mean()),
        "reward_std": float(scores.std()) if scores.numel() > 1 else 0.0,
        "eos_rate": float(torch.cat(eos).mean()),
        "num_episodes": int(num_episodes),
        **text_metrics(completions),
    }
    if turn_counts:
        result["agent_turns_mean"] = float(np.mean(turn_counts))
    if reference is not None and n_tokens:
        result["perplexity_under_reference"] = float(np.exp(nll / n_tokens))
        result["kl_to_reference"] = float(torch.cat(log_ratio).mean())
    if keep_samples:
        result["samples"] = [
            {"prompt_index": int(i), "completion": c, "reward": float(r)}
            for i, c, r in zip(order, completions, scores.tolist())
        ]
    return result


def _policy_tokens(ep: Any) -> torch.Tensor:
    """``[N, T]`` bool: the response tokens the policy sampled (a multi-turn env's own tokens excluded)."""
    return ep.response_mask if ep.agent_mask is None else ep.response_mask & ep.agent_mask


def agent_turns(ep: Any) -> list[list[list[int]]]:
    """Each episode's agent turns as token ids: the contiguous runs of policy tokens (the env's text between them
    left out)."""
    episodes = []
    for ids, sampled in zip(ep.response_ids.tolist(), _policy_tokens(ep).tolist()):
        turns, current = [], []
        for token, mine in zip(ids, sampled):
            if mine:
                current.append(token)
            elif current:
                turns.append(current)
                current = []
        episodes.append(turns + [current] if current else turns)
    return episodes


def agent_turns_text(ep: Any, tokenizer: Any) -> list[str]:
    """Each episode's agent turns as text, the env's text between them left out: each turn decoded on its own, the
    turns joined by a newline."""
    return [_turns_text(turns, tokenizer) for turns in agent_turns(ep)]


def _turns_text(turns: list[list[int]], tokenizer: Any) -> str:
    return "\n".join(tokenizer.decode(turn) for turn in turns)


@torch.no_grad()
def _reference_scores(policy: Any, reference: Any, ep: Any, keep: int) -> tuple[float, torch.Tensor]:
    """``(sum of log pi_ref over the kept rows' policy tokens, [keep] per-completion log pi - log pi_ref)``, both
    distributions unprocessed (a plain ``LogitsProcessor``); a multi-turn env's tokens are context, not scored."""
    from agents.ppo.rollout import LogitsProcessor as processor, evaluate_sequences

    device = next(policy.parameters()).device  # episodes come back on the CPU
    reference = reference.to(device).eval()
    response_ids, response_mask = ep.response_ids.to(device), ep.response_mask.to(device)
    ids = torch.cat([ep.prompt_ids.to(device), response_ids], 1)
    mask = torch.cat([ep.prompt_mask.to(device), response_mask.long()], 1)
    P = ep.prompt_ids.shape[1]
    ref_logp, _, _ = evaluate_sequences(reference, ids, mask, P, response_ids, response_mask, processor(), checkpoint=False)
    policy_logp, _, _ = evaluate_sequences(policy, ids, mask, P, response_ids, response_mask, processor(), checkpoint=False)
    ref_logp, policy_logp = (x.float().cpu() * _policy_tokens(ep) for x in (ref_logp, policy_logp))
    return float(ref_logp[:keep].sum()), (policy_logp - ref_logp).sum(1)[:keep]
