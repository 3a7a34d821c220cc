import math

import numpy as np
import pytest
import torch

from agents.ppo.advantages import masked_mean
from agents.ppo.losses import aggregate_loss, clipped_policy_loss, clipped_value_loss, sequence_log_ratio


def test_policy_loss_at_ratio_one_is_minus_mean_advantage():
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    adv = torch.tensor([[1.0, -2.0, 50.0]])
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    loss, stats = clipped_policy_loss(logp, logp.detach(), adv, mask, 0.2)
    assert loss.item() == torch.tensor(0.5).item()  # -(1 - 2) / 2; the padded token is ignored
    assert stats == {"clip_fraction": 0.0, "approx_kl": 0.0, "ratio_mean": 1.0}
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.5, 1.0, 0.0]]))


def test_clipping_removes_gradient_outside_trust_region():
    old = torch.zeros(1, 2)
    logp = torch.tensor([[0.5, -0.5]], requires_grad=True)  # ratios e^0.5 = 1.65, e^-0.5 = 0.61
    adv = torch.tensor([[1.0, -1.0]])  # both would push further out of [0.8, 1.2]
    loss, stats = clipped_policy_loss(logp, old, adv, torch.ones(1, 2), 0.2)
    loss.backward()
    assert logp.grad.abs().max() == 0
    assert stats["clip_fraction"] == 1.0
    # ...but a ratio moving back towards 1 keeps its gradient (the min picks the unclipped term).
    logp2 = torch.tensor([[0.5]], requires_grad=True)
    loss2, _ = clipped_policy_loss(logp2, torch.zeros(1, 1), torch.tensor([[-1.0]]), torch.ones(1, 1), 0.2)
    loss2.backward()
    assert logp2.grad.item() > 0


def test_value_loss_clipping():
    returns = torch.tensor([[1.0]])
    old = torch.tensor([[0.0]])
    values = torch.tensor([[0.9]], requires_grad=True)
    unclipped = clipped_value_loss(values, old, returns, torch.ones(1, 1), None)
    assert abs(unclipped.item() - 0.5 * 0.01) < 1e-6
    clipped = clipped_value_loss(values, old, returns, torch.ones(1, 1), 0.2)
    # V_clip = 0.2 -> (0.2 - 1)^2 = 0.64 dominates; its gradient w.r.t. V is 0 (clamped).
    assert abs(clipped.item() - 0.5 * 0.64) < 1e-6
    clipped.backward()
    assert values.grad.item() == 0


@pytest.mark.parametrize("processing", ["top-k", "top-p"])
def test_approx_kl_stays_finite_when_a_sampled_token_leaves_the_support(processing):
    """Under top-k / top-p the current policy can give a token sampled at rollout time logp = -inf."""
    from agents.distributions import process_logits
    from agents.ppo.losses import clipped_policy_loss

    old_logits = torch.tensor([[2.0, 1.9, 0.0, -1.0]] * 2)
    new_logits = torch.tensor([[2.0, 0.0, 1.95, -1.0]] * 2)  # token 1 drops out of the new top-2 / nucleus
    kwargs = {"top_k": 2} if processing == "top-k" else {"top_p": 0.6}
    old = torch.log_softmax(process_logits(old_logits, 1.0, kwargs.get("top_k", 0), kwargs.get("top_p", 1.0)), -1)
    new = torch.log_softmax(process_logits(new_logits, 1.0, kwargs.get("top_k", 0), kwargs.get("top_p", 1.0)), -1)
    tokens = torch.tensor([[0], [1]])
    old_logp, new_logp = old.gather(1, tokens).T, new.gather(1, tokens).T
    assert torch.isinf(new_logp).any() and torch.isfinite(old_logp).all()
    _, stats = clipped_policy_loss(new_logp, old_logp, torch.ones_like(old_logp), torch.ones_like(old_logp), 0.2)
    log_ratio = float(new_logp[0, 0] - old_logp[0, 0])  # only the finite token counts
    assert stats["approx_kl"] == pytest.approx(math.expm1(log_ratio) - log_ratio, abs=1e-6)


