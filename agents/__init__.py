"""agents: a Transformer actor-critic SB3 policy and TokenPPO, a PPO for huge discrete action spaces.

Public names are imported lazily (``from agents import TransformerPolicy``), so ``import agents`` stays cheap
and a submodule's heavy dependencies load only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ActorCriticLM": "agents.models",
    "ActorCriticOutput": "agents.models",
    "build_default_model": "agents.models",
    "default_model_config": "agents.models",
    "position_ids_from_mask": "agents.models",
    "process_logits": "agents.distributions",
    "sample_tokens": "agents.distributions",
    "token_logprobs_and_entropy": "agents.distributions",
    "SlotKVCache": "agents.kv_cache",
    "TransformerPolicy": "agents.policies",
    "TokenDistribution": "agents.policies",
    "TokenPPO": "agents.ppo",
    "ReferenceKLReward": "agents.sb3_reference",
    "AttachPolicy": "agents.sb3_reference",
    "resolve_model": "agents.pretrained",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
