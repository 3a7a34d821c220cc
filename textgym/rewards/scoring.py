"""``score``: the one call the envs make. One batched reward call, then a strict check of what came back.

A reward that returns the wrong number of values, a NaN, an inf, None or a string fails here, at the batch that
produced it, with an error that names the reward, the completion and the fix: not 10k steps later as a NaN loss.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Sequence

import numpy as np

from textgym.rewards.base import RewardError, RewardInputError, RewardWarning, preview
from textgym.rewards.registry import reward_name

_FALLBACK_HINT = (
    "or pass a fallback to substitute a value with a warning (textgym.rewards.score(..., fallback=0.0), or the "
    "env's reward_fallback=0.0)"
)


class _BatchProblem(Exception):
    """The whole result is unusable (wrong type, wrong length)."""


def score(
    reward: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    fields: dict[str, Sequence[Any]] | None = None,
    *,
    fallback: float | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Score a batch: call ``reward`` once and validate the result.

    Args:
        reward: a reward built by :func:`textgym.rewards.make`, any callable
            ``reward(prompts, completions, **fields)``, or a spec ``make`` accepts (a name, ``{name: weight}``).
        prompts: the N prompt texts.
        completions: the N completion texts, aligned with ``prompts``.
        fields: per-sample fields passed as keyword arguments, each a sequence of N values (e.g.
            ``{"answer": ["4", "7"]}``); None for none.
        fallback: None (default) raises :class:`RewardError` on any failure. A float is used instead of the
            failed scores, with a :class:`RewardWarning`: for every sample when the reward raised or returned an
            unusable batch, for the bad indices only when single values were NaN/inf/None/non-numbers.
            :class:`RewardInputError` (a missing field, a bad option) is never replaced.

    Returns:
        ``(total, components)``: ``total`` is float64 of shape ``[N]``; ``components`` maps each component name to
        its raw (unweighted) float64 scores: the parts of a :class:`CombinedReward`, else ``{name: total}``.

    Raises:
        RewardError: the reward raised (the original exception is chained) or returned invalid values.
        ValueError: ``prompts``, ``completions`` and ``fields`` are not aligned.
    """
    from textgym.rewards.combine import CombinedReward
    from textgym.rewards.registry import make

    if isinstance(reward, (str, dict, list, tuple)):
        reward = make(reward)
    prompts, completions = list(prompts), list(completions)
    fields = dict(fields or {})
    _check_batch(prompts, completions, fields)
    if fallback is not None and not (isinstance(fallback, numbers.Real) and math.isfinite(fallback)):
        raise ValueError(f"fallback must be None or a finite float, got {fallback!r}.")
    if isinstance(reward, CombinedReward):
        components = {
            name: evaluate(part, name, prompts, completions, fields, fallback) for name, part in reward.named_rewards
        }
        total = np.zeros(len(completions), dtype=np.float64)
        for (name, _), weight in zip(reward.named_rewards, reward.weights):
            total += weight * components[name]
        return total, components
    name = reward_name(reward)
    total = evaluate(reward, name, prompts, completions, fields, fallback)
    return total, {name: total.copy()}


