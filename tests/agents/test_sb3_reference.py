"""ReferenceKLReward: stock SB3 PPO's rewards get beta * log pi_ref(a_t | s_t) of a frozen, KV-cached reference."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401  (registers the ids)
from agents.kv_cache import encode_last
from agents.models import build_default_model
from agents.policies import TransformerPolicy
from agents.sb3_reference import ReferenceKLReward, ReferenceScorer

pytestmark = pytest.mark.usefixtures("single_thread")

ENV_ID = "textgym/Arithmetic-v0"
FAVOURED = 7  # the token the hand-built reference prefers


def constant_reference():
    """A tiny model whose next-token distribution is the same in every state, known in closed form:
    logits 0 on every token but FAVOURED, ln(V + 1) there, so Z = (V - 1) + (V + 1) = 2V and
    p(FAVOURED) = (V + 1) / 2V, p(other) = 1 / 2V. (ln_f's weight 0 makes the hidden state its bias, e_0, in
    every position; column 0 of the output embedding then holds the logits.)"""
    model = build_default_model(size="tiny").eval()
    V = model.vocab_size
    transformer = model.lm.transformer
    with torch.no_grad():
        transformer.ln_f.weight.zero_()
        transformer.ln_f.bias.zero_()
        transformer.ln_f.bias[0] = 1.0
        column = torch.zeros(V)
        column[FAVOURED] = math.log(V + 1)
        model.lm_head.weight[:, 0] = column
    return model, V


def test_shaped_reward_is_env_reward_plus_beta_log_pi_ref_hand_computed():
    reference, V = constant_reference()
    beta = 0.5
    envs = ReferenceKLReward(make_vec_env(ENV_ID, n_envs=3, seed=0), reference, beta=beta)
    envs.reset()
    expected_logp = {FAVOURED: math.log((V + 1) / (2 * V)), 11: math.log(1 / (2 * V))}
    for actions in ([FAVOURED, 11, FAVOURED], [11, 11, FAVOURED], [1, 1, 1]):  # 1: EOS, ends every episode
        _, rewards, _, infos = envs.step(np.array(actions))
        for action, reward, info in zip(actions, rewards, infos):
            logp = expected_logp.get(action, math.log(1 / (2 * V)))
            assert info["reference_logprob"] == pytest.approx(logp, abs=1e-5)
            assert reward == pytest.approx(info["env_reward"] + beta * logp, abs=1e-5)


def test_each_action_is_scored_on_the_observation_it_was_taken_in_through_the_cache():
    """A random reference (state-dependent log-probs) over episodes that end and auto-reset: every step's
    log-prob equals an uncached full forward of the observation *before* the step; the cache extends slots."""
    reference = build_default_model(size="tiny", seed=3).eval()
    envs = ReferenceKLReward(make_vec_env(ENV_ID, n_envs=2, seed=0), reference, beta=1.0)
    obs = envs.reset()
    rng = np.random.default_rng(0)
    for _ in range(12):
        actions = rng.integers(2, 300, size=2)
        if rng.random() < 0.3:
            actions[0] = 1  # EOS: slot 0's episode ends, its next observation is a new prompt
        ids, mask = torch.as_tensor(obs["input_ids"]).long(), torch.as_tensor(obs["attention_mask"]).long()
        with torch.no_grad():
            hidden, _, _ = encode_last(reference, ids, mask)
            expected = torch.log_softmax(reference.lm_head(hidden)[:, :4096], -1)[torch.arange(2), torch.as_tensor(actions)]
        obs, _, _, infos = envs.step(actions)
        np.testing.assert_allclose([i["reference_logprob"] for i in infos], expected.numpy(), atol=1e-4)
    stats = envs.scorer.cache.stats
    assert stats["extended"] > 0 and stats["recomputed"] > 0


def test_reference_stays_frozen_and_apart_from_the_policy_while_ppo_learns():
    warm_start = build_default_model(size="tiny", seed=1)
    envs = ReferenceKLReward(make_vec_env(ENV_ID, n_envs=2, seed=0), warm_start, beta=0.1)  # the same object...
    model = PPO(TransformerPolicy, envs, n_steps=32, batch_size=32, n_epochs=1, ent_coef=0.1, seed=0, device="cpu",
                policy_kwargs={"model": warm_start})  # ...as the policy's model
    reference = envs.scorer.model
    assert reference is not model.policy.model
    frozen = {k: v.clone() for k, v in reference.state_dict().items()}
    model.learn(64)
    assert all(torch.equal(frozen[k], v) for k, v in reference.state_dict().items())
    assert not any(p.requires_grad for p in reference.parameters()) and not reference.training
    optimised = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in reference.parameters()}
    assert any(not torch.equal(warm_start.state_dict()[k], v) for k, v in frozen.items())  # the policy did move


def test_bad_arguments_raise_with_the_fix():
    single = gym.make(ENV_ID)
    with pytest.raises(TypeError, match="make_vec_env"):
        ReferenceKLReward(single, build_default_model(size="tiny"))
    with pytest.raises(ValueError, match="beta"):
        ReferenceKLReward(make_vec_env(ENV_ID, n_envs=1), build_default_model(size="tiny"), beta=-1)
    with pytest.raises(ValueError, match="vocabulary"):
        ReferenceScorer(build_default_model(size="tiny"), num_actions=5000)
    with pytest.raises(RuntimeError, match="reset"):
        ReferenceKLReward(make_vec_env(ENV_ID, n_envs=1), build_default_model(size="tiny")).step(np.array([3]))
