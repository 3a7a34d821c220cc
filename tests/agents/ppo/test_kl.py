import pytest
import torch

from agents.ppo.kl import AdaptiveKLController, FixedKLController, kl_estimate, make_kl_controller


def test_estimators_are_unbiased_and_k3_nonnegative():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, generator=g), 0)
    q = torch.softmax(torch.randn(6, generator=g), 0)
    exact = (p * (p.log() - q.log())).sum()
    tokens = torch.multinomial(p, 200_000, replacement=True, generator=g)
    k1 = kl_estimate(p.log()[tokens], q.log()[tokens], "k1")
    k3 = kl_estimate(p.log()[tokens], q.log()[tokens], "k3")
    assert (k3 >= 0).all() and (k1 < 0).any()
    assert k1.mean().item() == pytest.approx(exact.item(), abs=0.01)
    assert k3.mean().item() == pytest.approx(exact.item(), abs=0.01)
    assert k3.var() < k1.var() * 5  # same target, comparable or lower spread on close policies


def test_estimators_are_zero_on_equal_policies():
    logp = torch.log(torch.tensor([0.2, 0.5]))
    assert kl_estimate(logp, logp, "k1").abs().max() == 0
    assert kl_estimate(logp, logp, "k3").abs().max() == 0


def test_unknown_estimator():
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        kl_estimate(torch.zeros(1), torch.zeros(1), "k2")


def test_adaptive_controller_follows_rl4lms_rule():
    ctl = AdaptiveKLController(0.1, kl_target=0.5)
    assert ctl.update(0.55) == pytest.approx(0.1 * (1 + 0.1 * 0.1))  # error 0.1, inside the clip
    before = ctl.value
    assert ctl.update(100.0) == pytest.approx(before * 1.02)  # error clipped at +0.2
    before = ctl.value
    assert ctl.update(0.0) == pytest.approx(before * 0.98)  # clipped at -0.2
    assert ctl.update(0.5) == pytest.approx(before * 0.98)  # on target: unchanged


def test_fixed_controller_and_factory_errors():
    assert FixedKLController(0.05).update(10.0) == 0.05
    assert isinstance(make_kl_controller(0.05, None), FixedKLController)
    assert isinstance(make_kl_controller(0.05, 1.0), AdaptiveKLController)
    with pytest.raises(ValueError, match="kl_coef must be"):
        FixedKLController(-1.0)
    with pytest.raises(ValueError, match="kl_coef > 0"):
        AdaptiveKLController(0.0, 1.0)
    with pytest.raises(ValueError, match="kl_target must be > 0"):
        AdaptiveKLController(0.1, 0.0)


def test_as_a_reward_k1_gives_the_kl_gradient_and_k3_also_pushes_away_from_the_reference():
    # docs/theory.md section 6: the policy-gradient estimator E_pi[grad log pi * k] with the estimate held constant
    # (as a shaped reward is) is grad KL(pi || ref) for k1, and grad KL(pi || ref) - grad KL(ref || pi) for k3.
    import torch

    from agents.ppo.kl import kl_estimate

    torch.manual_seed(0)
    logits, ref = torch.randn(6, requires_grad=True), torch.softmax(torch.randn(6), 0)

    def grad(f):
        logits.grad = None
        f().backward()
        return logits.grad.clone()

    def as_reward(estimator):
        logp = torch.log_softmax(logits, 0)
        k = kl_estimate(logp.detach(), torch.log(ref), estimator)
        return (logp.exp().detach() * logp * k).sum()

    reverse = grad(lambda: (torch.softmax(logits, 0) * (torch.log_softmax(logits, 0) - torch.log(ref))).sum())
    forward = grad(lambda: (ref * (torch.log(ref) - torch.log_softmax(logits, 0))).sum())
    assert torch.allclose(grad(lambda: as_reward("k1")), reverse, atol=1e-6)
    assert torch.allclose(grad(lambda: as_reward("k3")), reverse - forward, atol=1e-6)
    assert not torch.allclose(forward, torch.zeros_like(forward), atol=1e-3)  # the two really differ here
