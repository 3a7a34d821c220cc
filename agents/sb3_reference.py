"""KL-to-reference shaping for stock Stable-Baselines3 PPO, which has no reference model.

TokenPPO keeps the policy near its warm start with ``kl_coef`` (a penalty on ``log pi - log pi_ref``). SB3's PPO
has nothing of the kind, and from a warm start it drifts to whatever the reward likes best: the greedy text
collapses (issue 20: greedy Sentiment reward 0.75 -> 0.16 in 211k steps). :class:`ReferenceKLReward` adds the
missing term from the outside, as a ``VecEnvWrapper``:

    reward_t += beta * log pi_ref(a_t | s_t)

and SB3's own entropy bonus (``ent_coef = beta``) supplies the rest: per state,
``-beta KL(pi || pi_ref) = beta E_a~pi[log pi_ref(a | s)] + beta H(pi(. | s))`` (docs/theory.md section 12, which
also says exactly which gradient each half gets)::

    from agents.sb3_reference import ReferenceKLReward
    envs = ReferenceKLReward(make_vec_env("textgym/Sentiment-v0", n_envs=8), reference="runs/sentiment", beta=0.05)
    model = PPO(TransformerPolicy, envs, ent_coef=0.05, policy_kwargs={"model": "runs/sentiment/reference"})

The reference scores the token each slot took, given the observation the slot acted on, through its own
per-slot KV cache (:class:`agents.kv_cache.SlotKVCache`): one new token per slot and step, never a re-encoded
prefix. It is frozen: no gradient, eval mode, and not among the policy's parameters (SB3's optimizer never sees
it). Each step's ``info["reference_logprob"]`` is the raw ``log pi_ref(a_t | s_t)``; ``info["env_reward"]`` the
reward before shaping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from agents.kv_cache import SlotKVCache
from agents.models import ActorCriticLM
from textgym.envs.core import split_flat_observation


class ReferenceScorer:
    """``log pi_ref(a | s)`` of a frozen LM for a batch of env slots stepping in lockstep (KV-cached per slot).

    Args:
        reference: an ``ActorCriticLM``, a local model directory, a ``textgym train`` run directory (its
            ``reference/``, the warm start) or ``"warm-start:<config>"`` (:func:`agents.pretrained.resolve_model`).
        num_actions: size of the action space (logits beyond it are dropped, as the policy drops them).
        max_prompt_tokens: ``P`` of the observation layout (seq2seq references only).
        device: where the reference runs (default: where its weights are).
    """

    def __init__(self, reference: Any, num_actions: int, max_prompt_tokens: int | None = None,
                 device: str | torch.device | None = None):
        from agents.pretrained import resolve_model

        model = resolve_model(reference, role="reference")
        if device is not None:
            model = model.to(device)
        if model.vocab_size < num_actions:
            raise ValueError(
                f"The reference's vocabulary ({model.vocab_size}) is smaller than the action space ({num_actions}): "
                "the reference must be a model of the env's tokenizer (e.g. the policy's warm start)."
            )
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self.model, self.num_actions = model, int(num_actions)
        self.cache = SlotKVCache(model, prompt_length=max_prompt_tokens)

    @torch.no_grad()
    def log_prob(self, observation: Any, actions: Any) -> np.ndarray:
        """``log pi_ref(actions[i] | observation[i])`` for every slot, float32 ``[B]``.

        ``observation`` is a textgym observation batch (Dict or flat, numpy or torch) before the actions.
        """
        obs = split_flat_observation(observation)
        device = next(self.model.parameters()).device
        ids = torch.as_tensor(np.asarray(obs["input_ids"]), device=device).long()
        mask = torch.as_tensor(np.asarray(obs["attention_mask"]), device=device).long()
        if ids.dim() == 1:
            ids, mask = ids.unsqueeze(0), mask.unsqueeze(0)
        hidden, _ = self.cache.step(ids, mask)
        logits = self.model.lm_head(hidden)[..., : self.num_actions].float()
        actions = torch.as_tensor(np.asarray(actions), device=device).long().reshape(-1, 1)
        return torch.log_softmax(logits, -1).gather(1, actions).squeeze(1).cpu().numpy()


class ReferenceKLReward(VecEnvWrapper):
    """SB3 ``VecEnvWrapper``: each step's reward gets ``beta * log pi_ref(a_t | s_t)`` (see the module docstring).

    Pair it with ``PPO(..., ent_coef=beta)``: the two together are the KL-regularised objective
    ``E[sum_t r_t] - beta sum_t KL(pi(. | s_t) || pi_ref(. | s_t))``.

    Args:
        venv: an SB3 ``VecEnv`` of a textgym id (Dict or flat observation).
        reference: the frozen reference (see :class:`ReferenceScorer`); normally the policy's warm start.
        beta: the KL coefficient (>= 0; 0 leaves the rewards as they are but still records the log-probs).
        max_prompt_tokens: ``P`` (seq2seq references only; default: read from the env).
        device: where the reference runs.
    """

    def __init__(self, venv: VecEnv, reference: Any, beta: float = 0.05, max_prompt_tokens: int | None = None,
                 device: str | torch.device | None = None):
        if not isinstance(venv, VecEnv):
            raise TypeError(
                f"ReferenceKLReward wraps an SB3 VecEnv, got {type(venv).__name__}: build one with "
                "stable_baselines3.common.env_util.make_vec_env(env_id, n_envs=...)."
            )
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0 (the KL coefficient), got {beta}.")
        super().__init__(venv)
        n = getattr(self.action_space, "n", None)
        if n is None:
            raise ValueError(f"ReferenceKLReward needs a Discrete (token) action space, got {self.action_space}.")
        if max_prompt_tokens is None:
            try:
                max_prompt_tokens = venv.get_attr("max_prompt_tokens")[0]
            except AttributeError:  # only seq2seq references need it; SlotKVCache says so if one does
                max_prompt_tokens = None
        self.beta = float(beta)
        self.scorer = ReferenceScorer(reference, int(n), max_prompt_tokens=max_prompt_tokens, device=device)
        self._last_obs: Any = None
        self._pending: np.ndarray | None = None

    def reset(self) -> Any:
        self._last_obs = self.venv.reset()
        return self._last_obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._last_obs is None:
            raise RuntimeError("ReferenceKLReward.step before reset: call reset() first (SB3's learn() does).")
        # Scored against the observation the slots acted on, before the env moves on (and maybe auto-resets).
        self._pending = self.scorer.log_prob(self._last_obs, actions)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        ref_logp = self._pending
        shaped = rewards.astype(np.float32) + np.float32(self.beta) * ref_logp
        for info, reward, logp in zip(infos, rewards, ref_logp):
            info["env_reward"], info["reference_logprob"] = float(reward), float(logp)
        self._last_obs = obs  # for done slots: the next episode's first observation (SB3 auto-resets)
        return obs, shaped, dones, infos


__all__ = ["ReferenceKLReward", "ReferenceScorer"]
