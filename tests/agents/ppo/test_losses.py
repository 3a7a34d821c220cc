import torch

from agents.ppo.losses import clipped_policy_loss, clipped_value_loss


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
