"""KL-to-reference shaping for stock Stable-Baselines3 PPO, which has no reference model.

TokenPPO keeps the policy near its warm start with ``kl_coef`` (a penalty on ``log pi - log pi_ref``). SB3's PPO
has nothing of the kind, and from a warm start it drifts to whatever the reward likes best: the greedy text
collapses (issue 20: greedy Sentiment reward 0.75 -> 0.16 in 211k steps). :class:`ReferenceKLReward` adds the
missing term from the outside, as a ``VecEnvWrapper`` over the env's rewards:

    reward_t -= beta * (log pi(a_t | s_t) - log pi_ref(a_t | s_t))

the per-token k1 estimate of ``KL(pi || pi_ref)``, whose sum over an episode is the completion's KL in
expectation (docs/theory.md section 12, which also says why SB3's entropy bonus cannot stand in for the
``log pi`` half)::

    from agents.sb3_reference import ReferenceKLReward
    envs = ReferenceKLReward(make_vec_env("textgym/Sentiment-v0", n_envs=8), reference="runs/sentiment", beta=0.05)
    model = PPO(TransformerPolicy, envs, ent_coef=0.0, policy_kwargs={"pretrained": "runs/sentiment/reference"})
    envs.attach(model.policy)

The reference scores the token each slot took, given the observation the slot acted on, through its own
per-slot KV cache (:class:`agents.kv_cache.SlotKVCache`): one new token per slot and step, never a re-encoded
prefix. It is frozen: no gradient, eval mode, and not among the policy's parameters (SB3's optimizer never sees
it). Each step's ``info`` records ``reference_logprob``, ``policy_logprob`` and ``env_reward`` (the reward before
shaping; SB3's ``Monitor``, inside the wrapper, logs the unshaped episode return).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
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
    """SB3 ``VecEnvWrapper``: each step's reward gets ``-beta * (log pi(a_t | s_t) - log pi_ref(a_t | s_t))``.

    That is section 6's per-token ``k1`` penalty, the one TokenPPO puts in its rewards: summed over an episode its
    expectation is ``-beta KL(pi || pi_ref)`` of the completion, and PPO's return carries it, so a token is charged
    for the drift of the states it leads to as well (docs/theory.md section 12). ``log pi`` is the acting
    policy's log-prob of the token it sampled (its ``get_distribution`` on the observation it acted on: a cache
    hit for ``TransformerPolicy``, which just encoded that observation), so the policy must be attached:
    ``envs.attach(model.policy)`` after building PPO, or ``learn(..., callback=AttachPolicy())`` (rl-zoo3:
    ``callback: agents.sb3_reference.AttachPolicy``). Keep ``ent_coef=0``: the penalty already holds the
    entropy half of the KL.

    Args:
        venv: an SB3 ``VecEnv`` of a textgym id (Dict or flat observation).
        reference: the frozen reference (see :class:`ReferenceScorer`); normally the policy's warm start.
        beta: the KL coefficient (>= 0; 0 leaves the rewards as they are but still records the log-probs).
        policy: the acting SB3 policy (or attach it later).
        max_prompt_tokens: ``P`` (seq2seq references only; default: read from the env).
        device: where the reference runs.
    """

    def __init__(self, venv: VecEnv, reference: Any, beta: float = 0.05, policy: Any = None,
                 max_prompt_tokens: int | None = None, device: str | torch.device | None = None):
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
        self.policy = policy
        self._last_obs: Any = None
        self._pending: tuple[np.ndarray, np.ndarray] | None = None

    def attach(self, policy: Any) -> None:
        """The SB3 policy that acts in this env (``model.policy``): its log-probs enter the penalty."""
        self.policy = policy

    def reset(self) -> Any:
        self._last_obs = self.venv.reset()
        return self._last_obs

    @torch.no_grad()
    def _policy_log_prob(self, actions: np.ndarray) -> np.ndarray:
        obs, _ = self.policy.obs_to_tensor(self._last_obs)
        actions = torch.as_tensor(np.asarray(actions), device=self.policy.device).reshape(-1)
        return self.policy.get_distribution(obs).log_prob(actions).float().cpu().numpy()

    def step_async(self, actions: np.ndarray) -> None:
        if self._last_obs is None:
            raise RuntimeError("ReferenceKLReward.step before reset: call reset() first (SB3's learn() does).")
        if self.policy is None:
            raise RuntimeError(
                "ReferenceKLReward has no policy to score: call envs.attach(model.policy) after building PPO, or "
                "pass callback=agents.sb3_reference.AttachPolicy() to learn() (rl-zoo3: a `callback:` entry)."
            )
        # Scored against the observation the slots acted on, before the env moves on (and maybe auto-resets).
        self._pending = (self.scorer.log_prob(self._last_obs, actions), self._policy_log_prob(actions))
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        ref_logp, policy_logp = self._pending
        shaped = rewards.astype(np.float32) - np.float32(self.beta) * (policy_logp - ref_logp)
        for info, reward, ref, pol in zip(infos, rewards, ref_logp, policy_logp):
            info["env_reward"], info["reference_logprob"], info["policy_logprob"] = float(reward), float(ref), float(pol)
        self._last_obs = obs  # for done slots: the next episode's first observation (SB3 auto-resets)
        return obs, shaped, dones, infos


class AttachPolicy(BaseCallback):
    """Attach the model's policy to every :class:`ReferenceKLReward` in its training env (SB3 callback; rl-zoo3:
    ``callback: agents.sb3_reference.AttachPolicy``)."""

    def _on_training_start(self) -> None:
        env, found = self.training_env, False
        while isinstance(env, VecEnvWrapper):
            if isinstance(env, ReferenceKLReward):
                env.attach(self.model.policy)
                found = True
            env = env.venv
        if not found:
            raise ValueError("AttachPolicy: the training env has no ReferenceKLReward wrapper to attach the policy to.")

    def _on_step(self) -> bool:
        return True


__all__ = ["AttachPolicy", "ReferenceKLReward", "ReferenceScorer"]
