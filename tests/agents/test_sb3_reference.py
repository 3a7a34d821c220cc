"""ReferenceKLReward: stock SB3 PPO's rewards get -beta (log pi - log pi_ref)(a_t | s_t), pi_ref frozen and KV-cached."""

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
from agents.sb3_reference import AttachPolicy, ReferenceKLReward, ReferenceScorer

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


def uniform_policy(envs):
    """A TransformerPolicy whose distribution is uniform over the V actions in every state: log pi = -ln V."""
    model, V = constant_reference()
    with torch.no_grad():
        model.lm_head.weight[:, 0] = 0.0
    return TransformerPolicy(envs.observation_space, envs.action_space, lambda _: 1e-4, model=model), V


def test_shaped_reward_is_env_reward_minus_beta_k1_hand_computed():
    reference, V = constant_reference()
    beta = 0.5
    envs = ReferenceKLReward(make_vec_env(ENV_ID, n_envs=3, seed=0), reference, beta=beta)
    envs.attach(uniform_policy(envs)[0])
    envs.reset()
    # log pi_ref - log pi: ln((V + 1) / 2V) + ln V = ln((V + 1) / 2) on FAVOURED, ln(1 / 2V) + ln V = -ln 2 elsewhere
    for actions in ([FAVOURED, 11, FAVOURED], [11, 11, FAVOURED], [1, 1, 1]):  # 1: EOS, ends every episode
        _, rewards, _, infos = envs.step(np.array(actions))
        for action, reward, info in zip(actions, rewards, infos):
            ref = math.log((V + 1) / (2 * V)) if action == FAVOURED else math.log(1 / (2 * V))
            assert info["reference_logprob"] == pytest.approx(ref, abs=1e-5)
            assert info["policy_logprob"] == pytest.approx(-math.log(V), abs=1e-5)
            log_ratio = math.log((V + 1) / 2) if action == FAVOURED else -math.log(2)
            assert reward == pytest.approx(info["env_reward"] + beta * log_ratio, abs=1e-5)


def test_each_action_is_scored_on_the_observation_it_was_taken_in_through_the_cache():
    """A random reference (state-dependent log-probs) over episodes that end and auto-reset: every step's
    log-prob equals an uncached full forward of the observation *before* the step; the cache extends slots."""
    reference = build_default_model(size="tiny", seed=3).eval()
    envs = ReferenceKLReward(make_vec_env(ENV_ID, n_envs=2, seed=0), reference, beta=1.0)
    envs.attach(uniform_policy(envs)[0])
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
    model = PPO(TransformerPolicy, envs, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"model": warm_start})  # ...as the policy's model
    reference = envs.scorer.model
    assert reference is not model.policy.model
    frozen = {k: v.clone() for k, v in reference.state_dict().items()}
    model.learn(64, callback=AttachPolicy())
    assert envs.policy is model.policy
    # The policy moved away from the reference, so the penalty is no longer zero on every token.
    obs = envs.reset()
    _, _, _, infos = envs.step(model.predict(obs)[0])
    assert any(abs(i["policy_logprob"] - i["reference_logprob"]) > 1e-6 for i in infos)
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
    unattached = ReferenceKLReward(make_vec_env(ENV_ID, n_envs=1), build_default_model(size="tiny"))
    unattached.reset()
    with pytest.raises(RuntimeError, match="attach"):
        unattached.step(np.array([3]))
    with pytest.raises(ValueError, match="no ReferenceKLReward"):
        PPO(TransformerPolicy, make_vec_env(ENV_ID, n_envs=1), n_steps=8, batch_size=8, device="cpu",
            policy_kwargs={"size": "tiny"}).learn(8, callback=AttachPolicy())
