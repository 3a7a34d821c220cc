"""Evaluate a policy on a task: mean reward plus the text-quality metrics that a reward alone hides."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from textgym.evaluation import text_metrics


@torch.no_grad()
def evaluate_policy_text(algo: Any, env: Any, num_episodes: int, deterministic: bool = False, reference: Any = None) -> dict[str, float]:
    """Sample ``num_episodes`` completions on ``env`` (one batch of its slots at a time, prompts in order).

    Returns mean/std reward, EOS rate, distinct-1/2, self-BLEU, length and, when ``reference`` (an
    ``ActorCriticLM``) is given, the perplexity of the completions under it (exp of the mean negative
    log-likelihood per generated token, EOS included): how far the policy's text drifted from the reference.
    """
    from agents.ppo.rollout import Sampler, evaluate_sequences, generate_episodes

    base = env.unwrapped
    n_slots, n_prompts = base.num_envs, len(base.prompt_source)
    order = np.arange(num_episodes) % n_prompts
    rewards, completions, eos, nll, n_tokens = [], [], [], 0.0, 0
    algo.policy.eval()
    for start in range(0, num_episodes, n_slots):
        chunk = order[start : start + n_slots]
        ep = generate_episodes(algo.policy, env, algo.sampler, prompt_indices=np.resize(chunk, n_slots),
                               generator=algo.generator, deterministic=deterministic)
        keep = chunk.size
        rewards.append((ep.env_rewards * ep.response_mask).sum(1)[:keep])
        completions += ep.completions[:keep]
        eos.append(ep.terminated[:keep].float())
        if reference is not None:
            reference = reference.to(ep.prompt_ids.device).eval()
            ids = torch.cat([ep.prompt_ids, ep.response_ids], 1)
            mask = torch.cat([ep.prompt_mask, ep.response_mask.long()], 1)
            logp, _, _ = evaluate_sequences(reference, ids, mask, ep.prompt_ids.shape[1], ep.response_ids,
                                            ep.response_mask, Sampler(), checkpoint=False)
            nll -= float(logp[:keep].sum())
            n_tokens += int(ep.response_mask[:keep].sum())
    scores = torch.cat(rewards)
    result = {
        "reward_mean": float(scores.mean()),
        "reward_std": float(scores.std()) if scores.numel() > 1 else 0.0,
        "eos_rate": float(torch.cat(eos).mean()),
        "num_episodes": int(num_episodes),
        **text_metrics(completions),
    }
    if reference is not None and n_tokens:
        result["perplexity_under_reference"] = float(np.exp(nll / n_tokens))
    return result
