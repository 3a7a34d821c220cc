"""Where a warm-started model comes from, in one argument: a model directory, a ``textgym train`` run directory, or
a shipped config's supervised warm start.

``TransformerPolicy(model=...)`` / ``policy_kwargs={"pretrained": ...}`` and the KL reference of
:class:`agents.sb3_reference.ReferenceKLReward` all go through :func:`resolve_model`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from agents.models import ActorCriticLM

#: the prefix of a shipped config's warm start, e.g. ``"warm-start:sentiment"``
WARM_START_PREFIX = "warm-start:"


def resolve_model(spec: Any, role: str = "policy", critic: str = "shared", trust_remote_code: bool = False) -> ActorCriticLM:
    """The ``ActorCriticLM`` that ``spec`` names.

    Args:
        spec: one of

            * an ``ActorCriticLM`` (as it is for ``role="policy"``; a frozen-to-be *copy* for ``"reference"``, so
              the reference never shares weights with the policy it regularises);
            * a local Hugging Face model directory (``config.json`` and safetensors weights);
            * a ``textgym train`` run directory (``config.yaml`` beside ``reference/``/``final/``): for
              ``role="policy"`` its trained ``final/policy`` when the run finished, else its warm start
              ``reference/``; for ``role="reference"`` always ``reference/``. Pass ``runs/x/reference`` to start a
              policy from the warm start of a finished run;
            * ``"warm-start:<config>"``: the supervised warm start of a shipped config (``sentiment``,
              ``arithmetic``, ...) or a YAML path, computed once and cached under ``$TEXTGYM_CACHE``
              (:func:`agents.commands.warm_started_model`, the warm start ``textgym train`` uses).
        role: ``"policy"`` or ``"reference"``.
        critic: ``"shared"`` or ``"separate"`` (policies only).
        trust_remote_code: passed to ``from_pretrained``.
    """
    if role not in ("policy", "reference"):
        raise ValueError(f"role must be 'policy' or 'reference', got {role!r}.")
    if isinstance(spec, ActorCriticLM):
        return copy.deepcopy(spec) if role == "reference" else spec
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            f"A pretrained model is a directory, a run directory, 'warm-start:<config>' or an ActorCriticLM; got "
            f"{type(spec).__name__}."
        )
    if str(spec).startswith(WARM_START_PREFIX):
        return _shipped_warm_start(str(spec)[len(WARM_START_PREFIX):])
    directory = Path(spec).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{str(spec)!r} is not a local directory. Pass a Hugging Face model directory, a `textgym train` run "
            f"directory, or '{WARM_START_PREFIX}<config>' (e.g. '{WARM_START_PREFIX}sentiment'); textgym never "
            "downloads models."
        )
    directory = model_directory(directory, role)
    return ActorCriticLM.from_pretrained(directory, critic=critic if role == "policy" else "shared",
                                         trust_remote_code=trust_remote_code)


def model_directory(directory: Path, role: str = "policy") -> Path:
    """The model directory inside a run directory (see :func:`resolve_model`); any other directory as it is."""
    if not (directory / "config.yaml").is_file() or (directory / "config.json").is_file():
        return directory
    reference, final = directory / "reference", directory / "final" / "policy"
    if role == "policy" and (final / "config.json").is_file():
        return final
    if (reference / "config.json").is_file():
        return reference
    raise FileNotFoundError(
        f"{directory} is a run directory without a model: neither reference/ (written after the warm start) nor "
        "final/policy/ (written when the run finishes). Let `textgym train` get past its warm start, or pass a "
        "model directory."
    )


def _shipped_warm_start(name: str) -> ActorCriticLM:
    from agents.commands import make_train_env, warm_started_model
    from textgym.config import load_config

    if not name:
        raise ValueError(f"'{WARM_START_PREFIX}' needs a config after it, e.g. '{WARM_START_PREFIX}sentiment'.")
    config = load_config(name)
    env = make_train_env({**config, "num_envs": 1})
    try:
        return warm_started_model(config, env, log=lambda *args, **kwargs: None)
    finally:
        env.close()
