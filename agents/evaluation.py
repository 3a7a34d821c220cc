"""Evaluate a policy on a task: mean reward plus the text-quality metrics that a reward alone hides."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from textgym.evaluation import text_metrics


@torch.no_grad()
def evaluate_policy_text(algo: Any, env: Any, num_episodes: int, deterministic: bool = False, reference: Any = None,
                         keep_samples: bool = False) -> dict[str, Any]:
    """Sample ``num_episodes`` completions on ``env`` (one batch of its slots at a time, prompts in order).

    Returns mean/std reward, EOS rate, distinct-1/2, self-BLEU, the number of distinct completions, length and,
    when ``reference`` (an ``ActorCriticLM``) is given:

    * ``perplexity_under_reference``: exp of the reference's mean negative log-likelihood per generated token
      (EOS included): how far the policy's text drifted from the reference;
    * ``kl_to_reference``: the mean over completions of ``sum_t log pi(y_t) - log pi_ref(y_t)`` (the k1 estimate
      of KL(pi || pi_ref) per completion, in nats, both distributions unprocessed by top-k/top-p). It is an
      unbiased estimate only for sampled completions; on greedy ones it is the log-ratio of those texts.

    With ``keep_samples``, ``"samples"`` lists each episode's ``prompt_index``, ``completion`` and ``reward`` (for
    breakdowns by a record field, e.g. QA's question type).
    """
    from agents.ppo.rollout import Sampler, evaluate_sequences, generate_episodes

    base = env.unwrapped
    n_slots, n_prompts = base.num_envs, len(base.prompt_source)
    order = np.arange(num_episodes) % n_prompts
    rewards, completions, eos, nll, n_tokens, log_ratio = [], [], [], 0.0, 0, []
    was_training = algo.policy.training
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
            device = next(algo.policy.parameters()).device  # episodes come back on the CPU
            reference = reference.to(device).eval()
            response_ids, response_mask = ep.response_ids.to(device), ep.response_mask.to(device)
            ids = torch.cat([ep.prompt_ids.to(device), response_ids], 1)
            mask = torch.cat([ep.prompt_mask.to(device), response_mask.long()], 1)
            P = ep.prompt_ids.shape[1]
            ref_logp, _, _ = evaluate_sequences(reference, ids, mask, P, response_ids, response_mask, Sampler(),
                                                checkpoint=False)
            policy_logp, _, _ = evaluate_sequences(algo.policy, ids, mask, P, response_ids, response_mask, Sampler(),
                                                   checkpoint=False)
            ref_logp, policy_logp = (x.float().cpu() * ep.response_mask for x in (ref_logp, policy_logp))
            nll -= float(ref_logp[:keep].sum())
            n_tokens += int(ep.response_mask[:keep].sum())
            log_ratio.append((policy_logp - ref_logp).sum(1)[:keep])
    algo.policy.train(was_training)
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
        result["kl_to_reference"] = float(torch.cat(log_ratio).mean())
    if keep_samples:
        result["samples"] = [
            {"prompt_index": int(i), "completion": c, "reward": float(r)}
            for i, c, r in zip(order, completions, scores.tolist())
        ]
    return result
