"""Every TokenPPO option, each against what it must do."""

import numpy as np
import pytest
import torch

from agents.ppo import TokenPPO
from agents.ppo.advantages import group_advantages
from agents.ppo.kl import kl_estimate
from agents.ppo.rollout import Sampler, token_logprobs
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model


def make(**kwargs):
    kwargs = {"learning_rate": 1e-3, "n_epochs": 2, "batch_size": 4, "seed": 0, **kwargs}
    return TokenPPO(tiny_model(0), kwargs.pop("env", None) or ToyVectorEnv(num_envs=8), **kwargs)


def one_iteration(algo):
    algo.collect_rollout()
    return algo.train()


@pytest.mark.parametrize("baseline", ["grpo", "rloo"])
def test_group_baselines(baseline):
    env = ToyVectorEnv(num_envs=8)
    algo = make(env=env, baseline=baseline, group_size=4, normalize_advantage=False, kl_coef=0.1)
    metrics = one_iteration(algo)
    prompts = env.reset_calls[-1]["prompt_indices"]
    assert (prompts[:4] == prompts[0]).all() and (prompts[4:] == prompts[4]).all()
    buf = algo.buffer
    expected = group_advantages(buf.token_rewards.sum(1), 4, baseline)
    torch.testing.assert_close(buf.advantages, expected[:, None] * buf.response_mask, atol=1e-5, rtol=0)
    assert (buf.values == 0).all() and metrics["train/value_loss"] == 0 and "train/explained_variance" not in metrics


@pytest.mark.parametrize("baseline", ["grpo", "rloo"])
def test_scale_rewards_none_gives_the_centred_returns(baseline):
    """Dr. GRPO: no std division (and no whitening) leaves each token with its group-centred return."""
    algo = make(env=ToyVectorEnv(num_envs=8), baseline=baseline, group_size=4, scale_rewards="none",
                normalize_advantage=False)
    one_iteration(algo)
    returns = algo.buffer.token_rewards.sum(1).view(2, 4)
    centred = returns - returns.mean(dim=1, keepdim=True)
    if baseline == "rloo":
        centred = centred * 4 / 3  # R_i minus the mean of the other three
    assert centred.abs().max() > 0  # the rollout's returns differ within a group: a division would show
    torch.testing.assert_close(algo.buffer.advantages, centred.reshape(-1, 1) * algo.buffer.response_mask, atol=1e-5, rtol=0)


def test_per_token_rewards_kl_shaping_and_missing_eos_penalty():
    algo = make(kl_coef=0.2, kl_estimator="k3", missing_eos_penalty=1.5, learning_rate=5e-2, n_epochs=1)
    one_iteration(algo)  # move the policy away from the reference
    for _ in range(10):  # until some episode misses EOS, so that the penalty is exercised
        algo.collect_rollout()
        if not algo.buffer.terminated.all():
            break
    buf = algo.buffer
    kl = kl_estimate(buf.old_logp, buf.ref_logp, "k3") * buf.response_mask
    assert kl.sum() > 0 and (kl >= 0).all()
    expected = buf.env_rewards * buf.response_mask - 0.2 * kl
    rows, last = torch.arange(buf.num_sequences), buf.response_lengths - 1
    expected[rows, last] -= torch.where(buf.terminated, 0.0, 1.5)
    torch.testing.assert_close(buf.token_rewards, expected)
    assert not buf.terminated.all()  # the penalty was exercised


def test_overlong_filter_trains_on_terminated_episodes_only():
    """With EOS masked out every episode is truncated: the filter leaves nothing to train on, so the weights stay
    exactly as they were; without the filter the same rollout moves them."""
    no_eos = [t for t in range(16) if t != 1]
    filtered = make(env=ToyVectorEnv(num_envs=8, allowed=no_eos), overlong_filter=True)
    before = [p.detach().clone() for p in filtered.policy.parameters()]
    one_iteration(filtered)
    assert not filtered.buffer.terminated.any() and not filtered.buffer.loss_mask.any()
    assert all(torch.equal(a, b) for a, b in zip(before, filtered.policy.parameters()))
    unfiltered = make(env=ToyVectorEnv(num_envs=8, allowed=no_eos))
    one_iteration(unfiltered)
    assert not all(torch.equal(a, b) for a, b in zip(before, unfiltered.policy.parameters()))


def test_reference_starts_equal_and_kl_coef_zero_drops_it():
    algo = make(kl_coef=0.05)
    algo.collect_rollout()
    torch.testing.assert_close(algo.buffer.ref_logp, algo.buffer.old_logp)
    free = make(kl_coef=0.0)
    assert free.ref_policy is None and not free.uses_reference
    one_iteration(free)
    assert torch.equal(free.buffer.ref_logp, free.buffer.old_logp)


def test_adaptive_kl_controller_moves_beta_by_rl4lms_rule():
    algo = make(kl_coef=0.1, kl_target=0.01, learning_rate=5e-2)
    one_iteration(algo)
    metrics = one_iteration(algo)
    kl = metrics["train/kl"]
    assert kl > 0
    error = min(max((kl - 0.01) / 0.01, -0.2), 0.2)
    assert algo.kl_controller.value == pytest.approx(metrics["train/kl_coef"] * (1 + 0.1 * error))
    assert algo.kl_controller.value > metrics["train/kl_coef"]  # KL above target: the penalty grew


def test_target_kl_early_stop():
    metrics = one_iteration(make(target_kl=1e-6, learning_rate=1e-2))
    assert metrics["train/early_stop"] == 1.0
    assert one_iteration(make())["train/early_stop"] == 0.0


