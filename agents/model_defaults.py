"""The project's default model configuration (GPT-2 shape, three sizes) and the small pure helpers around it:
the vocabulary check, ``size``/``model_config`` merging, dropout zeroing. Moved out of ``agents/models.py``
unchanged; ``agents.models`` re-exports every name."""

from __future__ import annotations

from typing import Any

import transformers
from torch import nn

# Default model sizes: GPT-2 shape, no dropout (dropout makes PPO's ratio noisy: pi_old and pi differ by noise).
_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"n_embd": 64, "n_layer": 2, "n_head": 2},  # ~0.4M params at 4k vocab: tests
    "small": {"n_embd": 256, "n_layer": 4, "n_head": 4},  # ~4.3M params at 4k vocab: the default
    "medium": {"n_embd": 384, "n_layer": 6, "n_head": 6},  # ~12M params
}



def vocabulary_mismatch(model_vocab: int, tokenizer_vocab: int) -> str | None:
    """Why a model whose vocabulary is much larger than the tokenizer's was probably built for another tokenizer
    (``None`` when it is not: equal, or padded, as GPT-2's 50257 ids to 50304 or Qwen's to a multiple of 128).

    Padding adds at most a few hundred ids; ten times the ids (a 4096-vocab model, a 400-token tokenizer) means
    token ids that stand for different text in the model and in the tokenizer.
    """
    excess = model_vocab - tokenizer_vocab
    if excess <= max(512, tokenizer_vocab // 50):
        return None
    return (
        f"The model's vocabulary ({model_vocab} ids) is much larger than the tokenizer's ({tokenizer_vocab}): the "
        "model was probably built for another tokenizer, so each token id means one text to the model and another "
        "to the env (only the first ids can be generated; the rest are masked). Build the model for the env's "
        "tokenizer (build_default_model(tokenizer=env.unwrapped.tokenizer)), or give the env the model's tokenizer "
        "(gym.make(..., tokenizer=DIR), or `tokenizer:` in a textgym train config)."
    )


def default_model_config(
    vocab_size: int, pad_token_id: int, eos_token_id: int, bos_token_id: int | None = None, size: str = "small"
) -> transformers.GPT2Config:
    """The project's default model: GPT-2 shape, a few million parameters, useful speed on 2 CPU cores.

    Args:
        vocab_size: number of tokens (the env's ``Discrete`` size).
        pad_token_id, eos_token_id, bos_token_id: the tokenizer's special ids (``bos`` defaults to ``eos``).
        size: ``"tiny"`` (~0.4M params at 4k vocab, tests), ``"small"`` (~4.3M, default) or ``"medium"`` (~12M).
    """
    if size not in _SIZES:
        raise ValueError(f"size must be one of {sorted(_SIZES)}, got {size!r}.")
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}.")
    return transformers.GPT2Config(
        vocab_size=vocab_size,
        n_positions=1024,
        **_SIZES[size],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        # GPT-2's tanh-approximated GELU as torch's one fused kernel (same function to 1e-7); "gelu_new" spells
        # it as five element-wise ops, ~10% of a decode step at this size.
        activation_function="gelu_pytorch_tanh",
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=eos_token_id if bos_token_id is None else bos_token_id,
        tie_word_embeddings=True,
    )



def merge_size(size: str | None, model_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``model_config`` with ``size`` put in: ``{"size": s}`` and ``{"model_config": {"size": s}}`` mean the same
    in ``TokenPPO(policy_kwargs=...)`` and ``TransformerPolicy(policy_kwargs=...)``.

    Raises:
        ValueError: ``size`` given both ways with different values.
    """
    if size is None:
        return model_config
    config = dict(model_config or {})
    if config.get("size", size) != size:
        raise ValueError(f"policy_kwargs gives the model size twice: size={size!r} and model_config['size']="
                         f"{config['size']!r}; pass one of them.")
    config["size"] = size
    return config



def disable_dropout(model: nn.Module) -> None:
    """Zero every dropout: ``nn.Dropout``-like modules and the float rates some attentions apply functionally
    (T5's ``dropout_rate``, others' ``attention_dropout``...). With dropout the log-probs of unchanged weights
    differ between the rollout and the update, so the PPO ratio would start away from 1 (TRL does the same)."""
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        for name in ("dropout", "attention_dropout", "dropout_rate", "attn_dropout", "attn_dropout_p"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)
