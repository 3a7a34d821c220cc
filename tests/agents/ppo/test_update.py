"""The update's micro-batching (agents/ppo/update.py): each loss aggregation's gradient is the unsplit one."""

import pytest
import torch

from agents.ppo import TokenPPO
from agents.ppo.losses import LOSS_AGGREGATIONS, aggregate_loss, clipped_policy_loss, clipped_value_loss
from agents.ppo.rollout import evaluate_sequences
from agents.ppo.update import _accumulate_gradients, minibatches
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model

ENT_COEF, VF_COEF = 0.3, 0.5


def rollout_with_uneven_lengths(loss_aggregation):
    """A GAE run (so the value loss is in the sum) with an entropy bonus, one rollout collected, and response
    cut to at most 1..4 tokens (row by row): token shares and sequence shares of the micro-batches then differ."""
    algo = TokenPPO(tiny_model(0), ToyVectorEnv(num_envs=8), batch_size=8, n_epochs=1, ent_coef=ENT_COEF,
                    vf_coef=VF_COEF, loss_aggregation=loss_aggregation, seed=0, device="cpu")
    algo.collect_rollout()
    buf = algo.rollout.buffer
    lengths = torch.tensor([1, 4, 2, 4, 3, 1, 4, 2])
    buf.response_mask = buf.response_mask & (torch.arange(buf.response_mask.shape[1])[None] < lengths[:, None])
    assert buf.response_lengths.unique().numel() >= 3  # uneven, whichever rows stopped at EOS first
    return algo, buf


def gradients_of_one_minibatch(algo, buf, accumulation_steps):
    """The policy's gradient after `_accumulate_gradients` over the one minibatch of all 8 rows."""
    algo.optimizer.zero_grad(set_to_none=True)
    minibatch = next(minibatches(buf, 8, torch.Generator().manual_seed(0), algo.dist, accumulation_steps,
                                 algo.config.loss_aggregation))
    stats = {k: [] for k in ("loss", "policy_loss", "value_loss", "entropy", "clip_fraction", "approx_kl", "ratio_mean")}
    problem, _, _ = _accumulate_gradients(minibatch, stats, algo.config, algo.train_policy, algo.sampler,
                                          algo.nonfinite_guard, algo.dist, algo._autocast)
    assert problem is None
    return minibatch, [p.grad.clone() for p in algo.policy.parameters() if p.grad is not None]


@pytest.mark.parametrize("loss_aggregation", LOSS_AGGREGATIONS)
def test_micro_batches_sum_to_the_unsplit_minibatch_gradient(loss_aggregation):
    algo, buf = rollout_with_uneven_lengths(loss_aggregation)
    _, whole = gradients_of_one_minibatch(algo, buf, 1)
    split, parts = gradients_of_one_minibatch(algo, buf, 3)  # micro-batches of 3, 3 and 2 rows
    assert len(split.micro_batches) == 3
    shares = [(m.share.item(), m.policy_share.item()) for m in split.micro_batches]
    if loss_aggregation != "token_mean":  # the test bites: weighting by tokens would give another gradient
        assert any(abs(token - sequence) > 0.05 for token, sequence in shares)
    assert len(whole) == len(parts) > 0
    for g, h in zip(whole, parts):
        torch.testing.assert_close(h, g, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("loss_aggregation", LOSS_AGGREGATIONS)
def test_the_unsplit_gradient_is_the_aggregated_loss(loss_aggregation):
    """The policy loss and the entropy bonus take the aggregation; the value loss stays a token mean."""
    algo, buf = rollout_with_uneven_lengths(loss_aggregation)
    minibatch, got = gradients_of_one_minibatch(algo, buf, 1)
    assert minibatch.max_new_tokens == ToyVectorEnv.T  # the constant normaliser is the env's token limit
    b = minibatch.micro_batches[0].batch
    algo.optimizer.zero_grad(set_to_none=True)
    logp, entropy, values = evaluate_sequences(algo.train_policy, b.input_ids, b.attention_mask, b.prompt_length,
                                               b.response_ids, b.response_mask, algo.sampler)
    policy, _ = clipped_policy_loss(logp, b.old_logp, b.advantages, b.response_mask, algo.config.clip_range)
    token_mean = aggregate_loss(entropy, b.response_mask)
    expected_policy = -aggregate_loss(torch.min(torch.exp(logp - b.old_logp) * b.advantages, torch.clamp(
        torch.exp(logp - b.old_logp), 0.8, 1.2) * b.advantages), b.response_mask, loss_aggregation, 4)
    expected = (expected_policy - ENT_COEF * aggregate_loss(entropy, b.response_mask, loss_aggregation, 4)
                + VF_COEF * clipped_value_loss(values, b.values, b.returns, b.response_mask, 0.2))
    expected.backward()
    want = [p.grad for p in algo.policy.parameters() if p.grad is not None]
    for g, h in zip(got, want):
        torch.testing.assert_close(g, h, atol=1e-6, rtol=1e-4)
    if loss_aggregation != "token_mean":  # the aggregations differ on these uneven lengths
        assert abs(expected_policy.item() - policy.item()) > 1e-4
        assert abs(aggregate_loss(entropy, b.response_mask, loss_aggregation, 4).item() - token_mean.item()) > 1e-4