def test_clip_range_high_decouples_the_upper_clip():
    """DAPO's clip-higher: the ratio is clipped to [1 - 0.2, 1 + 0.28] instead of [0.8, 1.2]."""
    ratios = torch.tensor([[1.25, 0.75, 1.3, 1.0]])
    logp = ratios.log().requires_grad_()
    adv = torch.tensor([[1.0, -1.0, 1.0, 2.0]])
    loss, stats = clipped_policy_loss(logp, torch.zeros(1, 4), adv, torch.ones(1, 4), 0.2, clip_range_high=0.28)
    # Token 0 (1.25 < 1.28) keeps rho A = 1.25; token 1 takes the lower clip 0.8 * -1 (the min); token 2 the upper
    # 1.28 * 1; token 3 is unclipped, 2. The loss is minus their mean.
    assert loss.item() == pytest.approx(-(1.25 - 0.8 + 1.28 + 2.0) / 4, abs=1e-6)
    assert stats["clip_fraction"] == 0.5  # tokens 1 (below 0.8) and 2 (above 1.28): one on each side
    loss.backward()
    # d(-rho A / 4)/d logp = -rho A / 4 where unclipped, 0 where the clipped term is the min.
    torch.testing.assert_close(logp.grad, torch.tensor([[-1.25 / 4, 0.0, 0.0, -2.0 / 4]]))

    symmetric = logp.detach().requires_grad_()
    loss, stats = clipped_policy_loss(symmetric, torch.zeros(1, 4), adv, torch.ones(1, 4), 0.2)
    assert loss.item() == pytest.approx(-(1.2 - 0.8 + 1.2 + 2.0) / 4, abs=1e-6)
    assert stats["clip_fraction"] == 0.75  # token 0 is clipped too at 1.2
    loss.backward()
    torch.testing.assert_close(symmetric.grad, torch.tensor([[0.0, 0.0, 0.0, -2.0 / 4]]))


def test_clip_range_high_none_is_the_symmetric_clip_bit_for_bit():
    """The default must reproduce the symmetric loss and clip_fraction exactly (not to a tolerance)."""
    g = torch.Generator().manual_seed(0)
    logp, old = torch.randn(4, 9, generator=g) * 0.3, torch.randn(4, 9, generator=g) * 0.3
    adv, mask = torch.randn(4, 9, generator=g), torch.rand(4, 9, generator=g) > 0.3
    loss, stats = clipped_policy_loss(logp, old, adv, mask, 0.2)
    ratio = torch.exp(logp - old)
    symmetric = torch.min(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)
    assert torch.equal(loss, -masked_mean(symmetric, mask))
    assert stats["clip_fraction"] == masked_mean(((ratio - 1.0).abs() > 0.2).float(), mask).item()
    assert 0 < stats["clip_fraction"] < 1  # both branches of the count are exercised


# Two sequences of 3 and 1 valid tokens; the padding holds 100s that no aggregation may read.
TERMS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]])
TERMS_MASK = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize("aggregation,expected", [
    ("token_mean", (1 + 2 + 3 + 4) / 4),   # every token alike
    ("sequence_mean", (6 / 3 + 4 / 1) / 2),  # each sequence's mean, then their mean
    ("constant", (1 + 2 + 3 + 4) / (2 * 5)),  # the sum over 2 sequences x max_new_tokens = 5
])
def test_aggregate_loss_by_hand(aggregation, expected):
    assert aggregate_loss(TERMS, TERMS_MASK, aggregation, max_new_tokens=5).item() == pytest.approx(expected, abs=1e-6)


def test_aggregate_loss_errors():
    with pytest.raises(ValueError, match="pass max_new_tokens"):
        aggregate_loss(TERMS, TERMS_MASK, "constant")
    with pytest.raises(ValueError, match="loss_aggregation must be one of"):
        aggregate_loss(TERMS, TERMS_MASK, "sum")


@pytest.mark.parametrize("aggregation,token_weights", [
    ("token_mean", [[1 / 4] * 3, [1 / 4, 0.0, 0.0]]),
    ("sequence_mean", [[1 / (2 * 3)] * 3, [1 / 2, 0.0, 0.0]]),  # 1 / (sequences x its length)
    ("constant", [[1 / (2 * 5)] * 3, [1 / (2 * 5), 0.0, 0.0]]),  # 1 / (sequences x max_new_tokens)
])
def test_policy_loss_gradient_weights_each_token_by_its_aggregation(aggregation, token_weights):
    """At ratio 1, d loss / d logp_t = -A_t w_t, with w_t the token's weight in the aggregation."""
    logp = torch.zeros(2, 3, requires_grad=True)
    adv = torch.tensor([[1.0, -2.0, 3.0], [4.0, 7.0, 7.0]])
    loss, stats = clipped_policy_loss(logp, torch.zeros(2, 3), adv, TERMS_MASK, 0.2, None, aggregation, 5)
    weights = torch.tensor(token_weights)
    assert loss.item() == pytest.approx(-(adv * weights).sum().item(), abs=1e-6)
    loss.backward()
    torch.testing.assert_close(logp.grad, -adv * weights)
    assert stats["ratio_mean"] == 1.0  # the stats stay token means


