"""agents.evaluation on a multi-turn env: every figure but the reward is the agent's alone (the env's text is
context, neither scored as the policy's text nor counted in its perplexity or KL)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.evaluation import _reference_scores, agent_turns, agent_turns_text, evaluate_policy_text
from agents.models import build_default_model
from tests.agents.ppo.test_multi_turn import make_algo, make_env

ENV_TEXT = " ok. Agent:"  # what the test task appends after each agent turn


@pytest.fixture(scope="module")
def episodes():
    env = make_env()
    algo = make_algo(env)
    ep = algo.generate(env, np.arange(env.num_envs) % len(env.prompt_source))
    assert ep.agent_mask is not None and (ep.response_mask & ~ep.agent_mask).any()  # env text between turns
    return algo, env, ep


def test_agent_turns_text_leaves_the_envs_text_out(episodes):
    _, env, ep = episodes
    texts = agent_turns_text(ep, env.tokenizer)
    with_env_text = [i for i in range(len(texts)) if (ep.response_mask[i] & ~ep.agent_mask[i]).any()]
    assert with_env_text
    for i in with_env_text:
        assert ENV_TEXT in ep.completions[i] and ENV_TEXT not in texts[i]
        assert texts[i].count("\n") >= 1  # two agent turns at least, one line each
        for turn in texts[i].split("\n"):
            assert turn.strip() in ep.completions[i]
    # one agent turn per run of policy tokens: as many as the env's text breaks the response into, plus one
    for turns, sampled in zip(agent_turns(ep), (ep.response_mask & ep.agent_mask).tolist()):
        starts = sum(1 for t, mine in enumerate(sampled) if mine and (t == 0 or not sampled[t - 1]))
        assert len(turns) == starts


def test_perplexity_and_kl_to_the_reference_count_the_policys_tokens_only(episodes):
    algo, env, ep = episodes
    reference = build_default_model(size="tiny", seed=1)  # another model: the log-ratio is not 0
    keep = env.num_envs
    agent_logp, agent_ratio = _reference_scores(algo.policy, reference, ep, keep)
    # The same episodes with every response token counted as the policy's: the env's tokens add log-probs.
    all_logp, all_ratio = _reference_scores(algo.policy, reference, dataclasses.replace(ep, agent_mask=None), keep)
    assert agent_logp > all_logp  # each env token's log-prob (< 0) is left out
    mixed = (ep.response_mask & ~ep.agent_mask).any(1)
    assert not np.allclose(agent_ratio[mixed].numpy(), all_ratio[mixed].numpy())
    np.testing.assert_allclose(agent_ratio[~mixed].numpy(), all_ratio[~mixed].numpy(), rtol=1e-5, atol=1e-6)


def test_evaluate_policy_text_reads_the_agents_turns(episodes):
    algo, env, _ = episodes
    result = evaluate_policy_text(algo, env, env.num_envs, reference=build_default_model(size="tiny", seed=1),
                                  keep_samples=True)
    assert all(ENV_TEXT not in s["completion"] for s in result["samples"])
    # the test task ends after 3 turns; the env's text separates them
    assert 1 < result["agent_turns_mean"] <= 3
    assert np.isfinite(result["perplexity_under_reference"]) and np.isfinite(result["kl_to_reference"])
