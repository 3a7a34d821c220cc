"""Building rewards from specs and checking them: ``make`` (a name, a callable, ``{reward: weight}``),
``combine`` (a weighted sum), :func:`check_reward_inputs` (can the records feed it?) and ``score`` of a spec.

``make`` and ``combine`` call each other (a combination's parts are made; a dict spec is a combination), so
they live together, above the registry and the scoring they use.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from textgym.rewards import scoring
from textgym.rewards.base import RewardFunction, RewardInputError
from textgym.rewards.calling import STANDARD_INPUTS, missing_input_message, call_plan
from textgym.rewards.registry import build, check_reward_signature, format_kwargs, list_rewards, lookup, reward_name
from textgym.rewards.scoring import CombinedReward


def make(spec: Any, **kwargs: Any) -> RewardFunction:
    """Build a reward from a spec.

    Args:
        spec: one of
            * a registered name: a factory class is instantiated with ``kwargs``; a function gets ``kwargs``
              bound with :func:`functools.partial`;
            * a reward callable (``def f(completions, **kwargs)``, TRL's shape): returned as is (no ``kwargs``);
              a class is instantiated with ``kwargs``;
            * ``{reward: weight}`` or a list of ``(reward, weight)`` pairs: a :class:`CombinedReward` (see
              :func:`textgym.rewards.combine`).
        **kwargs: options for a registered reward, e.g. ``make("rouge", rouge_type="rouge1")``.

    Raises:
        ValueError: unknown name (the message lists close matches and every registered name).
        TypeError: options the reward does not accept, or a spec of the wrong type.
    """
    if isinstance(spec, CombinedReward):
        _no_kwargs(spec, kwargs)
        return spec
    if isinstance(spec, str):
        return build(spec, lookup(spec), kwargs)
    if isinstance(spec, type):
        return build(reward_name(spec), spec, kwargs)
    if isinstance(spec, (dict, list, tuple)):
        _no_kwargs(spec, kwargs)
        return combine(spec)
    if callable(spec):
        _no_kwargs(spec, kwargs)
        check_reward_signature(spec, reward_name(spec))
        return spec
    raise TypeError(
        f"Cannot make a reward from {type(spec).__name__} {spec!r}: pass a registered name (one of "
        f"{', '.join(list_rewards())}), a callable reward(completions, **kwargs), or {{reward: weight}}."
    )


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


def _no_kwargs(spec: Any, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(
            f"Options {format_kwargs(kwargs)} only apply to a registered reward name or a factory class, not to "
            f"{type(spec).__name__} {spec!r}. Configure the reward before passing it (e.g. "
            f"make('rouge', rouge_type='rouge1')), or use functools.partial."
        )


def check_reward_inputs(reward: Any, field_names: Sequence[str], source: str = "the prompt records") -> None:
    """Fail early (at ``gym.make``) when the records cannot feed ``reward``.

    Args:
        reward: a reward built by :func:`textgym.rewards.make` (a combination is checked component by component).
        field_names: the record keys that reach the reward (every key except ``prompt`` and ``completion``).
        source: where the records come from, for the message.

    Raises:
        RewardInputError: a record field collides with a standard input (``prompts``, ``completions``,
            ``completion_ids``, ``trainer_state``); a reward parameter without a default that no field provides;
            a built-in's required field that the records lack; a reward that never receives the completions.
    """
    clashes = [k for k in field_names if k in STANDARD_INPUTS]
    if clashes:
        raise RewardInputError(
            f"{source} have a field named {clashes[0]!r}, which collides with an input textgym passes every reward "
            f"by keyword ({', '.join(STANDARD_INPUTS)}). Rename that key in the records (e.g. "
            f"{clashes[0] + '_field'!r}) and read it under its new name in the reward."
        )
    available = (*STANDARD_INPUTS, *field_names)
    for name, part in iter_components(reward):
        required = getattr(part, "required_fields", None)
        if isinstance(required, (tuple, list)):  # a textgym Reward: it declares the fields it reads
            lacking = [k for k in required if k not in field_names]
            if lacking:
                raise RewardInputError(
                    f"Reward {name!r} reads the per-sample field {lacking[0]!r}, but {source} only have the keys "
                    f"{sorted(['prompt', *field_names])}. Add a {lacking[0]!r} key to every record (or use a task "
                    f"whose data has it)."
                )
            continue
        plan = call_plan(part, available)
        if plan.missing or not plan.sees_completions:
            inputs = dict.fromkeys(available)
            raise RewardInputError(missing_input_message(part, name, plan, inputs, source=source))


def iter_components(reward: Any) -> list[tuple[str, Any]]:
    """``[(name, reward)]``: the leaves of a (nested) combination, or ``[(name, reward)]`` for a single reward."""
    if isinstance(reward, CombinedReward):
        return [leaf for _, part in reward.named_rewards for leaf in iter_components(part)]
    inner = getattr(reward, "textgym_inner_reward", None)  # a wrapper (conversational): check what it calls
    if inner is not None:
        return iter_components(inner)
    return [(reward_name(reward), reward)]


def score(reward: Any, prompts: Sequence[Any], completions: Sequence[Any], fields: dict[str, Sequence[Any]] | None = None,
          **options: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`textgym.rewards.scoring.score` of ``reward``, which may also be a spec (a registered name,
    ``{reward: weight}``...: it is made first). ``options``: ``fallback``, ``completion_ids``, ``trainer_state``."""
    if isinstance(reward, (str, dict, list, tuple)):
        reward = make(reward)
    return scoring.score(reward, prompts, completions, fields, **options)
