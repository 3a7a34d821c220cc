"""KL to the frozen reference policy: per-token estimators and the coefficient controllers.

Theory: ``docs/theory.md`` section "The KL penalty as reward shaping". With ``logp = log pi(a_t|s_t)`` (the
sampling policy) and ``ref_logp = log pi_ref(a_t|s_t)`` evaluated on the sampled token ``a_t ~ pi``:

* ``k1 = logp - ref_logp``: unbiased for KL(pi || pi_ref) but can be negative on a single token;
* ``k3 = (r - 1) - log r`` with ``r = exp(ref_logp - logp)``: also unbiased (``E_pi[r] = 1``), always >= 0,
  lower variance when the two policies are close (Schulman, "Approximating KL divergence", 2020).
"""

from __future__ import annotations

import math

import torch

KL_ESTIMATORS = ("k1", "k3")


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from log-probs of tokens sampled from ``pi``.

    Args:
        logp: log-probs of the sampled tokens under the policy, any shape.
        ref_logp: log-probs of the same tokens under the reference policy, same shape.
        estimator: ``"k1"`` (``logp - ref_logp``) or ``"k3"`` (``(r - 1) - log r``, ``r = pi_ref / pi``).

    Returns:
        A tensor of the same shape holding the per-token estimate.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {estimator!r}.")
    log_ratio = logp - ref_logp
    if estimator == "k1":
        return log_ratio
    # k3 = (r - 1) - log r with log r = -log_ratio; expm1 keeps precision when the policies are close.
    return torch.expm1(-log_ratio) + log_ratio


class FixedKLController:
    """A constant KL coefficient ``beta`` (``kl_coef``).

    Args:
        init_kl_coef: the coefficient ``beta`` >= 0 multiplying the per-token KL penalty.
    """

    def __init__(self, init_kl_coef: float):
        if not math.isfinite(init_kl_coef) or init_kl_coef < 0:
            raise ValueError(f"kl_coef must be a finite number >= 0, got {init_kl_coef!r}.")
        self.value = float(init_kl_coef)

    def update(self, current_kl: float) -> float:
        """Nothing to adapt; returns the (unchanged) coefficient."""
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """RL4LMs' proportional controller: once per rollout,
    ``beta *= 1 + rate * clip((KL - target) / target, -0.2, 0.2)``.

    When the measured KL (the rollout's mean over sequences of the summed per-token KL) exceeds ``kl_target``
    the penalty grows by up to ``rate * 20%`` per iteration, and shrinks likewise when below, so the policy is
    held near the target distance from the reference without a hand-tuned fixed ``beta``.

    Args:
        init_kl_coef: starting coefficient ``beta`` (> 0, or the multiplicative update could never move it).
        kl_target: the KL the controller steers to (> 0; ``TokenPPO``'s ``kl_target``, not its ``target_kl`` early
            stop).
        rate: the gain of the controller (0.1 in RL4LMs).
    """

    def __init__(self, init_kl_coef: float, kl_target: float, rate: float = 0.1):
        if not math.isfinite(init_kl_coef) or init_kl_coef <= 0:
            raise ValueError(
                f"An adaptive KL controller needs init kl_coef > 0 (it is updated multiplicatively), got {init_kl_coef!r}."
            )
        if not math.isfinite(kl_target) or kl_target <= 0:
            raise ValueError(f"kl_target must be > 0 for the adaptive KL controller, got {kl_target!r}.")
        if rate <= 0:
            raise ValueError(f"The adaptive KL controller's rate must be > 0, got {rate!r}.")
        self.value = float(init_kl_coef)
        self.target = float(kl_target)
        self.rate = float(rate)

    def update(self, current_kl: float) -> float:
        """Move ``beta`` towards holding ``current_kl`` at the target; returns the new coefficient."""
        proportional_error = min(max((current_kl - self.target) / self.target, -0.2), 0.2)
        self.value *= 1.0 + self.rate * proportional_error
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "target": self.target, "rate": self.rate}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value, self.target, self.rate = float(state["value"]), float(state["target"]), float(state["rate"])


def make_kl_controller(kl_coef: float, kl_target: float | None) -> FixedKLController | AdaptiveKLController:
    """``kl_target=None``: fixed ``kl_coef``; otherwise RL4LMs' adaptive controller starting at ``kl_coef``."""
    if kl_target is None:
        return FixedKLController(kl_coef)
    return AdaptiveKLController(kl_coef, kl_target)