@pytest.mark.parametrize("aggregation,expected", [
    ("token_mean", (1 + 2 + 3 + 4) / 4),
    ("sequence_mean", (6 / 3 + 4 / 1) / 2),   # the empty row is not a sequence of the minibatch
    ("constant", (1 + 2 + 3 + 4) / (2 * 5)),
])
def test_aggregate_loss_skips_rows_left_out_of_the_loss(aggregation, expected):
    """A row whose mask is empty (overlong_filter) counts neither as tokens nor as a sequence."""
    terms = torch.cat([TERMS, torch.tensor([[50.0, 50.0, 50.0]])])
    mask = torch.cat([TERMS_MASK, torch.zeros(1, 3, dtype=torch.bool)])
    assert aggregate_loss(terms, mask, aggregation, max_new_tokens=5).item() == pytest.approx(expected, abs=1e-6)


def gspo_by_hand(logp, old_logp, adv_per_sequence, mask, eps_low, eps_high):
    """GSPO's objective written directly: s_i = exp(mean_t(logp - old)), -mean_i min(s_i A_i, clip(s_i) A_i)."""
    maskf = mask.float()
    s = torch.exp(((logp - old_logp) * maskf).sum(1) / maskf.sum(1))
    return -torch.min(s * adv_per_sequence, torch.clamp(s, 1 - eps_low, 1 + eps_high) * adv_per_sequence).mean()


def test_sequence_ratio_is_gspo_in_value_and_gradient():
    # Row 0: log-ratios 0.1, -0.3, 0.5 -> mean 0.1, s = e^0.1 = 1.105 (inside the clip, gradient flows);
    # row 1: log-ratio 0.3 on its one token -> s = e^0.3 = 1.35 > 1.2 with A > 0: clipped, no gradient.
    old = torch.zeros(2, 3)
    logp = torch.tensor([[0.1, -0.3, 0.5], [0.3, 100.0, -math.inf]], requires_grad=True)  # padding: garbage
    adv = torch.tensor([1.0, 2.0])
    loss, stats = clipped_policy_loss(logp, old, adv[:, None].expand(2, 3), TERMS_MASK, 0.2, None, "sequence_mean",
                                      importance_ratio="sequence")
    assert loss.item() == pytest.approx(-(math.exp(0.1) * 1.0 + 1.2 * 2.0) / 2, abs=1e-6)
    (grad,) = torch.autograd.grad(loss, logp)
    # d/d logp_0t of -(1/2) s_0 A_0 = -(1/2) * s_0 / 3 * A_0 for each of row 0's tokens; nothing elsewhere.
    torch.testing.assert_close(grad, torch.tensor([[-math.exp(0.1) / 6] * 3, [0.0, 0.0, 0.0]]))
    # The same as GSPO written directly over the valid tokens.
    ref_logp = torch.tensor([[0.1, -0.3, 0.5], [0.3, 0.0, 0.0]], requires_grad=True)
    reference = gspo_by_hand(ref_logp, old, adv, TERMS_MASK, 0.2, 0.2)
    (ref_grad,) = torch.autograd.grad(reference, ref_logp)
    assert loss.item() == pytest.approx(reference.item(), abs=1e-6)
    torch.testing.assert_close(grad, ref_grad * TERMS_MASK)
    assert stats["clip_fraction"] == pytest.approx(1 / 4)  # row 1's one token; the stats stay per token
    assert stats["approx_kl"] == pytest.approx(float(np.mean([math.expm1(x) - x for x in (0.1, -0.3, 0.5, 0.3)])), abs=1e-6)


def test_sequence_ratio_of_a_token_outside_the_support_is_zero_not_nan():
    logp = torch.tensor([[-math.inf, -0.5, -0.5]], requires_grad=True)
    log_ratio = sequence_log_ratio(logp, torch.full((1, 3), -0.5), torch.ones(1, 3, dtype=torch.bool))
    assert torch.isneginf(log_ratio).all()
    loss, _ = clipped_policy_loss(logp, torch.full((1, 3), -0.5), torch.ones(1, 3), torch.ones(1, 3, dtype=torch.bool),
                                  0.2, importance_ratio="sequence")
    (grad,) = torch.autograd.grad(loss, logp)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_token_ratio_is_unchanged_by_the_importance_ratio_argument():
    logp = torch.tensor([[0.1, -0.3, 0.5], [0.3, 0.0, 0.0]])
    adv = torch.tensor([[1.0, -2.0, 3.0], [4.0, 0.0, 0.0]])
    a, _ = clipped_policy_loss(logp, torch.zeros(2, 3), adv, TERMS_MASK, 0.2)
    b, _ = clipped_policy_loss(logp, torch.zeros(2, 3), adv, TERMS_MASK, 0.2, importance_ratio="token")
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="importance_ratio must be one of"):
        clipped_policy_loss(logp, torch.zeros(2, 3), adv, TERMS_MASK, 0.2, importance_ratio="group")
