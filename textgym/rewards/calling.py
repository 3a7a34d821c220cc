"""How textgym calls a reward: by keyword, the way TRL's ``GRPOTrainer`` does, so TRL reward functions plug in.

Every reward call is ``reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields)``
where ``fields`` are the per-sample fields of the prompt records (each a list aligned with ``completions``).
What a reward receives depends on its signature, read once per call with :func:`inspect.signature`:

* a function with ``**kwargs`` receives everything (TRL's convention);
* a function without ``**kwargs`` receives only the inputs it names, so ``def f(completions, answer)`` works;
* a required parameter that no input provides is a :class:`~textgym.rewards.RewardInputError` naming the
  parameter and the available fields (at ``make`` time in the envs, see :func:`textgym.rewards.factory.check_reward_inputs`);
* textgym's older positional convention still works: when a function names neither ``prompts`` nor
  ``completions`` and its first two positional parameters match no input (``lambda p, c, **kw: ...``), they
  receive the prompts and the completions, by position;
* a callable without an inspectable signature receives everything by keyword.

Each call gets fresh copies of its inputs (lists copied, mutable record values deep-copied), so a reward that
mutates what it was given cannot change the prompt source nor what the next reward of a combination sees.
``async def`` rewards (anything returning an awaitable) are awaited; the awaitables of one batch run
concurrently (:func:`run_awaitables`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from textgym.rewards.base import RewardInputError

#: The inputs textgym passes every reward besides the record fields; a record field may not use these names.
STANDARD_INPUTS = ("prompts", "completions", "completion_ids", "trainer_state")

_P = inspect.Parameter


@dataclass(frozen=True)
class CallPlan:
    """How to call one reward: which inputs go by position, which by keyword, and which it lacks.

    Attributes:
        positional: input names passed by position, in order.
        keywords: input names passed by keyword; None means every available input not passed by position
            (the reward has ``**kwargs``).
        missing: required parameters that no available input provides.
        sees_completions: whether the completions reach the reward at all.
    """

    positional: tuple[str, ...]
    keywords: tuple[str, ...] | None
    missing: tuple[str, ...]
    sees_completions: bool


def call_plan(reward: Any, available: Iterable[str]) -> CallPlan:
    """The :class:`CallPlan` of ``reward`` when the inputs named ``available`` exist (see the module docstring)."""
    available = set(available)
    signature = _signature(reward)
    if signature is None:
        return CallPlan((), None, (), True)
    params = list(signature.parameters.values())
    names = {p.name for p in params}
    has_var_kw = any(p.kind is _P.VAR_KEYWORD for p in params)
    leading = []
    for p in params:
        if p.kind not in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD):
            break
        leading.append(p)
    legacy = (
        "prompts" not in names
        and "completions" not in names
        and len(leading) >= 2
        and all(p.name not in available and p.name not in STANDARD_INPUTS for p in leading[:2])
    )
    positional: list[str] = []
    consumed: set[str] = set()
    missing: list[str] = []
    if legacy:  # textgym's original convention: reward(prompts, completions, **fields)
        positional = ["prompts", "completions"]
        consumed = {leading[0].name, leading[1].name}
    for p in params:
        if p.name in consumed or p.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD):
            continue
        if p.kind is _P.POSITIONAL_ONLY:  # e.g. def f(prompts, completions, /): by position, by its name
            if p.name in available:
                positional.append(p.name)
                consumed.add(p.name)
            elif p.default is _P.empty:
                missing.append(p.name)
            else:
                break  # a later positional-only parameter cannot be reached past a default one
    keywords: tuple[str, ...] | None
    if has_var_kw:
        keywords = None
    else:
        keywords = tuple(
            p.name
            for p in params
            if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY) and p.name not in consumed and p.name in available
        )
    missing += [
        p.name
        for p in params
        if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
        and p.name not in consumed
        and p.name not in available
        and p.default is _P.empty
    ]
    sees = legacy or has_var_kw or "completions" in positional or (keywords is not None and "completions" in keywords)
    return CallPlan(tuple(positional), keywords, tuple(missing), sees)


def call_reward(reward: Any, name: str, inputs: dict[str, Any]) -> Any:
    """Call ``reward`` on fresh copies of ``inputs`` (name -> value) following its :class:`CallPlan`.

    Returns what the reward returned (an awaitable for an ``async def`` reward: the caller awaits it).

    Raises:
        RewardInputError: the reward needs an input the batch does not have, or never receives the completions.
    """
    plan = call_plan(reward, inputs)
    if plan.missing or not plan.sees_completions:
        raise RewardInputError(missing_input_message(reward, name, plan, inputs))
    args = [_input(inputs, k) for k in plan.positional]
    names = [k for k in inputs if k not in plan.positional] if plan.keywords is None else plan.keywords
    kwargs = {k: _input(inputs, k) for k in names}
    return reward(*args, **kwargs)


def _input(inputs: dict[str, Any], key: str) -> Any:
    # trainer_state is the caller's state object, shared as TRL shares it (textgym's RewardState is frozen);
    # copying a TRL TrainerState would copy its whole log history on every call.
    return inputs[key] if key == "trainer_state" else fresh_copy(inputs[key])


def fresh_copy(value: Any) -> Any:
    """A copy of one input that the reward may mutate freely: lists copied, mutable items deep-copied."""
    if isinstance(value, list):
        if all(_immutable(v) for v in value):
            return list(value)
        if all(isinstance(v, list) and all(_immutable(x) for x in v) for v in value):  # ids, references
            return [list(v) for v in value]
        return copy.deepcopy(value)
    if isinstance(value, np.ndarray):
        return value.copy()
    if _immutable(value) or _is_frozen_dataclass(value):
        return value
    return copy.deepcopy(value)


def run_awaitables(awaitables: Sequence[Any]) -> list[Any]:
    """Await ``awaitables`` concurrently (:func:`asyncio.gather`); each result is a value or the exception it raised.

    Runs a fresh event loop (:func:`asyncio.run`); inside a running loop (a notebook, an async app) it runs that
    fresh loop on a worker thread, since a loop cannot be re-entered.
    """

    async def gather() -> list[Any]:
        return await asyncio.gather(*awaitables, return_exceptions=True)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(gather())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, gather()).result()


# ---------------------------------------------------------------------------------------------------- helpers
def missing_input_message(reward: Any, name: str, plan: CallPlan, inputs: dict[str, Any], source: str = "the batch") -> str:
    fields = sorted(k for k in inputs if k not in STANDARD_INPUTS)
    signature = _signature(reward)
    shown = f"{name.split('.')[-1]}{signature}" if signature is not None else name
    if plan.missing:
        field = plan.missing[0]
        if field in ("prompt", "completion", "completion_id"):
            return (
                f"Reward {name!r} ({shown}) has a parameter {field!r}, which textgym does not pass: rewards are "
                f"batched and called by keyword, as TRL does: reward(prompts=..., completions=..., "
                f"completion_ids=..., trainer_state=..., **record_fields). Rename it {field + 's'!r} (a list, one "
                f"value per sample)."
            )
        if field in STANDARD_INPUTS:
            what = f"the input {field!r}, which this caller does not provide"
        else:
            what = f"the per-sample field {field!r}"
        return (
            f"Reward {name!r} ({shown}) needs {what}, but {source} only carry the fields {fields or 'none'} "
            f"(record keys: {sorted(['prompt', *fields])}). textgym calls rewards by keyword, as TRL does: "
            f"reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **record_fields). Add a "
            f"{field!r} key to every prompt record, or give the parameter a default."
        )
    return (
        f"Reward {name!r} ({shown}) never receives the completions: textgym calls rewards by keyword, as TRL does: "
        f"reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **record_fields). Name a "
        f"parameter `completions` (or add **kwargs), e.g. `def {name.split('.')[-1]}(completions, **kwargs)`."
    )


def _immutable(value: Any) -> bool:
    if value is None or isinstance(value, (str, bytes, numbers.Number, np.generic)):
        return True
    return isinstance(value, tuple) and all(_immutable(v) for v in value)


def _is_frozen_dataclass(value: Any) -> bool:
    params = getattr(type(value), "__dataclass_params__", None)
    return bool(params is not None and params.frozen)


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return None
