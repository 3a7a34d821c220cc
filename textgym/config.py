"""Training configs: per-task YAML files shipped in ``textgym/configs/`` (rl-zoo style), overridable per field.

A config is a nested dict with four sections, each validated against the code that consumes it:

* top level: ``env`` (id), ``model`` (``"default"`` or a local model dir), ``model_size`` (of the default
  model), ``tokenizer``, ``seed``, ``output_dir``, ``num_envs``, ``total_timesteps``, ``device``,
  ``eval_episodes``, ``checkpoint_every`` (iterations).
* ``env_kwargs``: extra ``gym.make_vec`` keyword arguments (``max_new_tokens``...).
* ``sft``: the supervised warm start's keyword arguments.
* ``ppo``: the trainer's keyword arguments.

This module knows the file format and the top level; the ``sft`` and ``ppo`` sections are checked by the code
that consumes them (``textgym train`` checks ``ppo`` with ``agents.ppo.config.check_ppo_section``), or by
:func:`validate_config` against any callable's signature.

Command-line overrides are ``dotted.key=value`` strings parsed as YAML scalars (``ppo.learning_rate=3e-5``,
``sft.steps=0``, ``env_kwargs.max_new_tokens=16``).
"""

from __future__ import annotations

import copy
import difflib
import inspect
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"

#: Top-level keys and the types they accept.
TOP_LEVEL: dict[str, tuple[type, ...]] = {
    "env": (str,),
    "model": (str,),
    "model_size": (str,),
    "device": (str,),
    "eval_episodes": (int,),
    "checkpoint_every": (int,),
    "tokenizer": (str, type(None)),
    "seed": (int,),
    "output_dir": (str, type(None)),
    "num_envs": (int,),
    "total_timesteps": (int,),
    "env_kwargs": (dict,),
    "sft": (dict,),
    "ppo": (dict,),
}


#: Top-level integers that must be >= 1 (``checkpoint_every`` may be 0: no periodic checkpoints).
POSITIVE = ("num_envs", "total_timesteps", "eval_episodes")

#: Keyword arguments that the run sets from the top level or itself, so a section may not set them.
SET_ELSEWHERE = {"seed", "num_envs", "env_kwargs", "tensorboard_log", "device", "log", "verbose"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-5`` (no dot) as a float, as people write learning rates."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the fix."""


def available_configs() -> dict[str, Path]:
    """Shipped config name (file stem, e.g. ``"sentiment"``) -> path."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def load_config(name_or_path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Load a shipped config by name (``"sentiment"``) or a YAML file by path, then apply ``overrides``."""
    path = Path(name_or_path)
    if not path.suffix:
        shipped = available_configs()
        if str(name_or_path) not in shipped:
            close = difflib.get_close_matches(str(name_or_path), shipped, n=3)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"No config named {str(name_or_path)!r}.{hint} Shipped configs: {', '.join(shipped)}; "
                "or pass a path to a .yaml file."
            )
        path = shipped[str(name_or_path)]
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist.")
    try:
        config = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML: {e}") from e
    if not isinstance(config, dict):
        raise ConfigError(f"Config file {str(path)!r} must hold a mapping of keys to values, got {type(config).__name__}.")
    return apply_overrides(config, overrides)


def parse_scalar(raw: str, context: str = "") -> Any:
    """A YAML scalar, except that ``3e-4`` is a float (YAML 1.1 would read it as a string)."""
    try:
        return yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"Override {context!r}: cannot parse value {raw!r}: {e}") from e


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with each ``dotted.key=value`` override applied (values parsed as YAML)."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override {item!r} must look like key=value, e.g. ppo.learning_rate=3e-5.")
        key, raw = item.split("=", 1)
        value = parse_scalar(raw, item)
        parts = key.strip().split(".")
        node = config
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override {item!r}: {part!r} is not a section.")
        node[parts[-1]] = value
    return config


def check_keys(section: str, given: dict[str, Any], allowed: Iterable[str]) -> None:
    """A :class:`ConfigError` for the first key of ``given`` not in ``allowed``, with the closest allowed one."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            where = f"in section {section!r}" if section else "at the top level"
            raise ConfigError(f"Unknown config key {key!r} {where}.{hint} Valid keys: {', '.join(sorted(allowed))}.")


def signature_defaults(fn: Callable) -> dict[str, Any]:
    """Parameter name -> default for a callable's keyword parameters (``inspect.Parameter.empty`` if none)."""
    params = inspect.signature(fn).parameters
    return {
        name: p.default
        for name, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in ("self",)
    }


def check_type(section: str, key: str, value: Any, default: Any) -> None:
    """Values must have the default's type (ints are accepted where floats are expected)."""
    if default is inspect.Parameter.empty or default is None or value is None:
        return
    expected = type(default)
    ok = isinstance(value, expected) or (expected is float and isinstance(value, int) and not isinstance(value, bool))
    if expected is int and isinstance(value, bool):
        ok = False
    if not ok:
        raise ConfigError(
            f"Config key {section + '.' if section else ''}{key} must be a {expected.__name__} "
            f"(like its default {default!r}), got {value!r} ({type(value).__name__})."
        )


def validate_config(config: dict[str, Any], ppo_class: Callable | None = None, sft_class: Callable | None = None) -> None:
    """Raise :class:`ConfigError` on an unknown key or a wrongly typed value anywhere in ``config``."""
    check_keys("", config, TOP_LEVEL)
    for key, value in config.items():
        if not isinstance(value, TOP_LEVEL[key]):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in TOP_LEVEL[key])
            raise ConfigError(f"Config key {key} must be a {names}, got {value!r} ({type(value).__name__}).")
        if isinstance(value, bool) and TOP_LEVEL[key] == (int,):
            raise ConfigError(f"Config key {key} must be an int, got {value!r} (bool).")
        if (key in POSITIVE and value < 1) or (key in ("checkpoint_every", "seed") and value < 0):
            bound = "a positive integer" if key in POSITIVE else "an integer >= 0"
            raise ConfigError(f"Config key {key} must be {bound}, got {value!r}.")
    for section, cls in (("ppo", ppo_class), ("sft", sft_class)):
        if cls is None or section not in config:
            continue
        defaults = signature_defaults(cls)
        allowed = [k for k, d in defaults.items() if d is not inspect.Parameter.empty and k not in SET_ELSEWHERE]
        check_keys(section, config[section], allowed)
        for key, value in config[section].items():
            check_type(section, key, value, defaults[key])


def save_config(config: dict[str, Any], path: str | Path) -> None:
    """Write the resolved config (what a run actually used) as YAML."""
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
