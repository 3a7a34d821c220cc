"""Weighted sums of rewards, with every component kept for logging (``info["reward_components"]``)."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from textgym.rewards.registry import make, reward_name
from textgym.rewards.scoring import score

#: Keyword arguments TRL passes reward functions that are not per-sample columns: dropped by ``CombinedReward``.
_TRL_EXTRAS = ("log_extra", "log_metric")


class CombinedReward:
    """``sum_i weight_i * reward_i(prompts=..., completions=..., **fields)``; build it with :func:`combine`.

    A component that returns ``None`` for a sample (TRL's "not applicable") is left out of that sample's sum, as
    TRL's ``GRPOTrainer`` does; a sample for which every component returns None has no score (see
    :func:`textgym.rewards.score`). Async components of one batch run concurrently.

    Attributes:
        named_rewards: ``[(name, reward)]`` in the order given; names are unique (a repeated name gets ``#2``...).
        weights: the weight of each component, aligned with ``named_rewards``.
    """

    def __init__(self, named_rewards: list[tuple[str, Any]], weights: list[float]):
        self.named_rewards = named_rewards
        self.weights = weights

    @property
    def names(self) -> list[str]:
        """The component names, the keys of :meth:`components`."""
        return [name for name, _ in self.named_rewards]

    def components(self, prompts: Sequence[Any], completions: Sequence[Any], **fields: Any) -> dict[str, np.ndarray]:
        """Each component's raw (unweighted) float64 scores, keyed by component name; each reward is called once.

        Every component's result is validated like :func:`textgym.rewards.score` does (a
        :class:`~textgym.rewards.RewardError` names the failing component); NaN marks a None (not applicable).
        """
        return self._score(prompts, completions, fields)[1]

    def __call__(
        self, prompts: Sequence[Any] = (), completions: Sequence[Any] = (), **fields: Any
    ) -> np.ndarray:
        """The weighted sum of the components, float64 of shape ``[len(completions)]``.

        Takes TRL's keyword call too (``completion_ids`` and ``trainer_state`` are passed on to the components;
        TRL's ``log_extra``/``log_metric`` callbacks are not).
        """
        return self._score(prompts, completions, fields)[0]

    def _score(self, prompts: Sequence[Any], completions: Sequence[Any], fields: dict[str, Any]):
        fields = {k: v for k, v in fields.items() if k not in _TRL_EXTRAS}
        completion_ids = fields.pop("completion_ids", None)
        trainer_state = fields.pop("trainer_state", None)
        return score(self, prompts, completions, fields, completion_ids=completion_ids, trainer_state=trainer_state)

    def __repr__(self) -> str:
        return "CombinedReward(" + " + ".join(f"{w:g} * {n}" for n, w in zip(self.names, self.weights)) + ")"


def combine(rewards_and_weights: dict[Any, float] | Sequence[Any]) -> CombinedReward:
    """Combine rewards into a weighted sum.

    Args:
        rewards_and_weights: ``{reward: weight}`` or a list of ``(reward, weight)`` pairs, where each reward is
            anything :func:`textgym.rewards.make` accepts (a registered name, a callable, an already made reward).
            A bare reward in the list gets weight 1.0. Example: ``combine({"sentiment": 1.0, "repetition": 0.5})``.

    Returns:
        A :class:`CombinedReward`; its :meth:`~CombinedReward.components` gives the per-component scores.

    Raises:
        ValueError: empty input, or a weight that is not a finite number.
        TypeError: an item that is neither a reward nor a ``(reward, weight)`` pair.
    """
    if isinstance(rewards_and_weights, dict):
        pairs = list(rewards_and_weights.items())
    elif isinstance(rewards_and_weights, (list, tuple)):
        pairs = [_as_pair(item) for item in rewards_and_weights]
    else:
        raise TypeError(
            f"combine() takes {{reward: weight}} or a list of (reward, weight) pairs, got "
            f"{type(rewards_and_weights).__name__}."
        )
    if not pairs:
        raise ValueError("combine() needs at least one (reward, weight) pair, got none.")
    named, weights = [], []
    for spec, weight in pairs:
        if not (isinstance(weight, numbers.Real) and not isinstance(weight, bool) and math.isfinite(weight)):
            raise ValueError(f"The weight of reward {spec!r} must be a finite number, got {weight!r}.")
        reward = make(spec)
        name, base, k = reward_name(reward), reward_name(reward), 2
        while name in {n for n, _ in named}:  # two lambdas, or one reward twice: keep both columns
            name, k = f"{base}#{k}", k + 1
        named.append((name, reward))
        weights.append(float(weight))
    return CombinedReward(named, weights)


def _as_pair(item: Any) -> tuple[Any, Any]:
    if isinstance(item, (tuple, list)):
        if len(item) == 2 and isinstance(item[1], numbers.Number):
            return item[0], item[1]
        raise TypeError(f"combine() expects (reward, weight) pairs, got {item!r}.")
    if isinstance(item, str) or callable(item):
        return item, 1.0
    raise TypeError(f"combine() expects rewards or (reward, weight) pairs, got {type(item).__name__} {item!r}.")
