"""LoRA through peft, with the reference policy being the same weights with the adapters switched off.

``TokenPPO(lora=...)`` wraps the policy's transformer in a ``peft.PeftModel``: only the adapters (and the value
head) train, and the frozen reference log-probs come from the same module under ``disable_adapter()``, so no
second copy of the model is held in memory (TRL's trick for PEFT).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from torch import nn

DEFAULT_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear"}


def _find_transformer(model: nn.Module) -> tuple[nn.Module, str]:
    """The Hugging Face ``PreTrainedModel`` inside an ``ActorCriticLM`` and the attribute that holds it."""
    from transformers import PreTrainedModel

    for name, child in model.named_children():
        if isinstance(child, PreTrainedModel) or type(child).__name__.startswith("Peft"):
            return child, name
    raise TypeError(
        f"{type(model).__name__} holds no Hugging Face PreTrainedModel as a direct child; LoRA needs the "
        "ActorCriticLM from agents.models (or a module that keeps its transformer as an attribute)."
    )


def apply_lora(model: nn.Module, lora: Any) -> nn.Module:
    """Wrap ``model``'s transformer with LoRA adapters in place; returns ``model``.

    Args:
        model: an ``ActorCriticLM``.
        lora: ``True`` (defaults: ``DEFAULT_LORA``), a dict of ``peft.LoraConfig`` arguments merged over the
            defaults, or a ``peft.LoraConfig``.
    """
    try:
        import peft
    except ImportError as e:  # pragma: no cover - peft is a dependency
        raise ImportError("lora=... needs the `peft` package: pip install peft") from e
    if lora is True:
        config = peft.LoraConfig(**DEFAULT_LORA)
    elif isinstance(lora, dict):
        config = peft.LoraConfig(**{**DEFAULT_LORA, **lora})
    elif isinstance(lora, peft.LoraConfig):
        config = lora
    else:
        raise TypeError(f"lora must be True, a dict of peft.LoraConfig arguments or a peft.LoraConfig, got {lora!r}.")
    transformer, name = _find_transformer(model)
    if isinstance(transformer, peft.PeftModel):
        raise ValueError("This policy already has LoRA adapters; pass lora=None to train them as they are.")
    setattr(model, name, peft.get_peft_model(transformer, config))
    return model


def has_lora(model: nn.Module) -> bool:
    try:
        import peft
    except ImportError:  # pragma: no cover
        return False
    return any(isinstance(child, peft.PeftModel) for child in model.children())


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, ``model`` computes the reference (pre-LoRA) policy."""
    transformer, _ = _find_transformer(model)
    with transformer.disable_adapter():
        yield model


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with LoRA merged into the base weights (a plain ``ActorCriticLM`` to save)."""
    import copy

    clone = copy.deepcopy(model)
    transformer, name = _find_transformer(clone)
    if hasattr(transformer, "merge_and_unload"):
        setattr(clone, name, transformer.merge_and_unload())
    return clone
