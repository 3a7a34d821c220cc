"""The rollout: KV-cached batched sampling, and the teacher-forced pass that replaces per-token scoring."""

import numpy as np
import torch

from agents.models import position_ids_from_mask
from agents.ppo.buffer import layout_to_sequences
from agents.ppo.masking import LaggedMaskPolicy, top_p_mask
from agents.ppo.rollout import Sampler, evaluate_sequences, generate_episodes
from tests.agents.ppo.conftest import EOS, TARGET, ToyVectorEnv, tiny_model


def rollout_with_step_logprobs(model, env, sampler, seed=0):
    """Run a rollout and record, at each step, the cached pass's log-prob of each sampled token."""
    step_logp = []

    def on_step(active_slots, step_locals):
        logp = torch.log_softmax(step_locals["logits"], -1).gather(-1, step_locals["tokens"][:, None]).squeeze(-1)
        step_logp.append(torch.where(torch.as_tensor(step_locals["active"]), logp, torch.zeros_like(logp)))
        return True

    episodes = generate_episodes(model, env, sampler, seed=seed, generator=torch.Generator().manual_seed(seed), on_step=on_step)
    return episodes, torch.stack(step_logp, dim=1)


def teacher_forced(model, episodes, sampler):
    ids = torch.cat([episodes.prompt_ids, episodes.response_ids], 1)
    mask = torch.cat([episodes.prompt_mask, episodes.response_mask], 1).long()
    with torch.no_grad():
        return evaluate_sequences(model, ids, mask, episodes.prompt_ids.shape[1], episodes.response_ids,
                                  episodes.response_mask, sampler)


def test_sequence_logprobs_equal_cached_per_token_logprobs():
    model = tiny_model(0).eval()
    env = ToyVectorEnv(num_envs=6)
    sampler = Sampler(temperature=0.7, top_k=8)
    episodes, cached = rollout_with_step_logprobs(model, env, sampler)
    logp, entropy, values = teacher_forced(model, episodes, sampler)
    T = cached.shape[1]
    assert episodes.response_mask[:, T:].sum() == 0
    torch.testing.assert_close(logp[:, :T], cached, atol=1e-4, rtol=0)
    assert (logp[~episodes.response_mask] == 0).all() and (entropy[episodes.response_mask] > 0).all()
    assert values.shape == logp.shape


def test_logprobs_and_values_kept_while_sampling_equal_the_teacher_forced_pass():
    model = tiny_model(2).eval()
    env = ToyVectorEnv(num_envs=6)
    sampler = Sampler(temperature=0.8, top_k=6)
    episodes = generate_episodes(model, env, sampler, seed=1, generator=torch.Generator().manual_seed(1), record_logprobs=True)
    logp, _, values = teacher_forced(model, episodes, sampler)
    torch.testing.assert_close(episodes.logp, logp, atol=1e-4, rtol=0)
    torch.testing.assert_close(episodes.values, values, atol=1e-4, rtol=0)
    assert (episodes.logp[~episodes.response_mask] == 0).all() and (episodes.logp[episodes.response_mask] < 0).any()
    plain = generate_episodes(model, env, sampler, seed=1, generator=torch.Generator().manual_seed(1))
    assert plain.logp is None and torch.equal(plain.response_ids, episodes.response_ids)  # same tokens drawn


def test_sequence_pass_equals_per_transition_forwards():
    """RL4LMs' way: one uncached forward per transition (prefix). Same log-probs and values, n times the cost."""
    model = tiny_model(1).eval()
    env = ToyVectorEnv(num_envs=4)
    sampler = Sampler()
    episodes, _ = rollout_with_step_logprobs(model, env, sampler, seed=3)
    logp, _, values = teacher_forced(model, episodes, sampler)
    P = episodes.prompt_ids.shape[1]
    for t in range(episodes.response_ids.shape[1]):
        ids = torch.cat([episodes.prompt_ids, episodes.response_ids[:, :t]], 1)
        mask = torch.cat([episodes.prompt_mask, episodes.response_mask[:, :t]], 1).long()
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
        # The prefix's last real token sits at column P - 1 + t (responses are contiguous from column P).
        step_logp = torch.log_softmax(model.lm_head(out.hidden[:, P - 1 + t]).float(), -1)
        step_logp = step_logp.gather(-1, episodes.response_ids[:, t : t + 1].long()).squeeze(-1)
        valid = episodes.response_mask[:, t]
        torch.testing.assert_close(logp[valid, t], step_logp[valid], atol=1e-4, rtol=0)
        torch.testing.assert_close(values[valid, t], out.values[valid, P - 1 + t].float(), atol=1e-4, rtol=0)


def test_rollout_layout_and_env_contract():
    env = ToyVectorEnv(num_envs=5)
    model = tiny_model(2).eval()
    episodes = generate_episodes(model, env, Sampler(), prompt_indices=np.array([0, 0, 1, 1, 2]), seed=0,
                                 generator=torch.Generator().manual_seed(0))
    assert env.reset_calls[-1]["prompt_indices"].tolist() == [0, 0, 1, 1, 2]
    lengths = episodes.response_mask.sum(1)
    assert ((lengths >= 1) & (lengths <= ToyVectorEnv.T)).all()
    # Rewards land on the last token; EOS-terminated rows end with EOS.
    last = lengths - 1
    rows = torch.arange(5)
    assert (episodes.env_rewards.sum(1) == episodes.env_rewards[rows, last]).all()
    assert (episodes.terminated == (episodes.response_ids[rows, last] == EOS)).all()
    ids = torch.cat([episodes.prompt_ids, episodes.response_ids], 1)
    assert torch.equal(ids, torch.as_tensor(env.ids))  # the rollout's sequences are the env's final observation


def test_deterministic_rollout_is_greedy_and_action_mask_is_respected():
    env = ToyVectorEnv(num_envs=4, allowed=[TARGET, 7])
    model = tiny_model(3).eval()
    allowed = torch.zeros(16, dtype=torch.bool)
    allowed[[TARGET, 7, EOS]] = True
    sampler = Sampler(allowed_tokens=allowed)
    ep = generate_episodes(model, env, sampler, seed=0, generator=torch.Generator().manual_seed(0))
    assert set(ep.response_ids[ep.response_mask].tolist()) <= {TARGET, 7, EOS}
    logp, entropy, _ = teacher_forced(model, ep, sampler)
    assert (entropy[ep.response_mask] <= np.log(3) + 1e-5).all()  # 3 allowed tokens at most
    a = generate_episodes(model, env, Sampler(), seed=0, deterministic=True)
    b = generate_episodes(model, env, Sampler(), seed=0, deterministic=True)
    assert torch.equal(a.response_ids, b.response_ids)


def test_nlpo_mask_keeps_nucleus_and_min_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert top_p_mask(logits, 0.7).tolist() == [[True, True, False, False]]
    assert top_p_mask(logits, 0.7, min_tokens=3).tolist() == [[True, True, True, False]]
    assert top_p_mask(logits, 1.0).all()
    model = tiny_model(4).eval()
    nlpo = LaggedMaskPolicy(model, top_p=0.3, min_tokens=2, update_interval=2)
    sampler = Sampler(nlpo=nlpo)
    env = ToyVectorEnv(num_envs=4)
    episodes, cached = rollout_with_step_logprobs(model, env, sampler)
    logp, _, _ = teacher_forced(model, episodes, sampler)
    torch.testing.assert_close(logp[:, : cached.shape[1]], cached, atol=1e-4, rtol=0)
    assert nlpo.maybe_refresh(model, 2) and not nlpo.maybe_refresh(model, 3)
