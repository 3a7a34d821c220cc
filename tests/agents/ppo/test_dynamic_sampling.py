"""DAPO's dynamic sampling: which groups it keeps, how it refills, and that every sampled token is counted."""

import numpy as np
import pytest
import torch

from agents.ppo import TokenPPO
from agents.ppo.dynamic_sampling import concatenate, fill_informative_groups, informative_groups, select_rows
from agents.ppo.rollout import Episodes
from tests.agents.ppo.conftest import TARGET, ToyVectorEnv, tiny_model


def fake_episodes(returns, start=0):
    """Episodes of one token each whose rewards are ``returns``; response ids number the rows from ``start``."""
    n = len(returns)
    rewards = torch.zeros(n, 2)
    rewards[:, 0] = torch.tensor(returns, dtype=torch.float32)
    return Episodes(
        prompt_ids=torch.ones(n, 2, dtype=torch.int32), prompt_mask=torch.ones(n, 2, dtype=torch.bool),
        response_ids=torch.arange(start, start + n, dtype=torch.int32)[:, None].repeat(1, 2),
        response_mask=torch.tensor([[True, False]] * n), env_rewards=rewards, terminated=torch.ones(n, dtype=torch.bool),
        completions=[f"c{start + i}" for i in range(n)], reward_components={"score": np.asarray(returns, float)},
        num_steps=1, logp=torch.zeros(n, 2), values=None,
    )


def sampler_of(*rollouts):
    """A ``sample()`` that hands out the given rollouts' returns in turn (prompts: the row numbers)."""
    calls = iter(range(len(rollouts)))

    def sample():
        i = next(calls)
        start = 100 * i
        return fake_episodes(rollouts[i], start), np.arange(start, start + len(rollouts[i]))
    return sample


def test_informative_groups_are_those_whose_returns_differ():
    returns = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.5])
    assert informative_groups(returns, 2).tolist() == [False, True, False, False]


def test_select_and_concatenate_keep_every_field_row_for_row():
    a, b = fake_episodes([0.0, 1.0], 0), fake_episodes([2.0, 3.0, 4.0], 10)
    b.reward_components["other"] = np.array([7.0, 8.0, 9.0])
    both = concatenate([a, select_rows(b, torch.tensor([2, 0]))])
    assert both.response_ids[:, 0].tolist() == [0, 1, 12, 10]
    assert both.completions == ["c0", "c1", "c12", "c10"]
    assert both.env_rewards[:, 0].tolist() == [0.0, 1.0, 4.0, 2.0] and both.logp.shape == (4, 2)
    np.testing.assert_array_equal(both.reward_components["score"], [0.0, 1.0, 4.0, 2.0])
    np.testing.assert_array_equal(both.reward_components["other"], [np.nan, np.nan, 9.0, 7.0])


def test_select_and_concatenate_keep_a_multi_turn_agent_mask_row_for_row():
    from dataclasses import replace

    a = replace(fake_episodes([0.0, 1.0], 0), agent_mask=torch.tensor([[True, False], [False, False]]))
    b = replace(fake_episodes([2.0, 3.0, 4.0], 10), agent_mask=torch.tensor([[True, True], [False, True], [True, False]]))
    both = concatenate([a, select_rows(b, torch.tensor([2, 0]))])
    assert both.agent_mask.tolist() == [[True, False], [False, False], [True, False], [True, True]]
    assert concatenate([fake_episodes([0.0], 0), fake_episodes([1.0], 5)]).agent_mask is None  # single-turn


def test_refill_keeps_the_first_informative_groups_in_sampling_order():
    # G = 2, target 2 groups. Rollout 1: only its 2nd group differs; rollout 2: both do, the first one fills.
    sample = sampler_of([1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0])
    episodes, prompts, stats = fill_informative_groups(sample, group_size=2, target_groups=2, max_rollouts=3)
    assert prompts.tolist() == [2, 3, 100, 101] and episodes.completions == ["c2", "c3", "c100", "c101"]
    assert (stats.rollouts, stats.groups_sampled, stats.groups_informative, stats.groups_kept) == (2, 4, 3, 2)
    assert stats.reward_mean_sampled == pytest.approx(5 / 8)  # over all 8 sampled episodes, kept or not


def test_refill_stops_at_max_rollouts_and_falls_back_to_the_last_rollout():
    short = fill_informative_groups(sampler_of([1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]), 2, 2, max_rollouts=2)
    assert short[1].tolist() == [2, 3] and short[2].groups_kept == 1  # trains on the one group it found
    none = fill_informative_groups(sampler_of([1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]), 2, 2, max_rollouts=2)
    assert none[1].tolist() == [100, 101, 102, 103] and none[2].groups_kept == 0
    assert fill_informative_groups(lambda: None, 2, 2, 3) is None  # a callback stopped the rollout


def first_token_is_target(prompts, completions, **fields):
    """1 if the completion starts with TARGET: an untrained policy's group of 4 scores all 0 ~77% of the time."""
    return [float(c.split()[:1] == [str(TARGET)]) for c in completions]


def test_token_ppo_trains_on_informative_groups_only_and_counts_every_sampled_token():
    env = ToyVectorEnv(num_envs=8, reward=first_token_is_target)
    algo = TokenPPO(tiny_model(0), env, baseline="grpo", group_size=4, batch_size=4, n_epochs=1, seed=0,
                    dynamic_sampling=True, dynamic_sampling_max_rollouts=6)
    algo.collect_rollout()
    stats = algo.rollout.dynamic_sampling
    assert stats.rollouts == len(env.reset_calls) and stats.rollouts > 1  # it had to refill
    buf = algo.buffer
    assert buf.num_sequences == 4 * stats.groups_kept and stats.groups_kept >= 1
    assert informative_groups(buf.scores, 4).all()
    # every generated token of every rollout, kept or dropped, is in num_timesteps
    assert algo.num_timesteps > buf.num_tokens
    metrics = algo.train()
    assert metrics["rollout/dynamic_sampling_rollouts"] == stats.rollouts
    assert metrics["rollout/dynamic_sampling_informative_fraction"] == pytest.approx(
        stats.groups_informative / stats.groups_sampled)


def test_dynamic_sampling_counts_tokens_like_the_env_does():
    steps = []

    class Counting(ToyVectorEnv):
        def step(self, actions):
            steps.append(int((~(self.term | self.trunc)).sum()))  # slots that take a token this step
            return super().step(actions)

    algo = TokenPPO(tiny_model(0), Counting(num_envs=8, reward=first_token_is_target), baseline="grpo", group_size=4,
                    batch_size=4, seed=0, dynamic_sampling=True)
    algo.collect_rollout()
    assert algo.num_timesteps == sum(steps)


def test_dynamic_sampling_needs_groups():
    with pytest.raises(ValueError, match="dynamic_sampling drops the prompt groups.*set group_size >= 2"):
        TokenPPO(tiny_model(0), ToyVectorEnv(num_envs=8), dynamic_sampling=True)
    with pytest.raises(ValueError, match="dynamic_sampling_max_rollouts must be a positive integer, got 0"):
        TokenPPO(tiny_model(0), ToyVectorEnv(num_envs=8), baseline="grpo", group_size=4, dynamic_sampling=True,
                 dynamic_sampling_max_rollouts=0)
