"""Reward registry: names -> reward callables or factory classes, their names, and entry-point discovery
(:func:`textgym.rewards.make` builds rewards from them: ``textgym/rewards/factory.py``).

Third-party packages add rewards without any import on the user's side by declaring an entry point::

    # pyproject.toml of the plugin
    [project.entry-points."textgym.rewards"]
    toxicity = "my_plugin.rewards:ToxicityReward"

The group is read once, on the first ``make`` or :func:`list_rewards`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import warnings
from importlib import metadata
from typing import Any

from textgym.rewards.base import RewardFunction, RewardWarning
from textgym.rewards.calling import STANDARD_INPUTS, call_plan

ENTRY_POINT_GROUP = "textgym.rewards"

_REGISTRY: dict[str, Any] = {}
_entry_points_loaded = False
_NAME_ATTR = "_textgym_reward_name"  # set by make() on the objects it builds, read by reward_name()


def register(name: str, reward: Any = None, *, overwrite: bool = False) -> Any:
    """Register a reward under ``name`` so that ``make(name)`` (and env ``reward=name``) finds it.

    Args:
        name: the registry name, e.g. ``"brevity"``.
        reward: a reward callable (called by keyword as TRL does: ``reward(prompts=..., completions=...,
            completion_ids=..., trainer_state=..., **fields)``; ``def f(completions, **kwargs)`` is enough) or a
            factory class whose instances are rewards (its constructor options become ``make(name, **options)``). Leave it out to use
            ``register`` as a decorator: ``@register("brevity")``.
        overwrite: replace an existing registration of ``name`` instead of raising.

    Returns:
        ``reward`` (so the decorator leaves the function or class unchanged).

    Raises:
        ValueError: ``name`` is taken (by a different object) and ``overwrite`` is False.
        TypeError: ``name`` is not a non-empty string or ``reward`` is not callable.
    """
    if reward is None:
        return functools.partial(register, name, overwrite=overwrite)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"A reward name must be a non-empty string, got {name!r}.")
    if not callable(reward):
        raise TypeError(
            f"register({name!r}, ...) needs a callable reward(completions, **kwargs) or a factory class, "
            f"got {type(reward).__name__}: {reward!r}."
        )
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not reward and not overwrite:
        raise ValueError(
            f"A reward named {name!r} is already registered ({_describe(existing)}). Pick another name, or pass "
            f"overwrite=True to replace it."
        )
    _REGISTRY[name] = reward
    return reward


def list_rewards() -> list[str]:
    """Every registered reward name (built-ins, user registrations and installed plugins), sorted."""
    load_entry_points()
    return sorted(_REGISTRY)


def reward_name(reward: Any) -> str:
    """The name used for ``reward`` in errors and in ``reward_components``.

    Its registered name if it is (or was built by ``make`` from, or is an instance of) a registered reward; else
    the function's or class's ``__qualname__``.
    """
    tagged = getattr(reward, _NAME_ATTR, None)
    if isinstance(tagged, str):
        return tagged
    for name, registered in _REGISTRY.items():
        if registered is reward or (isinstance(registered, type) and type(reward) is registered):
            return name
    if isinstance(reward, functools.partial):
        return reward_name(reward.func)
    for obj in (reward, type(reward)):
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(qualname, str):
            return qualname
    return repr(reward)


def load_entry_points(force: bool = False) -> None:
    """Register every reward declared in the ``textgym.rewards`` entry-point group (once; ``force`` re-reads).

    A plugin that fails to import (whatever it raises, ``SystemExit`` included, short of ``KeyboardInterrupt``), or
    that declares something that is not callable, gives a :class:`RewardWarning` naming the distribution and the
    entry point, and is skipped. A plugin never replaces
    a name that is already registered (built-ins included): it is skipped with a warning.
    """
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return
    _entry_points_loaded = True
    seen: set[tuple[str, str]] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in seen:  # the same distribution found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an unknown distribution"
        where = f"entry point {ep.name!r} = {ep.value!r} of distribution {dist!r} (group {ENTRY_POINT_GROUP!r})"
        try:
            obj = ep.load()
        except KeyboardInterrupt:
            raise  # the user's Ctrl-C, not the plugin's fault
        except BaseException as e:  # a broken plugin must not break textgym: SystemExit at import included
            warnings.warn(
                f"textgym skipped the reward {where}: loading it raised {type(e).__name__}: {e}. "
                f"Fix or uninstall {dist!r}.",
                RewardWarning,
                stacklevel=2,
            )
            continue
        if not callable(obj):
            warnings.warn(
                f"textgym skipped the reward {where}: it points to a {type(obj).__name__}, not a reward callable or "
                f"factory class.",
                RewardWarning,
                stacklevel=2,
            )
            continue
        existing = _REGISTRY.get(ep.name)
        if existing is not None and existing is not obj:
            warnings.warn(
                f"textgym skipped the reward {where}: the name is already registered ({_describe(existing)}).",
                RewardWarning,
                stacklevel=2,
            )
            continue
        _REGISTRY[ep.name] = obj


# ---------------------------------------------------------------------------------------------------- helpers
def lookup(name: str) -> Any:
    load_entry_points()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown reward {name!r}.{hint} Registered rewards: {', '.join(sorted(_REGISTRY))}. "
        f"To add your own, pass the function itself (reward=my_reward), or register it first: "
        f"textgym.rewards.register({name!r}, my_reward) (or expose it in the {ENTRY_POINT_GROUP!r} entry-point group)."
    )


def build(name: str, factory: Any, kwargs: dict[str, Any]) -> RewardFunction:
    """Instantiate a factory class (or bind a function's options) with errors that name the accepted parameters."""
    if isinstance(factory, type):
        signature = _signature(factory)
        if signature is not None:
            try:
                signature.bind(**kwargs)
            except TypeError as e:
                raise TypeError(
                    f"Reward {name!r} ({factory.__qualname__}) cannot take {format_kwargs(kwargs)}: {e}. "
                    f"Accepted parameters: {_fmt_params(signature)}."
                ) from None
        reward = factory(**kwargs)
        check_reward_signature(reward, name)
        _tag(reward, name)
        return reward
    if not kwargs:
        check_reward_signature(factory, name)
        return factory
    signature = _signature(factory)
    if signature is not None:
        params = signature.parameters
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        reserved = [k for k in kwargs if k in STANDARD_INPUTS]
        unknown = [k for k in kwargs if k not in params and not has_var_kw]
        if reserved or unknown:
            raise TypeError(
                f"Reward {name!r} does not accept {', '.join(repr(k) for k in reserved + unknown)}. Accepted "
                f"parameters: {_fmt_params(signature, skip=STANDARD_INPUTS)}."
            )
    bound = functools.partial(factory, **kwargs)
    _tag(bound, name)
    return bound


def check_reward_signature(reward: Any, name: str) -> None:
    """Fail at construction, not mid-training, when a callable can never receive the completions.

    Parameters named after record fields (``answer``) are checked against the records later, when an env is built
    (:func:`textgym.rewards.calling.check_reward_inputs`).
    """
    signature = _signature(reward)
    if signature is None:
        return
    if not call_plan(reward, STANDARD_INPUTS).sees_completions:
        short = name.split(".")[-1]
        short = "my_reward" if short.startswith("<") else short  # a lambda
        raise TypeError(
            f"Reward {name!r} has the signature {signature}, so it never receives the completions: textgym "
            f"calls rewards by keyword, as TRL does: reward(prompts=..., completions=..., completion_ids=..., "
            f"trainer_state=..., **record_fields). Define it as `def {short}(completions, **kwargs)` (or "
            f"`def {short}(prompts, completions, **kwargs)`) returning one float per completion."
        )


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return None


def _tag(obj: Any, name: str) -> None:
    try:
        setattr(obj, _NAME_ATTR, name)
    except (AttributeError, TypeError):  # objects with __slots__: reward_name() falls back to the registry
        pass


def format_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _fmt_params(signature: inspect.Signature, skip: tuple[str, ...] = ()) -> str:
    params = [str(p) for p in signature.parameters.values() if p.name not in skip]
    return ", ".join(params) if params else "none"


def _describe(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"

