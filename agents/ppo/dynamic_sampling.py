"""DAPO's dynamic sampling: keep only the prompt groups whose completions' rewards differ, and sample more
until the rollout is full.

Under a group baseline a group whose ``G`` completions all scored the same (all right, all wrong) has zero
advantage for every token: it adds nothing to the gradient but still counts in the loss's token mean, so the
more prompts the policy has solved (or cannot solve), the smaller the effective batch. Dynamic sampling (Yu et
al. 2025, DAPO section 3.2) drops those groups and samples new prompts until ``target_groups`` informative groups
are collected, or ``max_rollouts`` rollouts were sampled (then it trains on the informative groups it has).

Every token sampled, kept or dropped, is counted in ``TokenPPO.num_timesteps`` and in the rollout's time: a
budget of ``total_timesteps`` buys fewer iterations with dynamic sampling on, which is its real cost.
Theory: ``docs/theory.md`` section "Dynamic sampling".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from agents.ppo.rollout import Episodes


@dataclass
class DynamicSamplingStats:
    """What the refill did in one iteration (logged as ``rollout/dynamic_sampling_*``).

    Attributes:
        rollouts: rollouts sampled (1: the first was full of informative groups).
        groups_sampled: prompt groups sampled over all of them.
        groups_informative: those whose rewards were not all equal.
        groups_kept: those the update trains on (at most the target; fewer when ``max_rollouts`` ran out; 0 when
            none was informative, and the last rollout is trained on as it is).
        reward_mean_sampled: the mean episode return over every sampled episode, kept or not (the buffer's
            ``rollout/ep_rew_mean`` is over the kept ones only, which are neither all right nor all wrong).
    """

    rollouts: int
    groups_sampled: int
    groups_informative: int
    groups_kept: int
    reward_mean_sampled: float

    def metrics(self) -> dict[str, float]:
        return {
            "rollout/dynamic_sampling_rollouts": float(self.rollouts),
            "rollout/dynamic_sampling_informative_fraction": self.groups_informative / max(self.groups_sampled, 1),
            "rollout/dynamic_sampling_groups_kept": float(self.groups_kept),
            "rollout/ep_rew_mean_sampled": self.reward_mean_sampled,
        }


def episode_returns(episodes: Episodes) -> torch.Tensor:
    """``[N]`` each episode's env return (its task reward plus any per-step shaping the env gives)."""
    return (episodes.env_rewards * episodes.response_mask).sum(dim=1)


def informative_groups(returns: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[N / G]`` bool: the groups (rows ``[g*G, (g+1)*G)``) whose returns are not all equal."""
    grouped = returns.view(-1, group_size)
    return grouped.max(dim=1).values > grouped.min(dim=1).values


def select_rows(episodes: Episodes, rows: torch.Tensor) -> Episodes:
    """The episodes ``rows`` (a 1-D index tensor) of ``episodes``, every field alike."""
    index = rows.numpy()
    return replace(
        episodes,
        prompt_ids=episodes.prompt_ids[rows], prompt_mask=episodes.prompt_mask[rows],
        response_ids=episodes.response_ids[rows], response_mask=episodes.response_mask[rows],
        env_rewards=episodes.env_rewards[rows], terminated=episodes.terminated[rows],
        completions=[episodes.completions[i] for i in index],
        reward_components={k: v[index] for k, v in episodes.reward_components.items()},
        logp=None if episodes.logp is None else episodes.logp[rows],
        values=None if episodes.values is None else episodes.values[rows],
        agent_mask=None if episodes.agent_mask is None else episodes.agent_mask[rows],
    )


def concatenate(parts: list[Episodes]) -> Episodes:
    """Row-wise concatenation of rollouts of one env (the same ``P`` and ``T`` columns); a reward component
    missing from a part is NaN on its rows."""
    first = parts[0]
    names = list(dict.fromkeys(k for p in parts for k in p.reward_components))

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else torch.cat(values)

    return replace(
        first,
        **{name: cat(name) for name in ("prompt_ids", "prompt_mask", "response_ids", "response_mask", "env_rewards",
                                        "terminated", "logp", "values", "agent_mask")},
        completions=[c for p in parts for c in p.completions],
        reward_components={k: np.concatenate([p.reward_components.get(k, np.full(len(p.completions), np.nan))
                                              for p in parts]) for k in names},
        num_steps=max(p.num_steps for p in parts),
    )


def fill_informative_groups(
    sample: Callable[[], tuple[Episodes, np.ndarray] | None], group_size: int, target_groups: int, max_rollouts: int,
) -> tuple[Episodes, np.ndarray, DynamicSamplingStats] | None:
    """Sample rollouts until ``target_groups`` informative groups are collected or ``max_rollouts`` were sampled.

    Args:
        sample: one rollout: ``(episodes, prompt index of each row)``, or ``None`` when a callback stopped it.
        group_size: ``G``, consecutive rows answering one prompt.
        target_groups: the groups of a full rollout (``num_envs / G``).
        max_rollouts: the most rollouts one iteration samples (DAPO's ``max_num_gen_batches``).

    Returns:
        ``(episodes, prompts, stats)``: the first ``target_groups`` informative groups in sampling order (fewer
        if ``max_rollouts`` ran out; the last rollout as it is if none was informative, so the iteration still
        trains on its KL shaping), or ``None`` if ``sample`` was stopped.
    """
    kept: list[Episodes] = []
    kept_prompts: list[np.ndarray] = []
    kept_groups = groups_sampled = groups_informative = 0
    sampled_returns: list[torch.Tensor] = []
    rollouts = 0
    last = None
    while kept_groups < target_groups and rollouts < max_rollouts:
        drawn = sample()
        if drawn is None:
            return None
        episodes, prompts = drawn
        rollouts += 1
        last = drawn
        returns = episode_returns(episodes)
        sampled_returns.append(returns)
        useful = informative_groups(returns, group_size)
        groups_sampled += useful.numel()
        groups_informative += int(useful.sum())
        groups = useful.nonzero().flatten()[: target_groups - kept_groups]
        if groups.numel():
            rows = (groups[:, None] * group_size + torch.arange(group_size)).flatten()
            kept.append(select_rows(episodes, rows))
            kept_prompts.append(np.asarray(prompts)[rows.numpy()])
            kept_groups += groups.numel()
    if kept:
        episodes, prompts = concatenate(kept), np.concatenate(kept_prompts)
    else:  # nothing informative in max_rollouts rollouts: the last one as it is
        episodes, prompts = last
    stats = DynamicSamplingStats(rollouts, groups_sampled, groups_informative, kept_groups if kept else 0,
                                 float(torch.cat(sampled_returns).mean()))
    return episodes, prompts, stats
