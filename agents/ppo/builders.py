"""Building what ``TokenPPO`` runs on from its ``policy`` / ``env`` / ``device`` arguments (the vector env, the
model, the device, the allowed-token mask, the samplers), with errors that name the fix. Its hyperparameters are checked by
``agents.ppo.config.TokenPPOConfig``."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.ppo.rollout import LogitsProcessor



def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else goes through ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available here; use device='cpu' or 'auto'.")
    return device


def make_env(env: Any, num_envs: int, env_kwargs: dict | None, warn: bool = True):
    """A textgym vector env in ``AutoresetMode.DISABLED`` from an id or an existing vector env."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    if isinstance(env, str):
        import textgym  # noqa: F401  (registers the ids)

        if env not in gym.registry:
            known = ", ".join(sorted(k for k in gym.registry if k.startswith("textgym/")))
            raise ValueError(f"Unknown env id {env!r}. Registered textgym ids: {known}.")
        return gym.make_vec(env, num_envs=num_envs, autoreset_mode=AutoresetMode.DISABLED, **(env_kwargs or {}))
    if not isinstance(env, gym.vector.VectorEnv):
        raise TypeError(
            f"env must be a textgym id or a textgym vector env (gym.make_vec(id, num_envs=N)), got {type(env).__name__}. "
            "A single gym.Env cannot be batched by TokenPPO: use gym.make_vec."
        )
    base = env.unwrapped
    missing = [a for a in ("tokenizer", "prompt_source", "max_prompt_tokens", "max_new_tokens") if not hasattr(base, a)]
    if missing:
        raise TypeError(f"TokenPPO needs a textgym vector env; {type(base).__name__} lacks {missing}.")
    if getattr(base, "autoreset_mode", None) != AutoresetMode.DISABLED:
        if warn:
            warnings.warn(
                f"TokenPPO runs its env with autoreset_mode=DISABLED (one synchronised batch of episodes per "
                f"rollout); switching this env from {getattr(base, 'autoreset_mode', None)}. Create it with "
                "gym.make_vec(id, num_envs=N, autoreset_mode=AutoresetMode.DISABLED) to silence this.",
                stacklevel=3,
            )
        base.autoreset_mode = AutoresetMode.DISABLED
        base.metadata = {**base.metadata, "autoreset_mode": AutoresetMode.DISABLED}
    return env


def make_policy(policy: Any, env: Any, policy_kwargs: dict | None, seed: int | None) -> nn.Module:
    """An ``ActorCriticLM`` from an instance, a local directory or ``"default"``; checks the vocabulary fits."""
    from agents.models import ActorCriticLM, build_model_from_config, merge_size, vocabulary_mismatch

    kwargs = dict(policy_kwargs or {})
    # TransformerPolicy's form ({"model_config": {"size": ...}}) and TokenPPO's ({"size": ...}) mean the same.
    model_config = merge_size(kwargs.pop("size", None), kwargs.pop("model_config", None))
    if isinstance(policy, ActorCriticLM):
        model = policy
    elif policy == "default":
        unknown = sorted(set(kwargs) - {"critic"})
        if unknown:
            raise TypeError(f"policy_kwargs {unknown} do not apply to policy='default'; it takes 'size', 'critic' and "
                            "'model_config' (a dict: 'size', GPT2Config fields, or 'model_type' and that config's fields).")
        model = build_model_from_config(model_config, env.tokenizer, critic=kwargs.get("critic", "shared"),
                                        seed=0 if seed is None else seed)
    elif model_config is not None:
        raise ValueError("policy_kwargs 'size' / 'model_config' build a new model: use them with policy='default', "
                         f"not with policy={policy!r}.")
    elif isinstance(policy, (str, os.PathLike)):
        if not os.path.isdir(policy):
            raise ValueError(
                f"policy={str(policy)!r} is neither 'default' nor a local model directory. TokenPPO never downloads: "
                "save a model with ActorCriticLM.save_pretrained(dir) (or a HF model with save_pretrained) first."
            )
        model = ActorCriticLM.from_pretrained(str(policy), **kwargs)
    else:
        raise TypeError(f"policy must be an ActorCriticLM, a local model directory or 'default', got {type(policy).__name__}.")
    if getattr(model, "is_encoder_decoder", False):
        raise NotImplementedError(
            "TokenPPO trains causal LMs; encoder-decoder (seq2seq) policies are not supported yet. Use a causal "
            "model (e.g. build_default_model) or TransformerPolicy with SB3's PPO."
        )
    num_actions = env.single_action_space.n
    if model.vocab_size < num_actions:
        raise ValueError(
            f"The policy's vocabulary ({model.vocab_size}) is smaller than the env's action space ({num_actions}): "
            "the model and the env must share a tokenizer (build the model for the env's tokenizer)."
        )
    if mismatch := vocabulary_mismatch(model.vocab_size, num_actions):  # larger than padding: another tokenizer
        warnings.warn(mismatch, stacklevel=3)
    return model


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Turn on the transformer's gradient checkpointing (recompute activations in backward)."""
    from transformers import PreTrainedModel

    for module in model.modules():
        if isinstance(module, PreTrainedModel) and getattr(module, "supports_gradient_checkpointing", False):
            # transformers >= 5.x renamed it (the old name warns); 4.46+ only has the old one.
            if hasattr(module, "activation_checkpointing_enable"):
                module.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            return
    warnings.warn(f"{type(model).__name__} has no transformer that supports gradient checkpointing; running without.", stacklevel=3)


def allowed_tokens(env: Any, model_vocab: int, device: torch.device) -> torch.Tensor | None:
    """bool ``[model_vocab]``: the env's allowed actions (``env.action_masks()``, the same for every slot),
    False beyond the env's vocabulary (a model with a padded vocabulary must not emit those ids); ``None`` if
    every token is allowed (nothing to mask, no work)."""
    num_actions = env.single_action_space.n
    allowed = torch.zeros(model_vocab, dtype=torch.bool)
    if hasattr(env, "action_masks"):
        allowed[:num_actions] = torch.from_numpy(np.array(env.action_masks()[0], dtype=bool))
    else:
        allowed[:num_actions] = True
    return None if bool(allowed.all()) else allowed.to(device)


def make_samplers(config: Any, allowed: torch.Tensor | None, nlpo: Any) -> tuple[LogitsProcessor, LogitsProcessor]:
    """The policy's ``LogitsProcessor`` (temperature, top-k / top-p, the allowed tokens, NLPO's mask) and the
    reference's. The reference is scored without truncation (no top-k / top-p / NLPO mask): its support then
    contains every token the policy can sample, so log pi_ref is finite and the KL is KL(truncated pi || pi_ref)."""
    sampler = LogitsProcessor(config.temperature, config.top_k, config.top_p, allowed, nlpo, config.logprob_chunk_size)
    return sampler, LogitsProcessor(config.temperature, 0, 1.0, allowed, None, config.logprob_chunk_size)