def test_gradient_accumulation_gives_the_same_update():
    a, b = make(batch_size=8, n_epochs=1), make(batch_size=8, n_epochs=1, gradient_accumulation_steps=4)
    one_iteration(a)
    one_iteration(b)
    assert torch.equal(a.buffer.response_ids, b.buffer.response_ids)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_and_bf16_request_on_cpu():
    plain = one_iteration(make())
    with pytest.warns(UserWarning, match="bf16"):
        algo = make(gradient_checkpointing=True, bf16=True)
    assert not algo.use_bf16
    checkpointed = one_iteration(algo)
    for key in ("train/policy_gradient_loss", "train/value_loss", "train/approx_kl"):
        assert checkpointed[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-6)


def test_chunked_logprobs_match_unchunked_with_gradients():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 40, bias=False)
    tokens = torch.randint(0, 40, (13,))
    results = []
    for chunk in (4, 1024):
        h = torch.randn(13, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
        logp, ent = token_logprobs(h, tokens, head, Sampler(temperature=0.9, chunk_size=chunk))
        (logp.sum() + ent.sum()).backward()
        results.append((logp.detach(), ent.detach(), h.grad))
    for x, y in zip(*results):
        torch.testing.assert_close(x, y)
    full = torch.log_softmax(head(h.detach()) / 0.9, -1).gather(-1, tokens[:, None]).squeeze(-1)
    torch.testing.assert_close(results[1][0], full)


def test_nlpo_masking_trains_and_refreshes_lagged_policy():
    algo = make(nlpo_top_p=0.5, nlpo_min_tokens=2, nlpo_update_interval=2, learning_rate=1e-2)
    one_iteration(algo)
    changed = any(not torch.equal(p, q) for p, q in zip(algo.policy.parameters(), algo.nlpo.model.parameters()))
    assert changed  # not refreshed after iteration 1
    one_iteration(algo)
    for p, q in zip(algo.policy.parameters(), algo.nlpo.model.parameters()):
        assert torch.equal(p, q)  # refreshed after iteration 2
    # Every sampled token was inside the lagged policy's nucleus: at most a handful of tokens per step.
    assert algo.buffer.response_mask.any()


def test_lora_trains_adapters_and_uses_disabled_adapters_as_reference(tmp_path):
    algo = make(lora={"r": 4, "target_modules": "all-linear"}, learning_rate=5e-2, kl_coef=0.1)
    assert algo.ref_policy is None
    trainable = [n for n, p in algo.policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "value" in n for n in trainable)
    algo.collect_rollout()
    torch.testing.assert_close(algo.buffer.ref_logp, algo.buffer.old_logp)  # LoRA B starts at 0
    algo.train()
    one_iteration(algo)
    buf = algo.buffer
    assert (buf.ref_logp - buf.old_logp).abs().max() > 1e-4
    # The reference is the untouched base model.
    from agents.ppo.rollout import evaluate_sequences

    base = tiny_model(0).eval()
    batch = buf.get(torch.arange(buf.num_sequences))
    with torch.no_grad():
        base_logp = evaluate_sequences(base, batch.input_ids, batch.attention_mask, batch.prompt_length,
                                       batch.response_ids, batch.response_mask, algo.sampler)[0]
    torch.testing.assert_close(batch.ref_logp, base_logp, atol=1e-4, rtol=0)
    algo.save(str(tmp_path / "lora"))
    loaded = TokenPPO.load(str(tmp_path / "lora"), env=ToyVectorEnv(num_envs=8))
    obs, _ = algo.env.reset(seed=2)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], algo.predict(obs, deterministic=True)[0])


def test_masked_vocabulary_gives_finite_gradients():
    """-inf logits of masked tokens must not turn the entropy's gradient into nan (0 * -inf)."""
    head = torch.nn.Linear(8, 10, bias=False)
    allowed = torch.zeros(10, dtype=torch.bool)
    allowed[[2, 5, 7]] = True
    h = torch.randn(6, 8, requires_grad=True)
    logp, ent = token_logprobs(h, torch.tensor([2, 5, 7, 2, 5, 7]), head, Sampler(allowed_tokens=allowed, top_k=2))
    (logp.sum() - ent.sum()).backward()
    assert torch.isfinite(h.grad).all() and torch.isfinite(head.weight.grad).all()
    assert (ent <= np.log(2) + 1e-6).all()


def test_truncated_sampling_keeps_reference_kl_finite():
    """top-k sampling: a token outside the *reference's* top-k must not give log pi_ref = -inf."""
    algo = make(top_k=2, kl_coef=0.1, learning_rate=5e-2)
    for _ in range(3):
        metrics = one_iteration(algo)
    buf = algo.buffer
    assert torch.isfinite(buf.ref_logp).all() and torch.isfinite(buf.token_rewards).all()
    assert np.isfinite(metrics["train/kl"]) and metrics["train/kl"] > 0
    # The reference is scored untruncated: its log-probs are those of the plain temperature-1 softmax.
    assert algo.ref_sampler.top_k == 0 and algo.ref_sampler.nlpo is None


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_old_logprobs_kept_while_sampling_match_the_recomputed_pass(kl_coef):
    rollout, recompute = (make(old_logprobs=mode, kl_coef=kl_coef) for mode in ("rollout", "recompute"))
    for algo in (rollout, recompute):
        algo.collect_rollout()
    a, b = rollout.buffer, recompute.buffer
    assert torch.equal(a.response_ids, b.response_ids)  # same seed, same tokens
    torch.testing.assert_close(a.old_logp, b.old_logp, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.values, b.values, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.ref_logp, b.ref_logp, atol=1e-4, rtol=0)
    metrics = rollout.train()
    assert abs(metrics["train/ratio_mean"] - 1.0) < 0.1 and np.isfinite(metrics["train/policy_gradient_loss"])
    with pytest.raises(ValueError, match="old_logprobs must be one of"):
        make(old_logprobs="cached")
