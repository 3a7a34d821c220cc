"""``TokenPPO``: PPO for text generation, where each token is an action in ``Discrete(vocab_size)``.

SB3's API (``learn`` / ``save`` / ``load`` / ``predict``, ``BaseCallback``s, SB3's logger) over a textgym vector
env, with an inside built for 50k-action spaces: KV-cached batched rollouts, one teacher-forced pass per
sequence, a sequence-level buffer and a chunked vocabulary projection. The maths, symbol by symbol with the
variable that holds it: ``docs/theory.md``.

One iteration::

    rollout     env.num_envs episodes sampled together (agents.ppo.rollout.generate_episodes)
    score       old log-probs, values and reference log-probs, one forward per sequence (evaluate_sequences)
    shape       per-token reward = -kl_coef * KL_t (+ task reward on the last token, - missing_eos_penalty)
    advantages  GAE over those rewards, or a GRPO / RLOO group baseline (critic-free)
    update      n_epochs x minibatches of sequences: clipped surrogate + clipped value loss - entropy bonus
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from typing import Any

import numpy as np
import torch

from agents.ppo import checkpoint as ppo_checkpoint
from agents.ppo import io as ppo_io
from agents.ppo.advantages import compute_gae, explained_variance, group_advantages, masked_mean, whiten
from agents.ppo.buffer import SequenceRolloutBuffer
from agents.ppo.distributed import setup_distributed, silent_logger
from agents.ppo.interrupt import GracefulInterrupt, stop_after_signal
from agents.ppo.kl import kl_estimate, make_kl_controller
from agents.ppo.lora import adapters_disabled, apply_lora, has_lora
from agents.ppo.losses import clipped_policy_loss, clipped_value_loss
from agents.ppo.masking import LaggedMaskPolicy
from agents.distributions import NonFiniteLogitsError
from agents.ppo.nonfinite import NonFiniteGuard, nonfinite_parameters
from agents.ppo.rollout import Sampler, evaluate_sequences, generate_episodes
from agents.ppo.setup import (allowed_tokens, check_hyperparams, disable_dropout,
                              enable_gradient_checkpointing, make_env, make_policy)
from agents.ppo.write_errors import WriteFailedOnAnotherRank



#: TokenPPO's update statistics that SB3's PPO logs under another name (``train/<SB3 name>``). The mean entropy
#: is logged as SB3's ``train/entropy_loss``, its negative.
SB3_TRAIN_TAGS = {"policy_loss": "policy_gradient_loss"}


class TokenPPO:
    """PPO over a textgym vector env whose actions are tokens.

    Args:
        policy: an ``agents.models.ActorCriticLM``, a local model directory (``ActorCriticLM.from_pretrained``),
            or ``"default"`` (``agents.models.build_default_model`` with the env's tokenizer).
        env: a textgym id (``"textgym/Arithmetic-v0"``, made with ``gym.make_vec(id, num_envs=num_envs)``) or a
            textgym vector env. TokenPPO runs it with ``autoreset_mode=DISABLED`` (switched, with a warning,
            when the env was made otherwise). One rollout is one synchronised batch of ``num_envs`` episodes.
        learning_rate: Adam learning rate.
        n_epochs: passes over each rollout.
        batch_size: sequences per optimiser step.
        gradient_accumulation_steps: each minibatch is split into this many micro-batches whose gradients are
            summed before the step (same update, less activation memory).
        clip_range: PPO's ratio clip ``epsilon``.
        clip_range_vf: value clip around the rollout values (``None``: no value clipping).
        vf_coef: weight of the value loss.
        ent_coef: weight of the entropy bonus.
        max_grad_norm: gradient-norm clip.
        gamma: discount over tokens (1.0: the reward is about the whole text).
        gae_lambda: GAE's ``lambda``.
        normalize_advantage: whiten advantages over the rollout's valid tokens.
        target_kl: stop the epoch loop once a minibatch's approximate KL(old || new) exceeds ``1.5 * target_kl``
            (SB3's early stop; ``None`` disables it). Not to be confused with ``kl_target``.
        kl_coef: coefficient ``beta`` of the per-token KL penalty to the frozen reference (0: no reference
            model is kept at all).
        kl_target: if set, RL4LMs' adaptive controller steers the per-sequence KL to this value starting from
            ``kl_coef``; ``None``: fixed ``kl_coef``.
        kl_estimator: ``"k1"`` (``log pi - log pi_ref``) or ``"k3"`` (non-negative, lower variance).
        baseline: ``"gae"`` (critic), ``"grpo"`` or ``"rloo"`` (group baselines, critic-free; need ``group_size``).
        group_size: completions per prompt in a rollout (``num_envs`` must be a multiple of it).
        temperature, top_k, top_p: the sampling distribution; PPO's log-probs are taken under the same one.
        missing_eos_penalty: subtracted from the reward of episodes truncated without EOS (``None``: off).
        nlpo_top_p: NLPO action masking: restrict each step to the top-p nucleus of a lagged policy copy
            (``None``: off).
        nlpo_min_tokens: the NLPO mask keeps at least this many tokens.
        nlpo_update_interval: refresh the lagged copy every this many iterations.
        lora: ``None``, ``True``, a dict of ``peft.LoraConfig`` arguments, or a ``peft.LoraConfig``: train LoRA
            adapters; the reference is the same model with adapters disabled.
        bf16: bf16 autocast for forwards (CUDA only; on CPU it warns and runs float32).
        gradient_checkpointing: recompute transformer activations in backward (saves memory; works on CPU too).
        logprob_chunk_size: tokens per chunk of the chunked log-softmax over the vocabulary.
        old_logprobs: where ``log pi_old`` and the rollout values come from. ``"rollout"``: kept by the sampling
            loop (no second policy pass; agrees with the update's forward to ~1e-5 in float32).
            ``"recompute"``: one teacher-forced policy pass after the rollout, the exact computation the update
            repeats, so the ratio is exactly 1 before the first step. ``"auto"``: ``"recompute"`` under bf16
            (decode and full-sequence kernels round differently), else ``"rollout"``.
        max_consecutive_nonfinite: an iteration whose rewards, advantages, losses or gradients hold a NaN / inf
            skips its update (with a ``NonFiniteWarning`` naming the rows, prompts and completions); this many
            in a row raise ``agents.ppo.nonfinite.NonFiniteError`` (``agents/ppo/nonfinite.py``).
        num_envs: slots when ``env`` is an id.
        env_kwargs: extra ``gym.make_vec`` arguments when ``env`` is an id.
        policy_kwargs: with ``policy="default"``: ``size`` (``"tiny"`` / ``"small"`` / ``"medium"``), ``critic``,
            and ``model_config``, the dict ``TransformerPolicy`` takes (``{"size": ...}``, GPT2Config fields, or
            ``model_type`` and that config's fields): ``{"size": "tiny"}`` and ``{"model_config": {"size":
            "tiny"}}`` are the same model. With a directory: ``ActorCriticLM.from_pretrained`` arguments.
        seed: seeds Python, numpy, torch, the sampler and the env; same seed on CPU gives identical runs.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        verbose: 0 silent, 1 SB3 stdout logging, 2 also warnings about the setup.
        tensorboard_log: directory for tensorboard logs (``None``: off).
        distributed: data parallelism over ``torchrun``'s ranks (``agents.ppo.distributed``): ``None`` detects a
            ``torchrun`` launch (``WORLD_SIZE`` > 1), ``False`` stays single-process, ``True`` insists. Under it
            ``num_envs`` is per rank, ``batch_size`` is global, and only rank 0 saves and logs.
        fsdp: shard the policy (and the reference) with FSDP instead of replicating it with DDP (needs
            ``torchrun``).
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        learning_rate: float = 1e-5,
        n_epochs: int = 4,
        batch_size: int = 16,
        gradient_accumulation_steps: int = 1,
        clip_range: float = 0.2,
        clip_range_vf: float | None = 0.2,
        vf_coef: float = 0.1,
        ent_coef: float = 0.0,
        max_grad_norm: float = 1.0,
        gamma: float = 1.0,
        gae_lambda: float = 0.95,
        normalize_advantage: bool = True,
        target_kl: float | None = None,
        kl_coef: float = 0.05,
        kl_target: float | None = None,
        kl_estimator: str = "k1",
        baseline: str = "gae",
        group_size: int = 1,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        missing_eos_penalty: float | None = None,
        nlpo_top_p: float | None = None,
        nlpo_min_tokens: int = 100,
        nlpo_update_interval: int = 5,
        lora: Any = None,
        bf16: bool = False,
        gradient_checkpointing: bool = False,
        logprob_chunk_size: int = 1024,
        old_logprobs: str = "auto",
        max_consecutive_nonfinite: int = 3,
        num_envs: int = 16,
        env_kwargs: dict | None = None,
        policy_kwargs: dict | None = None,
        seed: int | None = None,
        device: str | torch.device = "auto",
        verbose: int = 0,
        tensorboard_log: str | None = None,
        distributed: bool | None = None,
        fsdp: bool = False,
    ):
        self.hyperparams = {k: v for k, v in locals().items() if k in ppo_io.SAVED_HYPERPARAMS}
        check_hyperparams(self.hyperparams)
        self.learning_rate, self.n_epochs, self.batch_size = learning_rate, n_epochs, batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.clip_range, self.clip_range_vf, self.vf_coef, self.ent_coef = clip_range, clip_range_vf, vf_coef, ent_coef
        self.max_grad_norm, self.gamma, self.gae_lambda = max_grad_norm, gamma, gae_lambda
        self.normalize_advantage, self.target_kl = normalize_advantage, target_kl
        self.kl_estimator, self.baseline, self.group_size = kl_estimator, baseline, group_size
        self.missing_eos_penalty, self.lora = missing_eos_penalty, lora
        self.seed, self.verbose, self.tensorboard_log = seed, verbose, tensorboard_log
        self.dist = setup_distributed(distributed, fsdp, device)  # a no-op context on one process
        self.device = self.dist.device
        self.nonfinite_guard = NonFiniteGuard(max_consecutive_nonfinite)
        #: ``(path, iteration)`` of the checkpoint this run last wrote or loaded (named when it must stop).
        self.last_checkpoint: tuple[str, int] | None = None

        if seed is not None:
            from stable_baselines3.common.utils import set_random_seed

            set_random_seed(self.dist.rank_seed(seed))
        self.env = make_env(env, num_envs, env_kwargs, warn=True)
        base_env = self.env.unwrapped
        self.num_envs = base_env.num_envs
        self.dist.check(self.num_envs, batch_size, group_size, base_env, nlpo_top_p)
        if self.num_envs % group_size:
            raise ValueError(
                f"num_envs={self.num_envs} must be a multiple of group_size={group_size} (each prompt fills "
                f"{group_size} slots); use num_envs={group_size * max(1, self.num_envs // group_size)}."
            )
        self.policy = make_policy(policy, base_env, policy_kwargs, seed).to(self.device)
        # The model the run started from, when it is a directory: a LoRA run's saved PEFT adapter names it.
        self.base_model_path = str(policy) if isinstance(policy, (str, os.PathLike)) and policy != "default" else None
        if lora is not None:
            apply_lora(self.policy, lora)
        self.dist.broadcast_module(self.policy)  # every rank starts from rank 0's weights
        disable_dropout(self.policy)  # dropout (LoRA's included) would make ratio != 1 on unchanged weights
        self.use_bf16 = bool(bf16) and self.device.type == "cuda"
        if bf16 and not self.use_bf16:
            warnings.warn("bf16=True is used on CUDA only; this run is on CPU and stays in float32.", stacklevel=2)
        if gradient_checkpointing:
            enable_gradient_checkpointing(self.policy)
        self.old_logprobs_from_rollout = old_logprobs == "rollout" or (old_logprobs == "auto" and not self.use_bf16)

        # The frozen reference: the policy with adapters off under LoRA, else a deep copy (none if beta is 0).
        self.kl_controller = make_kl_controller(kl_coef, kl_target)
        self.uses_reference = kl_coef > 0 or kl_target is not None
        self.ref_policy = None
        if self.uses_reference and not has_lora(self.policy):
            import copy

            self.ref_policy = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.nlpo = LaggedMaskPolicy(self.policy, nlpo_top_p, nlpo_min_tokens, nlpo_update_interval) if nlpo_top_p else None
        allowed = allowed_tokens(base_env, self.policy.vocab_size, self.device)
        self.sampler = Sampler(temperature, top_k, top_p, allowed, self.nlpo, logprob_chunk_size)
        # The reference is scored without truncation (no top-k / top-p / NLPO mask): its support then contains
        # every token the policy can sample, so log pi_ref is finite and the KL is KL(truncated pi || pi_ref).
        self.ref_sampler = Sampler(temperature, 0, 1.0, allowed, None, logprob_chunk_size)
        # What the update runs forward/backward through: the policy itself, DDP over it, or its FSDP shards.
        self.train_policy = self.dist.wrap(self.policy, self.ref_policy, critic_trains=baseline == "gae")
        self.optimizer = torch.optim.AdamW(
            [p for p in self.policy.parameters() if p.requires_grad], lr=learning_rate, eps=1e-5, weight_decay=0.0
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.dist.rank_seed(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
        self.np_random = np.random.default_rng(self.dist.rank_seed(seed))
        self.num_timesteps = 0
        self.iteration = 0
        self._first_reset = True
        self.buffer: SequenceRolloutBuffer | None = None
        self.last_rollout: dict[str, Any] = {}
        self._logger = None if self.dist.is_main else silent_logger()  # only rank 0 logs

    # ------------------------------------------------------------------ SB3 plumbing
    @property
    def logger(self):
        """SB3 ``Logger`` (configured by ``learn`` from ``verbose`` / ``tensorboard_log``, or ``set_logger``)."""
        if self._logger is None:
            from stable_baselines3.common.utils import configure_logger

            self._logger = configure_logger(self.verbose, self.tensorboard_log, "TokenPPO", True)
        return self._logger

    def set_logger(self, logger) -> None:
        """Use ``logger`` (e.g. ``stable_baselines3.common.logger.configure(dir, ["stdout", "csv", "tensorboard"])``)."""
        self._logger = logger

    def get_env(self):
        """The vector env (SB3 callbacks read it as ``training_env``)."""
        return self.env

    def get_vec_normalize_env(self) -> None:
        """SB3 API (``EvalCallback`` asks): TokenPPO never wraps its env in ``VecNormalize``."""
        return None

    @property
    def n_envs(self) -> int:
        return self.num_envs

    def _autocast(self):
        if self.use_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _reference(self):
        """Context manager yielding the reference policy (adapters disabled under LoRA)."""
        if self.ref_policy is not None:
            return contextlib.nullcontext(self.ref_policy)
        return adapters_disabled(self.policy)

    # ------------------------------------------------------------------ rollout
    def _prompt_indices(self) -> np.ndarray:
        num_prompts = len(self.env.unwrapped.prompt_source)
        prompts = self.np_random.integers(0, num_prompts, size=self.num_envs // self.group_size)
        return np.repeat(prompts, self.group_size)  # rows [g*G, (g+1)*G) share a prompt

    def collect_rollout(self, callback=None) -> bool:
        """Sample one batch of episodes and fill ``self.buffer``; ``False`` if a callback stopped training.

        ``callback.on_step()`` is called once per env step (one token for every active slot), after
        ``self.num_timesteps`` grew by the number of slots that took a token.
        """
        self.policy.eval()
        start = time.perf_counter()

        def on_step(active_slots: int, step_locals: dict) -> bool:
            self.num_timesteps += active_slots
            if callback is None:
                return True
            callback.update_locals(step_locals)
            return callback.on_step()

        self._rollout_prompts = self._prompt_indices()
        steps_before = self.num_timesteps
        try:
            episodes = generate_episodes(
                self.policy,
                self.env,
                self.sampler,
                prompt_indices=self._rollout_prompts,
                seed=self.dist.rank_seed(self.seed) if self._first_reset else None,
                generator=self.generator,
                autocast=self._autocast,
                on_step=on_step,
                record_logprobs=self.old_logprobs_from_rollout,
            )
        except NonFiniteLogitsError as e:
            raise self.nonfinite_guard.fatal(self, f"the policy's logits are non-finite in the rollout ({e})") from e
        self._first_reset = False
        if self.dist.any_true(episodes is None):  # a callback that stops one rank stops all of them
            return False
        # The token count is global (all ranks agree when learn() stops): this rank's plus the others'.
        self.num_timesteps = steps_before + int(self.dist.all_sum(self.num_timesteps - steps_before)[0])
        generate_s = time.perf_counter() - start
        self.buffer = self._score(episodes)
        self.last_rollout = {
            "completions": episodes.completions,
            "reward_components": episodes.reward_components,
            "generate_s": generate_s,
            "rollout_s": time.perf_counter() - start,
        }
        return True

    @torch.no_grad()
    def _score(self, ep) -> SequenceRolloutBuffer:
        """Old log-probs and values (kept by the sampling loop, or one teacher-forced pass), then the reference
        log-probs, one forward per sequence, ``batch_size`` sequences at a time (each chunk trimmed of its
        all-padding columns)."""
        zeros = torch.zeros(ep.response_ids.shape, dtype=torch.float32)
        from_rollout = ep.logp is not None
        buf = SequenceRolloutBuffer(
            prompt_ids=ep.prompt_ids, prompt_mask=ep.prompt_mask, response_ids=ep.response_ids,
            response_mask=ep.response_mask, env_rewards=ep.env_rewards,
            old_logp=ep.logp.clone() if from_rollout else zeros.clone(), ref_logp=zeros.clone(),
            values=ep.values.clone() if from_rollout and self.baseline == "gae" else zeros.clone(),
            terminated=ep.terminated, prompt_indices=torch.as_tensor(self._rollout_prompts, dtype=torch.long),
        )
        buf.advantages, buf.returns = zeros, zeros  # placeholders: get() below only reads ids and masks
        if from_rollout and not self.uses_reference:
            buf.ref_logp = buf.old_logp.clone()  # no reference: KL 0
        else:
            for rows in torch.arange(buf.num_sequences).split(self.batch_size):
                chunk = buf.get(rows)
                cols = slice(0, chunk.response_ids.shape[1])
                args = (chunk.input_ids.to(self.device), chunk.attention_mask.to(self.device), chunk.prompt_length,
                        chunk.response_ids.to(self.device), chunk.response_mask.to(self.device))
                if not from_rollout:
                    logp, _, value = evaluate_sequences(self.policy, *args, self.sampler, self._autocast, with_entropy=False)
                    buf.old_logp[rows, cols] = logp.cpu()
                    if self.baseline == "gae":  # group baselines keep values at 0: no critic
                        buf.values[rows, cols] = value.cpu()
                if self.uses_reference:
                    with self._reference() as ref:
                        buf.ref_logp[rows, cols] = evaluate_sequences(
                            ref, *args, self.ref_sampler, self._autocast, with_entropy=False
                        )[0].cpu()
                else:
                    buf.ref_logp[rows, cols] = buf.old_logp[rows, cols]
        buf = self.dist.gather_buffer(buf)  # the global rollout (rank 0's rows first): global whitening and KL
        self._compute_advantages(buf)
        return buf.to(self.device)

    def _compute_advantages(self, buf: SequenceRolloutBuffer) -> None:
        """Per-token rewards (KL shaping + env reward + missing-EOS penalty), then GAE or a group baseline."""
        mask = buf.response_mask
        kl = kl_estimate(buf.old_logp, buf.ref_logp, self.kl_estimator) * mask
        self.last_rollout_kl = float((kl.sum(1)).mean())
        rewards = buf.env_rewards * mask - self.kl_controller.value * kl
        if self.missing_eos_penalty is not None:
            last = (buf.response_lengths - 1).clamp(min=0)
            penalty = torch.where(buf.terminated, 0.0, float(self.missing_eos_penalty))
            rewards[torch.arange(buf.num_sequences), last] -= penalty
        buf.token_rewards = rewards
        if self.baseline == "gae":
            advantages, returns = compute_gae(rewards, buf.values, mask, self.gamma, self.gae_lambda)
        else:
            # Critic-free: the sequence's return (KL penalty included as reward shaping) against its group.
            seq_adv = group_advantages(rewards.sum(1), self.group_size, self.baseline)
            advantages = seq_adv[:, None] * mask
            returns = torch.zeros_like(advantages)
        if self.normalize_advantage:
            advantages = whiten(advantages, mask)
        buf.advantages, buf.returns = advantages.float(), returns.float()

    # ------------------------------------------------------------------ update
    def train(self) -> dict[str, float]:
        """``n_epochs`` passes of minibatch PPO over ``self.buffer``; returns and logs the iteration's metrics."""
        if self.buffer is None:
            raise RuntimeError("train() needs a rollout: call collect_rollout() (learn() does both).")
        buf, use_critic = self.buffer, self.baseline == "gae"
        self.policy.train()
        stats: dict[str, list[float]] = {k: [] for k in ("loss", "policy_loss", "value_loss", "entropy", "clip_fraction", "approx_kl", "ratio_mean")}
        # Every rank draws the same order (rank 0's seed): they must agree on each global minibatch.
        shuffle = torch.Generator().manual_seed(self.dist.shared_int(int(self.np_random.integers(2**31))))
        stop = False
        steps_taken = 0
        problem = self.nonfinite_guard.check_rollout(self, buf)  # a NaN / inf anywhere: skip this update
        for _epoch in range(0 if problem else self.n_epochs):
            for batch in buf.minibatches(self.batch_size, shuffle):
                self.optimizer.zero_grad(set_to_none=True)
                rows_here = self.dist.shard(batch.indices)  # this rank's slice of the (global) minibatch
                micro_rows = rows_here.tensor_split(min(self.gradient_accumulation_steps, rows_here.numel()))
                step_kl = step_loss = 0.0
                batch_tokens = batch.response_mask.sum().clamp(min=1)
                for i, rows in enumerate(micro_rows):
                    micro = buf.get(rows)
                    # Gradients are all-reduced on the last micro-batch only (DDP's no_sync on the others).
                    with self.dist.micro_batch(self.train_policy, last=i == len(micro_rows) - 1):
                        logp, entropy, values = evaluate_sequences(
                            self.train_policy, micro.input_ids, micro.attention_mask, micro.prompt_length,
                            micro.response_ids, micro.response_mask, self.sampler, self._autocast,
                            entropy_grad=self.ent_coef != 0,  # at 0 the entropy is only logged: no backward for it
                        )
                        pg_loss, pg_stats = clipped_policy_loss(logp, micro.old_logp, micro.advantages, micro.response_mask, self.clip_range)
                        ent = masked_mean(entropy, micro.response_mask)
                        loss = pg_loss - self.ent_coef * ent
                        v_loss = torch.zeros(())
                        if use_critic:
                            v_loss = clipped_value_loss(values, micro.values, micro.returns, micro.response_mask, self.clip_range_vf)
                            loss = loss + self.vf_coef * v_loss
                        problem = self.nonfinite_guard.check_loss(
                            self, rows, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": ent, "loss": loss},
                            {"logp": logp, "entropy": entropy, "values": values},
                        )
                        if self.dist.any_true(problem is not None):  # all ranks skip together (DDP would wait)
                            problem = problem or self.nonfinite_guard.on_another_rank(self)
                            break
                        # Weight by token share: the summed micro-batch gradients equal the full minibatch's (times the
                        # world size, which DDP's gradient average divides out again).
                        share = micro.response_mask.sum() / batch_tokens
                        (loss * share * self.dist.world_size).backward()
                    for key, value in (("policy_loss", pg_loss.item()), ("value_loss", v_loss.item()), ("entropy", ent.item()), *pg_stats.items()):
                        stats[key].append(value)
                    step_kl += pg_stats["approx_kl"] * share.item()
                    step_loss += loss.item() * share.item()
                if problem:
                    break
                # The minibatch's token-mean loss and approx KL, summed over ranks: every rank takes the same branch.
                step_loss, step_kl = self.dist.all_sum(step_loss, step_kl)
                stats["loss"].append(step_loss)
                if self.target_kl is not None and step_kl > 1.5 * self.target_kl:
                    stop = True  # SB3: skip this step and end the update, the policy moved too far already
                    break
                grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                if problem := self.nonfinite_guard.check_grad_norm(self, grad_norm, batch.indices):
                    break
                self.optimizer.step()
                steps_taken += 1
            if problem and steps_taken:
                # The rollout's own log-probs and values were finite under the weights this update started from:
                # non-finite values now mean the steps taken broke the weights. Skipping would sample (and
                # checkpoint) from them next.
                raise self.nonfinite_guard.fatal(
                    self, f"after {steps_taken} optimiser step(s) of this update, non-finite {problem['quantity']} in "
                    f"{problem['text']}: the update made the policy's outputs non-finite"
                )
            if stop or problem:
                self.optimizer.zero_grad(set_to_none=True)  # never let a non-finite gradient reach a later step
                break
        if steps_taken and self.dist.any_true(bool(bad := nonfinite_parameters(self.policy))):
            names = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "") if bad else "on another rank"
            raise self.nonfinite_guard.fatal(self, f"non-finite weights after the update's optimiser steps ({names})")
        self.policy.eval()
        self.iteration += 1
        if self.nlpo is not None:
            self.nlpo.maybe_refresh(self.policy, self.iteration)
        kl_coef = self.kl_controller.value
        if np.isfinite(self.last_rollout_kl):  # a NaN would stick in the adaptive coefficient for good
            self.kl_controller.update(self.last_rollout_kl)
        self.nonfinite_guard.end_iteration(self, problem)
        self.last_update_stats = stats  # the per-step ("loss") and per-micro-batch values behind the means
        means = {k: float(np.mean(v)) if v else float("nan") for k, v in stats.items()}
        # SB3's PPO tags for the quantities it logs too (entropy_loss is minus the mean entropy, as in SB3);
        # textgym's own names for the rest.
        metrics = {f"train/{SB3_TRAIN_TAGS.get(k, k)}": v for k, v in means.items() if k != "entropy"}
        metrics["train/entropy_loss"] = -means["entropy"]
        metrics["train/learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        metrics["train/clip_range"] = float(self.clip_range)
        metrics["train/nonfinite_skipped"] = float(problem is not None)
        metrics.update(self._rollout_metrics(buf))
        metrics["train/kl"] = self.last_rollout_kl
        metrics["train/kl_coef"] = kl_coef
        metrics["train/early_stop"] = float(stop)
        if use_critic:
            metrics["train/explained_variance"] = explained_variance(buf.values, buf.returns, buf.response_mask)
        metrics = self.dist.reduce_metrics(metrics)  # per-rank micro-batch means -> means over ranks
        self.last_metrics = metrics
        return metrics

    def _rollout_metrics(self, buf: SequenceRolloutBuffer) -> dict[str, float]:
        scores = buf.scores.float()
        metrics = {
            "rollout/ep_rew_mean": float(scores.mean()),
            "rollout/reward_std": float(scores.std()) if scores.numel() > 1 else 0.0,
            "rollout/ep_len_mean": float(buf.response_lengths.float().mean()),
            "rollout/eos_rate": float(buf.terminated.float().mean()),
        }
        for name, values in self.last_rollout.get("reward_components", {}).items():
            metrics[f"rollout/reward_{name}"] = float(np.nanmean(values))
        return metrics

    # ------------------------------------------------------------------ learn
    def learn(self, total_timesteps: int, callback=None, log_interval: int = 1, tb_log_name: str = "TokenPPO",
              reset_num_timesteps: bool = True, progress_bar: bool = False,
              checkpoint_path: str | None = None) -> "TokenPPO":
        """Alternate rollouts and updates until ``total_timesteps`` generated tokens (env transitions).

        SIGINT (Ctrl-C) or SIGTERM: the iteration in progress finishes, a checkpoint is written to
        ``checkpoint_path`` (if given) and ``agents.ppo.interrupt.TrainingInterrupted`` (a ``KeyboardInterrupt``)
        is raised with the resume instructions; a second signal stops at once. To continue a run, exactly as if
        it had never stopped: ``TokenPPO.load_checkpoint(path, env=...).learn(total_timesteps -
        model.num_timesteps, reset_num_timesteps=False)``.

        Args:
            total_timesteps: stop after at least this many tokens were generated (summed over slots).
            callback: an SB3 ``BaseCallback``, a list of them, or ``None``. ``on_training_start``, then per
                iteration ``on_rollout_start``, ``on_step`` after each env step (one token per active slot;
                returning ``False`` stops training), ``on_rollout_end``; ``on_training_end`` at the end.
                ``callback.locals`` holds the rollout loop's variables (``tokens``, ``rewards``, ``infos``...).
            log_interval: dump the logger every this many iterations.
            tb_log_name: tensorboard run name.
            reset_num_timesteps: start counting from 0 (``False`` continues a previous ``learn``).
            progress_bar: show a tqdm bar of generated tokens.
            checkpoint_path: where to write a checkpoint (:meth:`save_checkpoint`) when a signal stops training.
        """
        from stable_baselines3.common.callbacks import CallbackList, ProgressBarCallback
        from stable_baselines3.common.utils import configure_logger

        if total_timesteps <= 0:
            raise ValueError(f"total_timesteps must be > 0, got {total_timesteps}.")
        if reset_num_timesteps:
            self.num_timesteps = 0
        if self._logger is None:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callbacks = list(callback) if isinstance(callback, (list, tuple)) else ([callback] if callback is not None else [])
        if progress_bar and self.dist.is_main:
            callbacks.append(_TokenProgressBar())
        callback = CallbackList(callbacks)
        callback.init_callback(self)
        total_timesteps = total_timesteps + (0 if reset_num_timesteps else self.num_timesteps)
        self._learn_start = (time.perf_counter(), self.num_timesteps)  # for time/fps
        callback.on_training_start(locals(), globals())
        with GracefulInterrupt() as interrupt:
            self._learn_loop(total_timesteps, callback, log_interval, interrupt)
        callback.on_training_end()
        if self.dist.any_true(interrupt.requested is not None):  # every rank takes part in the checkpoint
            stop_after_signal(self, interrupt.requested or "a signal to another rank", checkpoint_path)
        return self

    def _learn_loop(self, total_timesteps: int, callback, log_interval: int, interrupt: GracefulInterrupt) -> None:
        # any_true: under torchrun a signal may reach the ranks in different iterations; they stop together.
        while self.num_timesteps < total_timesteps and not self.dist.any_true(interrupt.requested is not None):
            callback.on_rollout_start()
            if not self.collect_rollout(callback):
                break
            callback.on_rollout_end()
            start = time.perf_counter()
            metrics = self.train()
            elapsed = self.last_rollout["rollout_s"] + time.perf_counter() - start
            metrics["time/tokens_per_sec"] = self.buffer.num_tokens / max(elapsed, 1e-9)
            # SB3's fps: env steps (tokens) per second since this learn() started.
            metrics["time/fps"] = float(int((self.num_timesteps - self._learn_start[1]) / max(time.perf_counter() - self._learn_start[0], 1e-9)))
            metrics["time/generate_tokens_per_sec"] = self.buffer.num_tokens / max(self.last_rollout["generate_s"], 1e-9)
            for key, value in metrics.items():
                self.logger.record(key, value)
            self.logger.record("time/iterations", self.iteration, exclude="tensorboard")
            self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
            if log_interval and self.iteration % log_interval == 0:
                self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------ inference and persistence
    @torch.no_grad()
    def predict(self, observation: dict, state=None, episode_start=None, deterministic: bool = False):
        """Next token for each observation (SB3's shape): ``(actions [N] int64, None)``.

        Args:
            observation: textgym's dict of ``input_ids`` / ``attention_mask``, ``[L]`` or ``[N, L]`` (floats from
                SB3 wrappers are accepted: ids are exact below 2**24).
            state, episode_start: unused (SB3 signature).
            deterministic: greedy instead of sampling.
        """
        return ppo_io.predict(self, observation, deterministic)

    def evaluate(self, env: Any = None, num_episodes: int | None = None, deterministic: bool = True) -> dict[str, float]:
        """Mean task reward of ``num_episodes`` episodes (default: one batch of the env's slots) without training."""
        return ppo_io.evaluate(self, env, num_episodes, deterministic)

    def save(self, path: str) -> None:
        """Write ``path/`` with ``policy/`` (``save_pretrained``: safetensors + config, and the env's tokenizer,
        so ``AutoTokenizer`` and ``transformers.pipeline`` load it alone), ``adapter/`` for a LoRA run (a PEFT
        adapter over the pre-LoRA model) and ``token_ppo.json`` (hyperparameters, KL coefficient, counters).
        No pickle. A ``path`` ending in ``.zip`` (SB3's convention, e.g. its ``CheckpointCallback``) writes the
        same files as one zip archive, which :meth:`load` reads. Under ``torchrun`` call it on every rank: only
        rank 0 writes (FSDP gathers the full weights first)."""
        self.dist.save(self, path, ppo_io.save)

    @classmethod
    def load(cls, path: str, env: Any = None, device: str | torch.device = "auto", **overrides: Any) -> "TokenPPO":
        """Rebuild a ``TokenPPO`` saved with :meth:`save` (a directory or a ``.zip``; as in SB3, ``load("x")``
        finds ``x.zip``); ``env`` defaults to the saved env id;
        ``overrides`` replace saved hyperparameters. For inference or fine-tuning from the weights: the optimizer
        and random states start fresh (use :meth:`load_checkpoint` to continue a run exactly)."""
        return ppo_io.load(cls, path, env, device, overrides)

    def save_checkpoint(self, path: str) -> str:
        """Write a training checkpoint to the directory ``path`` atomically (temp dir, then rename): what
        :meth:`save` writes plus the optimizer, KL controller, every RNG (Python, numpy, torch, ``generator``,
        ``np_random``, the env's), the frozen reference, the NLPO copy and the counters. safetensors + JSON,
        no pickle. Returns ``path``. Layout: ``agents/ppo/checkpoint.py``."""
        failed = None
        try:
            if self.dist.fsdp:
                # A sharded optimizer state is not gathered (yet): the gathered weights and counters only, which
                # TokenPPO.load resumes with fresh Adam moments. Every rank takes part; rank 0 writes.
                self.dist.save(self, path, ppo_io.save)
            elif self.dist.is_main:
                ppo_checkpoint.save_checkpoint(self, path)
        except Exception as error:  # e.g. rank 0's disk is full: the other ranks must not wait for it forever
            failed = error
        # A barrier (no rank reads the checkpoint before it is complete) that tells every rank whether it failed.
        if self.dist.any_true(failed is not None):
            raise failed if failed is not None else WriteFailedOnAnotherRank(str(path))
        self.last_checkpoint = (str(path), self.iteration)
        return str(path)

    @classmethod
    def load_checkpoint(cls, path: str, env: Any = None, device: str | torch.device = "auto", **launch: Any) -> "TokenPPO":
        """Rebuild the run saved by :meth:`save_checkpoint`; continue it with
        ``learn(total_timesteps - model.num_timesteps, reset_num_timesteps=False)``: on CPU the continued run logs
        exactly what an uninterrupted one would have. ``env`` defaults to the saved env id (pass the same kind
        of env you trained on otherwise). A missing or corrupt checkpoint raises
        ``agents.ppo.checkpoint.CheckpointError`` naming the path and the problem."""
        algo = ppo_checkpoint.load_checkpoint(cls, path, env, device, launch)
        algo.last_checkpoint = (str(path), algo.iteration)
        return algo


try:
    from stable_baselines3.common.callbacks import ProgressBarCallback as _SB3ProgressBar

    class _TokenProgressBar(_SB3ProgressBar):
        """SB3's bar, advanced by the tokens generated this step instead of ``num_envs``."""

        def _on_step(self) -> bool:
            self.pbar.update(int(self.locals.get("active", np.ones(1)).sum()))
            return True
except ImportError:  # pragma: no cover
    _TokenProgressBar = None
