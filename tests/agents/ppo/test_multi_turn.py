"""TokenPPO on multi-turn envs: the env's tokens are prefilled into the KV cache as context, and are never actions.

The task ends a turn at every token whose text holds an "e" (so a random tiny model ends turns often), answers
with a few tokens of its own and ends the episode after three turns: most rollouts hold env text between the
policy's tokens, which is where a wrong column, a stale cache or a loss over the env's tokens would show.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from agents.models import build_default_model
from agents.ppo import TokenPPO
from agents.ppo.advantages import compute_gae
from agents.ppo.rollout import evaluate_sequences
from textgym.envs.multi_turn import MultiTurnTask, Turn
from textgym.envs.vector_env import TextGenerationVectorEnv

PROMPTS = [{"prompt": "Agent:"}, {"prompt": "Start. Agent:"}, {"prompt": "Hello there. Agent:"}]


class Chatty(MultiTurnTask):
    """Three turns; each costs nothing but pays 0.1 per "a" the agent wrote; the env answers " ok. Agent:"."""

    stop_sequences = ("e",)

    def start(self, record):
        return {"turns": 0}

    def turn(self, state, agent_text):
        state["turns"] += 1
        reward = 0.1 * agent_text.count("a")
        if state["turns"] == 3:
            return Turn(reward=reward, done=True)
        return Turn(env_text=" ok. Agent:", reward=reward)


def make_env(num_envs=8, max_new_tokens=24):
    return TextGenerationVectorEnv(num_envs=num_envs, prompts=PROMPTS, multi_turn=Chatty(), max_new_tokens=max_new_tokens,
                                   autoreset_mode=AutoresetMode.DISABLED)


def make_algo(env=None, **kwargs):
    kwargs = {"learning_rate": 1e-3, "n_epochs": 1, "batch_size": 4, "seed": 0, "device": "cpu", **kwargs}
    return TokenPPO(build_default_model(size="tiny", seed=0), env or make_env(), **kwargs)


def test_the_agent_mask_is_the_envs_and_rewards_sit_on_the_policys_tokens():
    env = make_env()
    algo = make_algo(env)
    algo.collect_rollout()
    buf = algo.buffer
    P = env.max_prompt_tokens
    env_agent = torch.from_numpy(env._batch.agent_mask[:, P:].astype(bool))
    assert buf.agent_mask is not None and torch.equal(buf.agent_mask, env_agent)
    assert (buf.response_mask & ~buf.agent_mask).any()  # the env wrote text between the policy's tokens
    assert not (buf.env_rewards[~buf.agent_mask] != 0).any()
    assert torch.equal(buf.loss_mask, buf.agent_mask)  # the losses run over the policy's tokens only
    assert (buf.advantages[~buf.agent_mask] == 0).all() and (buf.token_rewards[~buf.agent_mask] == 0).all()
    # num_timesteps counts the policy's tokens (env transitions), not the env's
    assert algo.num_timesteps == buf.num_tokens == int(buf.agent_mask.sum())


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_rollout_logprobs_and_values_match_teacher_forcing_across_the_envs_tokens(kl_coef):
    """The rollout feeds the env's tokens through the KV cache; a wrong position, mask or cache would make the
    log-probs it kept differ from one teacher-forced pass over the whole conversation."""
    algo = make_algo(old_logprobs="rollout", kl_coef=kl_coef)
    algo.collect_rollout()
    buf = algo.buffer
    batch = buf.get(torch.arange(buf.num_sequences))
    logp, _, values = evaluate_sequences(algo.policy, batch.input_ids, batch.attention_mask, batch.prompt_length,
                                         batch.response_ids, batch.response_mask, algo.sampler, with_entropy=False)
    agent = batch.loss_mask
    assert (batch.response_mask & ~agent).any()
    torch.testing.assert_close(logp[agent], batch.old_logp[agent], atol=1e-4, rtol=0)
    torch.testing.assert_close(values[agent], batch.values[agent], atol=1e-4, rtol=0)
    if kl_coef:  # the reference is scored over the same conversation: at the start it is the policy
        torch.testing.assert_close(batch.ref_logp[agent], batch.old_logp[agent], atol=1e-4, rtol=0)


def update_gradient(algo, buf):
    """The policy's gradient from the update's forward / backward over all of ``buf`` as one minibatch."""
    from agents.ppo.update import STAT_KEYS, _accumulate_gradients, minibatches

    algo.optimizer.zero_grad(set_to_none=True)
    minibatch = next(minibatches(buf, buf.num_sequences, torch.Generator().manual_seed(0), algo.dist, 1))
    problem, _, _ = _accumulate_gradients(minibatch, {k: [] for k in STAT_KEYS}, algo.config, algo.train_policy,
                                          algo.sampler, algo.nonfinite_guard, algo.dist, algo._autocast)
    assert problem is None
    return [p.grad.clone() for p in algo.policy.parameters() if p.grad is not None]


def test_the_envs_tokens_get_no_gradient():
    """Whatever the buffer holds at the env's tokens (advantages, old log-probs, values, returns), the update's
    gradient is the same: they are context, not actions. The same junk on the policy's tokens changes it."""
    algo = make_algo(ent_coef=0.01)
    algo.collect_rollout()
    buf = algo.buffer
    env_tokens = buf.response_mask & ~buf.agent_mask
    assert env_tokens.any()
    clean = update_gradient(algo, buf)
    junk = dataclasses.replace(buf, advantages=buf.advantages.masked_fill(env_tokens, 1e3),
                               old_logp=buf.old_logp.masked_fill(env_tokens, -30.0),
                               values=buf.values.masked_fill(env_tokens, 50.0),
                               returns=buf.returns.masked_fill(env_tokens, -50.0))
    for g, h in zip(clean, update_gradient(algo, junk)):
        assert torch.equal(g, h)
    on_actions = dataclasses.replace(buf, advantages=buf.advantages.masked_fill(buf.agent_mask, 1e3))
    assert not all(torch.equal(g, h) for g, h in zip(clean, update_gradient(algo, on_actions)))


