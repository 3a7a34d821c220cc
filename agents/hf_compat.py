"""What differs between Hugging Face model families, for :class:`agents.models.ActorCriticLM`: output scaling,
hidden size, the name of the cache argument, load-error messages, quiet progress bars. Moved out of
``agents/models.py`` unchanged; ``agents.models`` re-exports the public names."""

from __future__ import annotations

import contextlib
import functools
import inspect
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import Tensor, nn

_T5_FAMILY = ("t5", "mt5", "umt5", "longt5")


@contextlib.contextmanager
def quiet_hf_progress():
    """Inside the block, transformers draws no progress bars ("Writing model shards", "Loading weights"): a run
    saves and loads models many times, and its one progress bar is training's. The previous setting is restored."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class ModelLoadError(OSError):
    """A model directory exists but cannot be loaded (corrupt or truncated files, an unknown architecture...);
    the message names the path, the cause and what to do."""


class NotSafetensorsError(ModelLoadError, FileNotFoundError):
    """A model directory whose weights are not safetensors (e.g. only ``pytorch_model.bin``) while
    ``use_safetensors=True``; the message says to convert it or pass ``use_safetensors=False``."""


def _load_error(path: Path, error: Exception, trust_remote_code: bool, weights: bool = False) -> str:
    what = "its weights are corrupt or truncated (an interrupted save or copy?), or do not fit its config.json" if weights else (
        "config.json is not valid JSON or does not describe a known architecture"
    )
    hint = ""
    if not trust_remote_code and "trust_remote_code" in str(error):
        hint = (
            " This model ships its own code: pass trust_remote_code=True only if you trust that code (it runs"
            " on load)."
        )
    return (
        f"Cannot load the model at {str(path)!r}: {what} ({type(error).__name__}: {str(error)[:300]}).{hint} "
        "Re-save the model with save_pretrained(dir), or point at an intact copy."
    )


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Position ids that count only real tokens: ``cumsum(mask) - 1`` clamped at 0.

    Correct for left padding (the first real token gets position 0, as in the unpadded prompt) and for right
    padding (trailing pads repeat the last position and are masked anyway).

    Args:
        attention_mask: ``[B, L]`` 0/1 (or bool) mask, 1 on real tokens.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class _ScaledOutputHead(nn.Module):
    """The output embedding plus the output scaling some models apply around it (T5, Gemma 2, Cohere)."""

    def __init__(self, head: nn.Module, input_scale: float, logit_scale: float, softcap: float | None):
        super().__init__()
        self.head, self.input_scale, self.logit_scale, self.softcap = head, input_scale, logit_scale, softcap

    def forward(self, hidden: Tensor) -> Tensor:
        logits = self.head(hidden * self.input_scale if self.input_scale != 1.0 else hidden)
        if self.logit_scale != 1.0:
            logits = logits * self.logit_scale
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def _output_scaling(config: transformers.PretrainedConfig) -> tuple[float, float, float | None]:
    """(hidden scale before the head, logit scale after it, logit softcap) the model's own forward applies."""
    input_scale = 1.0
    if getattr(config, "scale_decoder_outputs", None) or (
        getattr(config, "model_type", "") in _T5_FAMILY
        and not hasattr(config, "scale_decoder_outputs")
        and getattr(config, "tie_word_embeddings", True)
    ):
        input_scale = config.d_model**-0.5  # T5 rescales tied decoder outputs before the LM head
    logit_scale = float(getattr(config, "logit_scale", None) or 1.0)  # Cohere
    softcap = getattr(config, "final_logit_softcapping", None)  # Gemma 2
    return input_scale, logit_scale, softcap


def _hidden_size(config: transformers.PretrainedConfig) -> int:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("hidden_size", "d_model", "n_embd"):
        if getattr(text_config, name, None):
            return int(getattr(text_config, name))
    raise ValueError(f"Cannot find the hidden size in {type(config).__name__}: expected hidden_size/d_model/n_embd.")


@functools.lru_cache(maxsize=None)
def _cache_argument_name(forward_cls: type) -> str:
    """transformers >= 5.2x names the KV-cache argument ``cache``; earlier releases ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(forward_cls.forward).parameters else "past_key_values"


def _cache_kwarg(module: nn.Module, cache: Any) -> dict[str, Any]:
    return {} if cache is None else {_cache_argument_name(type(module)): cache}


def _output_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """transformers >= 4.56 names the argument ``dtype``; older releases ``torch_dtype``."""
    if dtype is None:
        return {}
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}
