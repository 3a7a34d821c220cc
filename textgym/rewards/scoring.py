"""``score``: the one call the envs make. One batched keyword call per reward, then a strict check of what came back.

A reward that returns the wrong number of values, a NaN, an inf, None or a string fails here, at the batch that
produced it, with an error that names the reward, the completion and the fix: not 10k steps later as a NaN loss.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from typing import Any, Sequence

import numpy as np

from textgym.rewards.base import RewardError, RewardInputError, RewardWarning, preview
from textgym.rewards.calling import STANDARD_INPUTS, call_reward, run_awaitables
from textgym.rewards.registry import reward_name

_FALLBACK_HINT = (
    "or pass a fallback to substitute a value with a warning (textgym.rewards.score(..., fallback=0.0), or the "
    "env's reward_fallback=0.0)"
)


class _BatchProblem(Exception):
    """The whole result is unusable (wrong type, wrong length)."""


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


def score(
    reward: Any,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    fields: dict[str, Sequence[Any]] | None = None,
    *,
    fallback: float | None = None,
    completion_ids: Sequence[Sequence[int]] | None = None,
    trainer_state: Any = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Score a batch: call ``reward`` (each component of a combination) once, by keyword, and validate the result.

    The call is TRL's: ``reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields)``
    (see :mod:`textgym.rewards.calling` for what each signature receives). Every call gets its own copies of the
    inputs. ``async def`` rewards are awaited, the async components of a combination concurrently.

    Args:
        reward: a reward built by :func:`textgym.rewards.make`, any reward callable, or a spec ``make`` accepts
            (a name, ``{name: weight}``).
        prompts: the N prompts (texts, or message lists for a chat).
        completions: the N completions, aligned with ``prompts`` (texts, or message lists for a chat).
        fields: per-sample fields passed as keyword arguments, each a sequence of N values (e.g.
            ``{"answer": ["4", "7"]}``); None for none.
        fallback: None (default) raises :class:`RewardError` on any failure. A finite float is used instead of the
            failed scores, with a :class:`RewardWarning`: for every sample when the reward raised or returned an
            unusable batch, for the bad indices only when single values were NaN/inf/None/non-numbers/too large
            for a float. :class:`RewardInputError` (a missing field, a bad option) is never replaced.
        completion_ids: the N completions' token ids (lists of ints), passed as ``completion_ids``; left out of
            the call when None.
        trainer_state: passed as ``trainer_state`` (the envs pass a :class:`~textgym.rewards.RewardState`); left
            out of the call when None.

    Returns:
        ``(total, components)``: ``total`` is float64 of shape ``[N]``; ``components`` maps each component name to
        its raw (unweighted) float64 scores: the parts of a :class:`CombinedReward`, else ``{name: total}``. In a
        combination a component that returned ``None`` for a sample (TRL's "not applicable") has NaN there and is
        left out of that sample's weighted sum; a sample for which every component returned None has no score:
        the fallback, or a :class:`RewardError`.

    Raises:
        RewardError: the reward raised (the original exception is chained) or returned invalid values.
        ValueError: ``prompts``, ``completions`` and ``fields`` are not aligned, or a bad ``fallback``.
    """
    prompts, completions = list(prompts), list(completions)
    fields = dict(fields or {})
    _check_batch(prompts, completions, fields)
    check_fallback(fallback, "fallback")
    inputs: dict[str, Any] = {"prompts": prompts, "completions": completions}
    if completion_ids is not None:
        completion_ids = [list(map(int, ids)) for ids in completion_ids]
        if len(completion_ids) != len(completions):
            raise ValueError(f"score() got {len(completion_ids)} completion_ids for {len(completions)} completions.")
        inputs["completion_ids"] = completion_ids
    if trainer_state is not None:
        inputs["trainer_state"] = trainer_state
    inputs.update(fields)
    if not isinstance(reward, CombinedReward):
        name = reward_name(reward)
        total = evaluate_all([(name, reward)], inputs, fallback, allow_none=False)[name]
        return total, {name: total.copy()}
    components = evaluate_all(reward.named_rewards, inputs, fallback, allow_none=True)
    n = len(completions)
    total = np.zeros(n, dtype=np.float64)
    scored = np.zeros(n, dtype=bool)
    for (name, _), weight in zip(reward.named_rewards, reward.weights):
        applicable = ~np.isnan(components[name])  # NaN here only ever means None: real NaNs failed validation
        total[applicable] += weight * components[name][applicable]
        scored |= applicable
    if not scored.all():
        unscored = np.flatnonzero(~scored).tolist()
        first = unscored[0]
        message = (
            f"Every component of {reward!r} returned None (not applicable) for sample {first} (completion "
            f"{preview(completions[first])}), so it has no score"
            + (f" (and {len(unscored) - 1} more such sample(s))" if len(unscored) > 1 else "")
            + ". TRL drops such a completion from its baseline; an env must return a number: make at least one "
            f"component score every sample, {_FALLBACK_HINT}."
        )
        if fallback is None:
            raise RewardError(message)
        warnings.warn(f"{message} Used fallback {fallback} for {len(unscored)} of {n} samples.", RewardWarning,
                      stacklevel=2)
        total[unscored] = float(fallback)
    return total, components