def test_gae_steps_over_the_envs_tokens():
    # Row: agent token, env token, agent token. The env's column holds junk that must not leak.
    rewards = torch.tensor([[0.5, 9.0, 1.0]])
    values = torch.tensor([[0.2, 9.0, 0.4]])
    mask = torch.tensor([[True, False, True]])
    adv, ret = compute_gae(rewards, values, mask, gamma=0.9, gae_lambda=0.5)
    # A_2 = 1.0 - 0.4 = 0.6; A_0 = 0.5 + 0.9 * 0.4 - 0.2 + 0.9 * 0.5 * 0.6 = 0.93 (s_1 is the state before token 2)
    torch.testing.assert_close(adv, torch.tensor([[0.93, 0.0, 0.6]]))
    torch.testing.assert_close(ret, torch.tensor([[1.13, 0.0, 1.0]]))
    prefix = compute_gae(torch.tensor([[0.5, 1.0]]), torch.tensor([[0.2, 0.4]]), torch.tensor([[True, True]]), 0.9, 0.5)
    torch.testing.assert_close(adv[:, [0, 2]], prefix[0])


@pytest.mark.parametrize("env_id", ["textgym/Calculator-v0", "textgym/GuessNumber-v0", "textgym/MultiTurnDialogue-v0"])
def test_the_built_in_multi_turn_ids_train(env_id):
    algo = TokenPPO(build_default_model(size="tiny", seed=0), env_id, num_envs=4, batch_size=4, n_epochs=1, seed=0,
                    device="cpu")
    algo.learn(total_timesteps=64)
    metrics = algo.last_metrics
    assert np.isfinite(metrics["train/loss"]) and np.isfinite(metrics["rollout/ep_rew_mean"])


def test_single_turn_rollouts_keep_no_agent_mask():
    from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model

    algo = TokenPPO(tiny_model(0), ToyVectorEnv(num_envs=4), seed=0, device="cpu")
    algo.collect_rollout()
    assert algo.buffer.agent_mask is None and torch.equal(algo.buffer.loss_mask, algo.buffer.response_mask)


def test_token_ppo_learns_a_multi_turn_task():
    """From scratch, on the three-turn task above (0.1 per "a" the agent writes in a turn): a random policy scores
    about 0.25 per conversation; RLOO over 4 conversations per prompt more than doubles it in 30 iterations. Slots
    finish at different steps, some at the token budget while others still get the env's text (the rollout's
    finished-slot path)."""
    torch.set_num_threads(2)
    algo = make_algo(make_env(num_envs=32), learning_rate=3e-3, n_epochs=2, batch_size=16, kl_coef=0.0,
                     baseline="rloo", group_size=4)
    evaluation = make_env(num_envs=32)
    start = algo.evaluate(evaluation, num_episodes=64, deterministic=False)["reward_mean"]
    for _ in range(30):
        algo.collect_rollout()
        algo.train()
    end = algo.evaluate(evaluation, num_episodes=64, deterministic=False)["reward_mean"]
    assert start < 0.4 and end > 2 * start and end > 0.6, (start, end)
