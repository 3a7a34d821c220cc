"""Tiny models for the agents tests (GPT-2, Llama and T5 shapes), built from configs: nothing is downloaded."""

from __future__ import annotations

import pytest
import torch
import transformers

VOCAB = 64


def tiny_config(kind: str) -> transformers.PretrainedConfig:
    """A two-layer config of the given family over a 64-token vocabulary."""
    special = dict(pad_token_id=0, eos_token_id=1, bos_token_id=2)
    if kind == "gpt2":
        return transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=128, **special)
    if kind == "llama":
        return transformers.LlamaConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, **special,
        )
    if kind == "t5":
        return transformers.T5Config(
            vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0,
            pad_token_id=0, eos_token_id=1,
        )
    raise ValueError(kind)


@pytest.fixture
def make_model():
    """``make_model(kind, critic="shared", seed=0)`` -> an ``ActorCriticLM`` in eval mode."""
    from agents.models import ActorCriticLM

    def make(kind: str, critic: str = "shared", seed: int = 0):
        torch.manual_seed(seed)
        return ActorCriticLM.from_config(tiny_config(kind), critic=critic).eval()

    return make


@pytest.fixture
def single_thread():
    """Run a test on one torch thread: these models are tiny, and on a shared 2-core machine a second intra-op
    thread only adds synchronisation (measured: 15 s vs 224 s wall for this folder under load). Restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