def check_fallback(value: Any, arg: str = "reward_fallback") -> None:
    """Raise ``ValueError`` unless ``value`` is None or a finite float (a NaN fallback would hide every failure)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(
            f"{arg} must be None or a finite float, got {value!r}: it replaces a reward that failed, so it must be "
            f"a usable score (e.g. {arg}=0.0). Leave it None to raise on failures instead."
        )


def evaluate(
    reward: Any,
    name: str,
    prompts: list[Any],
    completions: list[Any],
    fields: dict[str, Sequence[Any]],
    fallback: float | None = None,
) -> np.ndarray:
    """Call one reward on the batch and return its validated float64 scores (see :func:`score`; None is invalid)."""
    inputs = {"prompts": list(prompts), "completions": list(completions), **fields}
    return evaluate_all([(name, reward)], inputs, fallback, allow_none=False)[name]


def evaluate_all(
    named_rewards: Sequence[tuple[str, Any]],
    inputs: dict[str, Any],
    fallback: float | None,
    allow_none: bool,
) -> dict[str, np.ndarray]:
    """Call every reward on ``inputs`` (each on its own copies), await the async ones together, validate each.

    Returns:
        name -> float64 scores; with ``allow_none`` a None entry becomes NaN (every other invalid value is an
        error or the fallback).
    """
    n = len(inputs["completions"])
    if n == 0:
        return {name: np.zeros(0, dtype=np.float64) for name, _ in named_rewards}
    outcomes: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = []
    for name, reward in named_rewards:
        try:
            result = call_reward(reward, name, inputs)
        except RewardInputError:
            for _, awaitable in pending:  # never awaited: close them quietly
                getattr(awaitable, "close", lambda: None)()
            raise  # a data/configuration bug: a fallback would hide it behind every single reward
        except Exception as e:
            outcomes[name] = e
            continue
        if inspect.isawaitable(result):
            pending.append((name, result))
        else:
            outcomes[name] = result
    if pending:
        for (name, _), result in zip(pending, run_awaitables([a for _, a in pending])):
            outcomes[name] = result
    return {
        name: _check_result(outcomes[name], name, inputs, fallback, allow_none) for name, _ in named_rewards
    }


def _check_result(
    result: Any, name: str, inputs: dict[str, Any], fallback: float | None, allow_none: bool
) -> np.ndarray:
    """Validated float64 scores from what one reward returned (or the exception it raised)."""
    prompts, completions = inputs["prompts"], inputs["completions"]
    n = len(completions)
    if isinstance(result, RewardInputError):
        raise result
    if isinstance(result, BaseException):
        e = result
        if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit from an awaited reward: not ours to eat
            raise e
        if isinstance(e, RewardError) and fallback is None:
            raise e  # already names the reward and the fix (e.g. a reward that calls score() itself)
        hint = ""
        if isinstance(e, TypeError) and "unexpected keyword argument" in str(e):
            fields = sorted(k for k in inputs if k not in ("prompts", "completions"))
            hint = (
                f" textgym passes the inputs {fields} by keyword: add **kwargs to the reward's signature, e.g. "
                "`def my_reward(completions, **kwargs)`."
            )
        message = (
            f"Reward {name!r} raised {type(e).__name__}: {e} while scoring a batch of {n} completion(s) (first "
            f"sample: prompt {preview(prompts[0])}, completion {preview(completions[0])}).{hint} The original "
            f"traceback is chained above. Fix the reward, {_FALLBACK_HINT}."
        )
        if fallback is None:
            raise RewardError(message) from e
        warnings.warn(f"{message} Used fallback {fallback} for all {n} samples.", RewardWarning, stacklevel=4)
        return np.full(n, float(fallback), dtype=np.float64)
    try:
        values, problems = _validate(result, n, allow_none)
    except _BatchProblem as e:
        message = (
            f"Reward {name!r} {e}. A reward must return one finite float per completion, in the order of "
            f"`completions` (a list, tuple, or 1-D array of length {n})."
        )
        if fallback is None:
            raise RewardError(message) from None
        warnings.warn(f"{message} Used fallback {fallback} for all {n} samples.", RewardWarning, stacklevel=4)
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
            f"{message} Used fallback {fallback} for {len(problems)} of {n} samples.", RewardWarning, stacklevel=4
        )
        values[[i for i, _ in problems]] = float(fallback)
    return values


def _check_batch(prompts: list[Any], completions: list[Any], fields: dict[str, Sequence[Any]]) -> None:
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(f"score() got {len(prompts)} prompts for {n} completions; they must be aligned.")
    for key, values in fields.items():
        if key in STANDARD_INPUTS:
            raise ValueError(
                f"A per-sample field may not be named {key!r}: textgym passes every reward {', '.join(STANDARD_INPUTS)} "
                f"by keyword. Rename the field."
            )
        try:
            length = len(values)
        except TypeError:
            raise ValueError(
                f"Field {key!r} must be a sequence with one value per sample, got {type(values).__name__}."
            ) from None
        if length != n:
            raise ValueError(f"Field {key!r} has {length} values for {n} completions; fields must be aligned.")


def _validate(result: Any, n: int, allow_none: bool = False) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """float64 values (NaN where invalid, or None with ``allow_none``) and the (index, what) of each invalid value;
    _BatchProblem if unusable."""
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
            if not allow_none:
                problems.append((i, "None (TRL's 'not applicable'; with no other reward to score it, textgym needs "
                                    "a number)"))
        elif isinstance(item, numbers.Real):
            try:
                value = float(item)
            except OverflowError:  # an int beyond float range, e.g. 10**400: as unusable as inf
                problems.append((i, f"a number too large for a float ({preview(item, 20)})"))
                continue
            values[i] = value
            if not math.isfinite(value):
                problems.append((i, _nonfinite(value)))
        else:
            problems.append((i, f"a {type(item).__name__} ({preview(item, 20)}), not a number"))
    return values, problems


def _nonfinite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
