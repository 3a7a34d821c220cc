"""textgym: text generation as Gymnasium environments, with pluggable reward functions.

``import textgym`` registers the built-in ids (listed in ``envs_registry.py``)::

    import gymnasium as gym, textgym
    env = gym.make("textgym/Sentiment-v0")
    envs = gym.make_vec("textgym/Sentiment-v0", num_envs=64)   # natively batched
"""

from __future__ import annotations

from typing import Any

import envs_registry  # noqa: F401  (registers the ids)
from textgym.registration import register_reward_env

__version__ = "0.1.0"

__all__ = [
    "TextGenerationEnv",
    "TextGenerationVectorEnv",
    "register_reward_env",
    "rewards",
    "load_tokenizer",
    "default_tokenizer",
    "TASKS",
    "env_ids",
]

_LAZY = {
    "TextGenerationEnv": ("textgym.envs.text_env", "TextGenerationEnv"),
    "TextGenerationVectorEnv": ("textgym.envs.vector_env", "TextGenerationVectorEnv"),
    "load_tokenizer": ("textgym.tokenizers", "load_tokenizer"),
    "default_tokenizer": ("textgym.tokenizers", "default_tokenizer"),
    "TASKS": ("textgym.envs.tasks", "TASKS"),
}


def env_ids() -> list[str]:
    """Every registered textgym id, built-in and user-registered alike."""
    import gymnasium as gym

    return sorted(k for k, spec in gym.registry.items() if spec.entry_point == envs_registry.ENTRY_POINT)


def __getattr__(name: str) -> Any:
    # Lazy: `import textgym` stays cheap (no torch/transformers import) until something is used.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name == "rewards":
        import importlib

        return importlib.import_module("textgym.rewards")
    raise AttributeError(f"module 'textgym' has no attribute {name!r}")