def evaluate(
    reward: Any,
    name: str,
    prompts: list[str],
    completions: list[str],
    fields: dict[str, Sequence[Any]],
    fallback: float | None = None,
) -> np.ndarray:
    """Call one reward on the batch and return its validated float64 scores (see :func:`score`)."""
    n = len(completions)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    try:
        result = reward(prompts, completions, **fields)
    except RewardInputError:
        raise  # a data/configuration bug: a fallback would hide it behind every single reward
    except Exception as e:
        if isinstance(e, RewardError) and fallback is None:
            raise  # already names the reward and the fix (e.g. a reward that calls score() itself)
        hint = ""
        if isinstance(e, TypeError) and "unexpected keyword argument" in str(e):
            hint = (
                " The batch carries the per-sample fields "
                f"{sorted(fields)}: add **kwargs to the reward's signature, e.g. "
                "`def my_reward(prompts, completions, **kwargs)`."
            )
        message = (
            f"Reward {name!r} raised {type(e).__name__}: {e} while scoring a batch of {n} completion(s) (first "
            f"sample: prompt {preview(prompts[0])}, completion {preview(completions[0])}).{hint} The original "
            f"traceback is chained above. Fix the reward, {_FALLBACK_HINT}."
        )
        if fallback is None:
            raise RewardError(message) from e
        warnings.warn(f"{message} Used fallback {fallback} for all {n} samples.", RewardWarning, stacklevel=3)
        return np.full(n, float(fallback), dtype=np.float64)
    try:
        values, problems = _validate(result, n)
    except _BatchProblem as e:
        message = (
            f"Reward {name!r} {e}. A reward must return one finite float per completion, in the order of "
            f"`completions` (a list, tuple, or 1-D array of length {n})."
        )
        if fallback is None:
            raise RewardError(message) from None
        warnings.warn(f"{message} Used fallback {fallback} for all {n} samples.", RewardWarning, stacklevel=3)
        return np.full(n, float(fallback), dtype=np.float64)
    if problems:
        first, what = problems[0]
        more = f" (and {len(problems) - 1} more invalid value(s))" if len(problems) > 1 else ""
        message = (
            f"Reward {name!r} returned {what} at index {first} for completion {preview(completions[first])}{more}. "
            f"Return a finite float for every completion (e.g. 0.0 where the score is undefined), {_FALLBACK_HINT}."
        )
        if fallback is None:
            raise RewardError(message)
        warnings.warn(
            f"{message} Used fallback {fallback} for {len(problems)} of {n} samples.", RewardWarning, stacklevel=3
        )
        values[[i for i, _ in problems]] = float(fallback)
    return values


def _check_batch(prompts: list[Any], completions: list[Any], fields: dict[str, Sequence[Any]]) -> None:
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(f"score() got {len(prompts)} prompts for {n} completions; they must be aligned.")
    for key, values in fields.items():
        if key in ("prompts", "completions"):
            raise ValueError(f"A per-sample field may not be named {key!r} (it is a positional argument of rewards).")
        try:
            length = len(values)
        except TypeError:
            raise ValueError(
                f"Field {key!r} must be a sequence with one value per sample, got {type(values).__name__}."
            ) from None
        if length != n:
            raise ValueError(f"Field {key!r} has {length} values for {n} completions; fields must be aligned.")


def _validate(result: Any, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """float64 values (NaN where invalid) and the (index, what) of each invalid value; _BatchProblem if unusable."""
    if hasattr(result, "detach") and hasattr(result, "cpu"):  # a torch tensor, maybe on a GPU
        result = result.detach().cpu().numpy()
    if result is None:
        raise _BatchProblem("returned None instead of a list of scores")
    if isinstance(result, (str, bytes, dict)):
        raise _BatchProblem(f"returned a {type(result).__name__} ({preview(result)}) instead of a list of scores")
    if isinstance(result, numbers.Number) or (isinstance(result, np.ndarray) and result.ndim == 0):
        raise _BatchProblem(
            f"returned a single number ({result!r}) for {n} completions; rewards are batched: return one score per "
            f"completion, e.g. `[score_one(c) for c in completions]`"
        )
    if isinstance(result, np.ndarray):
        if result.ndim != 1:
            raise _BatchProblem(f"returned an array of shape {result.shape}; return a 1-D array (e.g. `.reshape(-1)`)")
        if result.dtype.kind in "biuf":
            if len(result) != n:
                raise _BatchProblem(f"returned {len(result)} values for {n} completions")
            values = result.astype(np.float64)
            return values, [(int(i), _nonfinite(values[i])) for i in np.flatnonzero(~np.isfinite(values))]
    try:
        items = list(result)
    except TypeError:
        raise _BatchProblem(
            f"returned an object of type {type(result).__name__!r} instead of a list of scores"
        ) from None
    if len(items) != n:
        raise _BatchProblem(f"returned {len(items)} values for {n} completions")
    values = np.full(n, np.nan, dtype=np.float64)
    problems = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray) and item.ndim == 0:
            item = item.item()
        if item is None:
            problems.append((i, "None (TRL's 'not applicable'; textgym needs a number)"))
        elif isinstance(item, numbers.Real):
            value = float(item)
            values[i] = value
            if not math.isfinite(value):
                problems.append((i, _nonfinite(value)))
        else:
            problems.append((i, f"a {type(item).__name__} ({preview(item, 20)}), not a number"))
    return values, problems


def _nonfinite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
