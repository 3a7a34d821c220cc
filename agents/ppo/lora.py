"""LoRA through peft, with the reference policy being the same weights with the adapters switched off.

``TokenPPO(lora=...)`` injects peft LoRA layers into the policy's transformer *in place* (the module tree of
the ``ActorCriticLM`` is unchanged, so its forward still works): only the adapters and the value head train,
and the frozen reference log-probs come from the same modules with the adapters disabled, so no second copy
of the model is held in memory (TRL's trick for PEFT).
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Any, Iterator

from torch import nn

DEFAULT_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear"}


def _tuner_layers(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """``(parent, attribute, layer)`` for every peft adapter layer inside ``model``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, BaseTunerLayer):
                found.append((parent, name, child))
    return found


def apply_lora(model: nn.Module, lora: Any) -> nn.Module:
    """Add LoRA adapters to ``model.lm`` (the transformer of an ``ActorCriticLM``) in place; returns ``model``.

    Args:
        model: an ``ActorCriticLM`` (anything with the Hugging Face model in ``.lm``).
        lora: ``True`` (defaults: ``DEFAULT_LORA``), a dict of ``peft.LoraConfig`` arguments merged over the
            defaults, or a ``peft.LoraConfig``.
    """
    try:
        import peft
    except ImportError as e:  # pragma: no cover - peft is the optional `lora` extra
        raise ImportError("lora=... needs the `peft` package: pip install peft") from e
    if lora is True:
        config = peft.LoraConfig(**DEFAULT_LORA)
    elif isinstance(lora, dict):
        config = peft.LoraConfig(**{**DEFAULT_LORA, **lora})
    elif isinstance(lora, peft.LoraConfig):
        config = lora
    else:
        raise TypeError(f"lora must be True, a dict of peft.LoraConfig arguments or a peft.LoraConfig, got {lora!r}.")
    transformer = getattr(model, "lm", None)
    if not isinstance(transformer, nn.Module):
        raise TypeError(f"LoRA needs an ActorCriticLM (its transformer in `.lm`), got {type(model).__name__}.")
    if has_lora(model):
        raise ValueError("This policy already has LoRA adapters; pass lora=None to train them as they are.")
    if getattr(model, "critic_lm", None) is not None:
        raise ValueError("lora=... with critic='separate' is not supported: use critic='shared' (the value head trains).")
    # get_peft_model injects the adapters into `transformer` itself and freezes its other weights; its wrapper
    # object is not needed afterwards (adapters are toggled layer by layer, see adapters_disabled).
    peft.get_peft_model(transformer, config)
    return model


def has_lora(model: nn.Module) -> bool:
    """True if ``model`` holds peft adapter layers."""
    try:
        return bool(_tuner_layers(model))
    except ImportError:  # pragma: no cover
        return False


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, ``model`` computes the reference (pre-LoRA) policy."""
    layers = [layer for _, _, layer in _tuner_layers(model)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield model
    finally:
        for layer in layers:
            layer.enable_adapters(True)


#: Where ``TokenPPO.save`` writes a LoRA run's adapters (PEFT's format), next to the merged ``policy/``.
ADAPTER_DIR = "adapter"


def save_adapter(model: nn.Module, directory: str | os.PathLike, base_model_name_or_path: str | None = None) -> None:
    """Write ``model``'s LoRA adapters as a PEFT adapter directory (``adapter_config.json`` +
    ``adapter_model.safetensors``) that ``peft.PeftModel.from_pretrained(base, directory)`` loads onto the
    pre-LoRA model ``base`` (``AutoModelForCausalLM``), giving the same logits as the merged weights.

    Args:
        model: an ``ActorCriticLM`` with adapters from :func:`apply_lora`.
        directory: target directory (created if missing).
        base_model_name_or_path: recorded in the config (PEFT's field): where the base model lives, if known.
    """
    import peft
    from safetensors.torch import save_file

    transformer = model.lm
    config = copy.deepcopy(transformer.peft_config["default"])  # get_peft_model left it on the transformer
    config.base_model_name_or_path = base_model_name_or_path
    config.inference_mode = True
    os.makedirs(directory, exist_ok=True)
    config.save_pretrained(str(directory))
    # PEFT names a PeftModel's weights "base_model.model.<path in the transformer>"; the wrapper was discarded
    # (apply_lora), so the prefix is added here to what get_peft_model_state_dict finds on the transformer.
    state = peft.get_peft_model_state_dict(transformer, adapter_name="default")
    state = {f"base_model.model.{k}": v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(state, os.path.join(str(directory), "adapter_model.safetensors"), metadata={"format": "pt"})


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with LoRA merged into the base weights: a plain ``ActorCriticLM`` to save."""
    clone = copy.deepcopy(model)
    for parent, name, layer in _tuner_layers(clone):
        layer.merge()
        setattr(parent, name, layer.get_base_layer())
    clone.requires_grad_(True)
    return clone
