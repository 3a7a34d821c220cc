import pytest
import torch

from agents.ppo.advantages import compute_gae, explained_variance, group_advantages, masked_mean, returns_to_go, whiten


def naive_gae(rewards, values, lengths, gamma, lam):
    """Textbook GAE, one Python list per episode."""
    adv = torch.zeros_like(rewards)
    for b, n in enumerate(lengths):
        last = 0.0
        for t in reversed(range(n)):
            next_v = values[b, t + 1].item() if t + 1 < n else 0.0
            delta = rewards[b, t].item() + gamma * next_v - values[b, t].item()
            last = delta + gamma * lam * last
            adv[b, t] = last
    return adv


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0)])
def test_gae_matches_textbook(gamma, lam):
    g = torch.Generator().manual_seed(0)
    lengths = [5, 1, 3, 7]
    rewards, values = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    mask = torch.arange(7)[None] < torch.tensor(lengths)[:, None]
    adv, ret = compute_gae(rewards, values, mask, gamma, lam)
    expected = naive_gae(rewards, values, lengths, gamma, lam)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, (expected + values) * mask)
    assert (adv[~mask] == 0).all()


def test_gae_lambda_one_is_return_minus_value():
    rewards = torch.tensor([[0.0, -0.1, 1.0]])
    values = torch.tensor([[0.3, 0.5, 0.2]])
    adv, ret = compute_gae(rewards, values, torch.ones(1, 3, dtype=torch.bool), 1.0, 1.0)
    torch.testing.assert_close(ret, torch.tensor([[0.9, 0.9, 1.0]]))
    torch.testing.assert_close(adv, ret - values)


def test_gae_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="share a shape"):
        compute_gae(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3))


def test_grpo_and_rloo_baselines():
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0])
    grpo = group_advantages(scores, 2, "grpo")
    s = torch.tensor(2.0).sqrt() / 2  # std of [1, 0] (unbiased) is 1/sqrt(2)
    torch.testing.assert_close(grpo, torch.tensor([0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0.0, 0.0]), atol=1e-4, rtol=1e-4)
    rloo = group_advantages(torch.tensor([1.0, 2.0, 6.0]), 3, "rloo")
    torch.testing.assert_close(rloo, torch.tensor([1.0 - 4.0, 2.0 - 3.5, 6.0 - 1.5]))


@pytest.mark.parametrize(
    "kwargs,match",
    [({"group_size": 1}, "group_size >= 2"), ({"group_size": 4}, "divisible"), ({"method": "ppo"}, "baseline must be"),
     ({"scale": "std"}, "scale_rewards must be one of")],
)
def test_group_advantages_errors(kwargs, match):
    args = {"scores": torch.zeros(6), "group_size": 2, "method": "grpo", **kwargs}
    with pytest.raises(ValueError, match=match):
        group_advantages(**args)


# Two groups of G = 3: [0, 1, 2] (mean 1, unbiased std 1) and [4, 4, 10] (mean 6, std sqrt((4 + 4 + 16) / 2)
# = sqrt(12)). The whole batch: mean 3.5, squared deviations 12.25 + 6.25 + 2.25 + 0.25 + 0.25 + 42.25 = 63.5,
# unbiased std sqrt(63.5 / 5) = sqrt(12.7).
SCORES = torch.tensor([0.0, 1.0, 2.0, 4.0, 4.0, 10.0])
GRPO_CENTRED = [-1.0, 0.0, 1.0, -2.0, -2.0, 4.0]  # R_i - mean_g R
RLOO_CENTRED = [-1.5, 0.0, 1.5, -3.0, -3.0, 6.0]  # G / (G - 1) = 3/2 times that
GROUP_STDS = [1.0] * 3 + [12.0**0.5] * 3


@pytest.mark.parametrize("method,centred", [("grpo", GRPO_CENTRED), ("rloo", RLOO_CENTRED)])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_scale_rewards_divides_by_the_group_std_the_batch_std_or_nothing(method, centred, scale):
    divisor = {"group": GROUP_STDS, "batch": [12.7**0.5] * 6, "none": [1.0] * 6}[scale]
    expected = torch.tensor([c / d for c, d in zip(centred, divisor)])
    torch.testing.assert_close(group_advantages(SCORES, 3, method, scale=scale), expected, atol=1e-5, rtol=1e-5)


def test_scale_rewards_none_keeps_each_baselines_own_scaling_bit_for_bit():
    """The default (None) is GRPO's group std and RLOO's no division, exactly as before the option existed."""
    assert torch.equal(group_advantages(SCORES, 3, "grpo"), group_advantages(SCORES, 3, "grpo", scale="group"))
    assert torch.equal(group_advantages(SCORES, 3, "rloo"), group_advantages(SCORES, 3, "rloo", scale="none"))
    grouped = SCORES.view(-1, 3)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    assert torch.equal(group_advantages(SCORES, 3, "grpo"), (centred / (grouped.std(dim=1, keepdim=True) + 1e-6)).reshape(-1))
    assert torch.equal(group_advantages(SCORES, 3, "rloo"), (centred * 3 / 2).reshape(-1))


def test_whiten_ignores_padding():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]], dtype=torch.bool)
    w = whiten(x, mask)
    assert abs(masked_mean(w, mask).item()) < 1e-6
    assert w[:, 2].abs().max() == 0
    torch.testing.assert_close(w[mask].std(), torch.tensor(1.0), atol=1e-4, rtol=0)


def test_explained_variance():
    y = torch.tensor([[1.0, 2.0, 3.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert explained_variance(y, y, mask) == pytest.approx(1.0)
    assert explained_variance(torch.zeros_like(y) + 2.0, y, mask) == pytest.approx(0.0)


def test_returns_to_go_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])  # row 1: one token, padding holds 9s
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    # gamma 0.5: G_2 = 3, G_1 = 2 + 0.5 * 3 = 3.5, G_0 = 1 + 0.5 * 3.5 = 2.75; row 1: 4.
    torch.testing.assert_close(returns_to_go(rewards, mask, gamma=0.5), torch.tensor([[2.75, 3.5, 3.0], [4.0, 0.0, 0.0]]))
