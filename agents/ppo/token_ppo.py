"""``TokenPPO``: PPO for text generation, where each token is an action in ``Discrete(vocab_size)``.

SB3's API (``learn`` / ``save`` / ``load`` / ``predict``, ``BaseCallback``s, SB3's logger) over a textgym vector
env, with an inside built for 50k-action spaces: KV-cached batched rollouts, one teacher-forced pass per
sequence, a sequence-level buffer and a chunked vocabulary projection. The maths, symbol by symbol with the
variable that holds it: ``docs/theory.md``. One iteration (``collect_rollout`` then ``train``)::

    1 rollout     env.num_envs episodes sampled together          agents.ppo.rollout.generate_episodes
                  (dynamic sampling: until full of groups whose   agents.ppo.dynamic_sampling
                  rewards differ)
    2 score       old log-probs, values, reference log-probs     agents.ppo.scoring.score_episodes
    3 advantages  per-token rewards (task - beta KL), then GAE,   agents.ppo.scoring.rewards_and_advantages
                  a GRPO / RLOO group baseline or REINFORCE++
    4 update      n_epochs x minibatches: clipped surrogate +     agents.ppo.update.ppo_update
                  clipped value loss - entropy bonus
    5 controllers the iteration count, NLPO's lagged copy, the    TokenPPO._update_controllers
                  KL coefficient, the non-finite streak

The hyperparameters are the fields of :class:`agents.ppo.config.TokenPPOConfig`; what changes while training
(modules, optimizer, controllers, random streams, counters) is one :class:`agents.ppo.state.TrainingState`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from typing import Any

import numpy as np
import torch

from agents.distributions import NonFiniteLogitsError
from agents.models import disable_dropout
from agents.ppo import checkpoint as ppo_checkpoint
from agents.ppo import export as ppo_export
from agents.ppo.advantages import explained_variance
from agents.ppo.builders import allowed_tokens, enable_gradient_checkpointing, make_env, make_policy, make_samplers
from agents.ppo.config import INIT_SIGNATURE, TokenPPOConfig, split_arguments
from agents.ppo.distributed import setup_distributed, silent_logger
from agents.ppo.interrupt import GracefulInterrupt, stop_after_signal
from agents.ppo.kl import make_kl_controller
from agents.ppo.lora import adapters_disabled, apply_lora, has_lora
from agents.ppo.masking import LaggedMaskPolicy
from agents.ppo.nonfinite import NonFiniteGuard
from agents.ppo.rollout import Episodes, generate_episodes
from agents.ppo.sb3_api import SB3Methods, callback_list
from agents.ppo.dynamic_sampling import fill_informative_groups
from agents.ppo.scoring import Rollout, rewards_and_advantages, rollout_metrics, score_episodes
from agents.ppo.state import StateAttribute, TrainingState
from agents.ppo.update import UpdateResult, ppo_update, update_metrics


class TokenPPO(SB3Methods):
    """PPO over a textgym vector env whose actions are tokens.

    ``TokenPPO(policy, env, learning_rate=3e-5, ...)``: every keyword is a :class:`TokenPPOConfig` field (its
    docs say what each does); ``TokenPPO(policy, env, config=TokenPPOConfig(...))`` is the same, and keywords
    given with ``config`` replace its fields.

    Args:
        policy: an ``agents.models.ActorCriticLM``, a local model directory (``ActorCriticLM.from_pretrained``),
            or ``"default"`` (``agents.models.build_default_model`` with the env's tokenizer).
        env: a textgym id (``"textgym/Arithmetic-v0"``, made with ``gym.make_vec(id, num_envs=num_envs)``) or a
            textgym vector env. TokenPPO runs it with ``autoreset_mode=DISABLED`` (switched, with a warning,
            when the env was made otherwise). One rollout is one synchronised batch of ``num_envs`` episodes.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        distributed: data parallelism over ``torchrun``'s ranks (``agents.ppo.distributed``): ``None`` detects a
            ``torchrun`` launch (``WORLD_SIZE`` > 1), ``False`` stays single-process, ``True`` insists. Under it
            ``num_envs`` is per rank, ``batch_size`` is global, and only rank 0 saves and logs.
        fsdp: shard the policy (and the reference) with FSDP instead of replicating it with DDP (needs
            ``torchrun``).
        config: a :class:`TokenPPOConfig` (default: its defaults).
    """

    # What changes while training lives in self.state (agents.ppo.state.TrainingState); these read and write it.
    policy, ref_policy, optimizer, kl_controller = StateAttribute(), StateAttribute(), StateAttribute(), StateAttribute()
    nonfinite_guard, sampler, generator, np_random = StateAttribute(), StateAttribute(), StateAttribute(), StateAttribute()
    num_timesteps, iteration, nlpo, _first_reset = StateAttribute(), StateAttribute(), StateAttribute(), StateAttribute()

    def __init__(self, policy: Any, env: Any, *args: Any, **kwargs: Any):
        self.config, launch = split_arguments(args, kwargs)
        config = self.config
        self.dist = setup_distributed(launch["distributed"], launch["fsdp"], launch["device"])  # a no-op on one process
        self.device = self.dist.device
        #: ``(path, iteration)`` of the checkpoint this run last wrote or loaded (named when it must stop).
        self.last_checkpoint: tuple[str, int] | None = None
        guard = NonFiniteGuard(config.max_consecutive_nonfinite, describe_row=self._describe_row)
        if config.seed is not None:
            from stable_baselines3.common.utils import set_random_seed

            set_random_seed(self.dist.rank_seed(config.seed))
        self.env = make_env(env, config.num_envs, config.env_kwargs, warn=True)
        base_env = self.env.unwrapped
        self.num_envs = base_env.num_envs
        config.check_slots(self.num_envs, self.dist.world_size)
        config.check_length_limit(base_env.max_new_tokens)
        self.dist.check(self.num_envs, base_env, config.nlpo_top_p)
        if config.dynamic_sampling and self.dist.world_size > 1:
            raise ValueError("dynamic_sampling runs on one process for now: under torchrun each rank would keep a "
                             "different number of groups. Turn it off, or run on one process.")
        model = make_policy(policy, base_env, config.policy_kwargs, config.seed).to(self.device)
        # The model the run started from, when it is a directory: a LoRA run's saved PEFT adapter names it.
        self.base_model_path = str(policy) if isinstance(policy, (str, os.PathLike)) and policy != "default" else None
        if config.lora is not None:
            apply_lora(model, config.lora)
        self.dist.broadcast_module(model)  # every rank starts from rank 0's weights
        disable_dropout(model)  # dropout (LoRA's included) would make ratio != 1 on unchanged weights
        self.use_bf16 = bool(config.bf16) and self.device.type == "cuda"
        if config.bf16 and not self.use_bf16:
            warnings.warn("bf16=True is used on CUDA only; this run is on CPU and stays in float32.", stacklevel=2)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self.old_logprobs_from_rollout = config.old_logprobs == "rollout" or (config.old_logprobs == "auto" and not self.use_bf16)

        # The frozen reference: the policy with adapters off under LoRA, else a deep copy (none if beta is 0).
        kl_controller = make_kl_controller(config.kl_coef, config.kl_target)
        self.uses_reference = config.uses_reference
        reference = None
        if self.uses_reference and not has_lora(model):
            reference = copy.deepcopy(model).eval().requires_grad_(False)
        nlpo = (LaggedMaskPolicy(model, config.nlpo_top_p, config.nlpo_min_tokens, config.nlpo_update_interval)
                if config.nlpo_top_p else None)
        sampler, self.ref_sampler = make_samplers(config, allowed_tokens(base_env, model.vocab_size, self.device), nlpo)
        # What the update runs forward/backward through: the policy itself, DDP over it, or its FSDP shards.
        self.train_policy = self.dist.wrap(model, reference, critic_trains=config.uses_critic)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                      eps=1e-5, weight_decay=0.0)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.dist.rank_seed(config.seed) if config.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
        self.state = TrainingState(model, reference, nlpo, optimizer, kl_controller, guard, sampler, generator,
                                   np.random.default_rng(self.dist.rank_seed(config.seed)), self.env)
        self.rollout: Rollout | None = None
        self._logger = None if self.dist.is_main else silent_logger()  # only rank 0 logs

    def __getattr__(self, name: str) -> Any:
        """The hyperparameters read as attributes (``algo.learning_rate`` is ``algo.config.learning_rate``)."""
        if name != "config" and name in TokenPPOConfig.field_names():
            return getattr(self.config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The hyperparameters as ``token_ppo.json`` saves them."""
        return self.config.to_dict()

    # ------------------------------------------------------------------ one iteration, steps 1-3
    def collect_rollout(self, callback=None) -> bool:
        """Sample one batch of episodes, score them and compute their advantages (``self.rollout``); ``False``
        if a callback stopped training. ``callback.on_step()`` is called once per env step (one token for
        every active slot), after ``self.num_timesteps`` grew by the number of slots that took a token."""
        self.policy.eval()
        start = time.perf_counter()
        if self.config.dynamic_sampling:  # 1 rollout(s) until full of groups whose rewards differ (DAPO)
            sampled = fill_informative_groups(lambda: self._sample(callback), self.config.group_size,
                                              self.num_envs // self.config.group_size,
                                              self.config.dynamic_sampling_max_rollouts)
        else:
            sampled = self._sample(callback)                                                      # 1 rollout
            sampled = None if sampled is None else (*sampled, None)
        if sampled is None:  # a callback stopped training
            return False
        episodes, prompts, refill = sampled
        generate_s = time.perf_counter() - start
        self.rollout = self.prepare_rollout(episodes, prompts)                                   # 2 + 3
        self.rollout.generate_s, self.rollout.rollout_s = generate_s, time.perf_counter() - start
        self.rollout.dynamic_sampling = refill
        return True

    def _sample(self, callback: Any) -> tuple[Episodes, np.ndarray] | None:
        """One batch of ``num_envs`` episodes on freshly drawn prompts, and the prompts (``None``: stopped)."""
        prompts = self._prompt_indices()
        episodes = self._generate_rollout(prompts, callback)
        return None if episodes is None else (episodes, prompts)

    def prepare_rollout(self, episodes: Episodes, prompts: np.ndarray) -> Rollout:
        """Steps 2 and 3 on sampled ``episodes`` (rows answering ``prompts``): the scored global rollout."""
        reference = self._reference if self.uses_reference else None
        buffer = score_episodes(episodes, prompts, self.policy, reference, self.sampler, self.ref_sampler,  # 2 score
                                batch_size=self.config.batch_size, with_values=self.config.uses_critic,
                                device=self.device, autocast=self._autocast)
        buffer = self.dist.gather_buffer(buffer)  # the global rollout (rank 0's rows first): global whitening and KL
        buffer, kl = rewards_and_advantages(buffer, self.kl_controller.value, self.config)        # 3 advantages
        return Rollout(buffer.to(self.device), kl, episodes.completions, episodes.reward_components)

    # ------------------------------------------------------------------ one iteration, steps 4-5
    def train(self) -> dict[str, float]:
        """``n_epochs`` passes of minibatch PPO over the rollout, then the controllers; returns (and logs) the
        iteration's metrics."""
        if self.rollout is None:
            raise RuntimeError("train() needs a rollout: call collect_rollout() (learn() does both).")
        self.policy.train()
        # Every rank draws the same order (rank 0's seed): they must agree on each global minibatch.
        shuffle = torch.Generator().manual_seed(self.dist.shared_int(int(self.np_random.integers(2**31))))
        result = ppo_update(self.rollout.buffer, config=self.config, train_policy=self.train_policy,        # 4 update
                            policy=self.policy, optimizer=self.optimizer, sampler=self.sampler,
                            guard=self.nonfinite_guard, dist=self.dist, shuffle=shuffle, autocast=self._autocast)
        # The non-finite guard after the update: the steps must have left finite weights (else stop at once).
        self.nonfinite_guard.check_weights(self.iteration, result.problem, result.steps, self.policy, self.dist.any_true,
                                           self.last_checkpoint)
        self.policy.eval()
        kl_coef = self._update_controllers(self.rollout.kl, result)                              # 5 controllers
        self.last_update_stats = result.stats  # the per-step ("loss") and per-micro-batch values behind the means
        self.last_metrics = self._metrics(self.rollout, result, kl_coef)
        return self.last_metrics

    def _update_controllers(self, rollout_kl: float, result: UpdateResult) -> float:
        """Count the iteration, refresh NLPO's lagged copy, adapt the KL coefficient, keep the non-finite streak;
        returns the KL coefficient this iteration used."""
        self.iteration += 1
        if self.nlpo is not None:
            self.nlpo.maybe_refresh(self.policy, self.iteration)
        kl_coef = self.kl_controller.value
        if np.isfinite(rollout_kl):  # a NaN would stick in the adaptive coefficient for good
            self.kl_controller.update(rollout_kl)
        self.nonfinite_guard.end_iteration(self.iteration, result.problem, self.last_checkpoint)
        return kl_coef

    # ------------------------------------------------------------------ the steps' helpers
    def _prompt_indices(self) -> np.ndarray:
        num_prompts = len(self.env.unwrapped.prompt_source)
        prompts = self.np_random.integers(0, num_prompts, size=self.num_envs // self.config.group_size)
        return np.repeat(prompts, self.config.group_size)  # rows [g*G, (g+1)*G) share a prompt

    def _generate_rollout(self, prompts: np.ndarray, callback: Any) -> Episodes | None:
        def on_step(active_slots: int, step_locals: dict) -> bool:
            self.num_timesteps += active_slots
            if callback is None:
                return True
            callback.update_locals(step_locals)
            return callback.on_step()

        steps_before = self.num_timesteps
        try:
            episodes = self.generate(self.env, prompts, seed=self.dist.rank_seed(self.config.seed) if self._first_reset else None,
                                     on_step=on_step, record_logprobs=self.old_logprobs_from_rollout)
        except NonFiniteLogitsError as e:
            raise self.nonfinite_guard.fatal(self.iteration, f"the policy's logits are non-finite in the rollout ({e})",
                                             self.last_checkpoint) from e
        self._first_reset = False
        if self.dist.any_true(episodes is None):  # a callback that stops one rank stops all of them
            return None
        # The token count is global (all ranks agree when learn() stops): this rank's plus the others'.
        self.num_timesteps = steps_before + int(self.dist.all_sum(self.num_timesteps - steps_before)[0])
        return episodes

    def _metrics(self, rollout: Rollout, result: UpdateResult, kl_coef: float) -> dict[str, float]:
        metrics = update_metrics(result, lr=float(self.optimizer.param_groups[0]["lr"]), clip_range=self.config.clip_range)
        metrics.update(rollout_metrics(rollout, kl_coef))
        metrics["train/early_stop"] = float(result.early_stop)
        if self.config.uses_critic:
            buf = rollout.buffer
            metrics["train/explained_variance"] = explained_variance(buf.values, buf.returns, buf.action_mask)
        return self.dist.reduce_metrics(metrics)  # per-rank micro-batch means -> means over ranks

    def _describe_row(self, row: int) -> dict[str, Any]:
        if self.rollout is None:
            return {"row": row, "prompt": None, "completion": None}
        return self.rollout.describe_row(row, self.env.unwrapped.prompt_source)

    @property
    def buffer(self):
        """The last rollout's :class:`agents.ppo.buffer.SequenceRolloutBuffer` (``None`` before the first)."""
        return None if self.rollout is None else self.rollout.buffer

    @property
    def last_rollout(self) -> dict[str, Any]:
        """The last rollout's ``completions``, ``reward_components``, ``kl`` and timings (``{}`` before the first)."""
        if self.rollout is None:
            return {}
        return {k: v for k, v in vars(self.rollout).items() if k != "buffer"}

    def _autocast(self):
        if self.use_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _reference(self):
        """Context manager yielding the reference policy (adapters disabled under LoRA)."""
        if self.ref_policy is not None:
            return contextlib.nullcontext(self.ref_policy)
        return adapters_disabled(self.policy)

    def generate(self, env: Any, prompt_indices: np.ndarray | None, deterministic: bool = False, **kwargs: Any) -> Episodes | None:
        """One synchronised batch of episodes on ``env`` with the run's policy, distribution and generator
        (``agents.ppo.rollout.generate_episodes``; ``kwargs``: its ``seed``, ``on_step``, ``record_logprobs``).
        Under FSDP call it on every rank."""
        return generate_episodes(self.policy, env, self.sampler, prompt_indices=prompt_indices, generator=self.generator,
                                 deterministic=deterministic, autocast=self._autocast, all_done=self.dist.rollout_all_done,
                                 **kwargs)

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
        from stable_baselines3.common.utils import configure_logger

        if total_timesteps <= 0:
            raise ValueError(f"total_timesteps must be > 0, got {total_timesteps}.")
        if reset_num_timesteps:
            self.num_timesteps = 0
        if self._logger is None:
            self._logger = configure_logger(self.config.verbose, self.config.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback = callback_list(self, callback, progress_bar=progress_bar and self.dist.is_main)
        total_timesteps = total_timesteps + (0 if reset_num_timesteps else self.num_timesteps)
        learn_start = (time.perf_counter(), self.num_timesteps)  # for time/fps
        callback.on_training_start(locals(), globals())
        with GracefulInterrupt() as interrupt:
            # any_true: under torchrun a signal may reach the ranks in different iterations; they stop together.
            while self.num_timesteps < total_timesteps and not self.dist.any_true(interrupt.requested is not None):
                callback.on_rollout_start()
                if not self.collect_rollout(callback):
                    break
                callback.on_rollout_end()
                start = time.perf_counter()
                metrics = self.train()
                self._record_iteration(metrics, time.perf_counter() - start, learn_start, log_interval)
        callback.on_training_end()
        if self.dist.any_true(interrupt.requested is not None):  # every rank takes part in the checkpoint
            stop_after_signal(interrupt.requested or "a signal to another rank",
                              f"after iteration {self.iteration} ({self.num_timesteps} timesteps)", checkpoint_path,
                              self.save_checkpoint)
        return self

    # ------------------------------------------------------------------ inference and persistence
    def evaluate(self, env: Any = None, num_episodes: int | None = None, deterministic: bool = True) -> dict[str, float]:
        """Mean task reward of ``num_episodes`` episodes (default: one batch of the env's slots) without training:
        ``reward_mean``, ``reward_std``, ``ep_len_mean``, ``eos_rate``, ``num_episodes``, ``reward_<component>``."""
        from agents.evaluation import evaluate_policy

        env = self.env if env is None else make_env(env, self.num_envs, None, warn=False)
        num_episodes = env.unwrapped.num_envs if num_episodes is None else int(num_episodes)
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be >= 1, got {num_episodes}.")
        return evaluate_policy(self, env, num_episodes, deterministic)

    def save(self, path: str) -> None:
        """Write ``path/`` with ``policy/`` (``save_pretrained``: safetensors + config, and the env's tokenizer,
        so ``AutoTokenizer`` and ``transformers.pipeline`` load it alone), ``adapter/`` for a LoRA run (a PEFT
        adapter over the pre-LoRA model) and ``token_ppo.json`` (hyperparameters, KL coefficient, counters).
        No pickle. A ``path`` ending in ``.zip`` (SB3's convention, e.g. its ``CheckpointCallback``) writes the
        same files as one zip archive, which :meth:`load` reads. Under ``torchrun`` call it on every rank: only
        rank 0 writes (FSDP gathers the full weights first)."""
        self.dist.save(self.policy, lambda policy: self._write_export(path, policy))

    def _write_export(self, path: str, policy: torch.nn.Module) -> None:
        ppo_export.save_export(path, policy, self.env, self.config, kl_coef_now=self.kl_controller.value,
                               num_timesteps=self.num_timesteps, iteration=self.iteration,
                               base_model_path=self.base_model_path)

    @classmethod
    def load(cls, path: str, env: Any = None, device: str | torch.device = "auto", **overrides: Any) -> "TokenPPO":
        """Rebuild a ``TokenPPO`` saved with :meth:`save` (a directory or a ``.zip``; as in SB3, ``load("x")``
        finds ``x.zip``); ``env`` defaults to the saved env id;
        ``overrides`` replace saved hyperparameters. For inference or fine-tuning from the weights: the optimizer
        and random states start fresh (use :meth:`load_checkpoint` to continue a run exactly)."""
        return cls._from_saved(ppo_export.read_export(path, env, overrides), device)

    @classmethod
    def _from_saved(cls, saved: ppo_export.SavedRun, device: str | torch.device) -> "TokenPPO":
        """A ``TokenPPO`` built from a read export: its weights, config and counters; fresh optimizer and RNGs."""
        algo = cls(saved.policy, saved.env, config=saved.config, device=device, **saved.launch)
        if saved.kl_coef_now is not None:
            algo.kl_controller.value = saved.kl_coef_now
        algo.num_timesteps, algo.iteration = saved.num_timesteps, saved.iteration
        return algo

    def save_checkpoint(self, path: str) -> str:
        """Write a training checkpoint to the directory ``path`` atomically (temp dir, then rename): what
        :meth:`save` writes plus the training state (:class:`agents.ppo.state.TrainingState`: the optimizer, KL
        controller, every RNG, the frozen reference, the NLPO copy and the counters). safetensors + JSON, no
        pickle. Returns ``path``. Layout: ``agents/ppo/checkpoint.py``."""
        def write() -> None:
            if self.dist.fsdp:
                # A sharded optimizer state is not gathered (yet): the gathered weights and counters only, which
                # TokenPPO.load resumes with fresh Adam moments. Every rank takes part; rank 0 writes.
                self.save(path)
            elif self.dist.is_main:
                ppo_checkpoint.save_checkpoint(path, self.state, lambda directory: self._write_export(directory, self.policy))

        self.dist.write_together(write, str(path))
        self.last_checkpoint = (str(path), self.iteration)
        return str(path)

    @classmethod
    def load_checkpoint(cls, path: str, env: Any = None, device: str | torch.device = "auto", **launch: Any) -> "TokenPPO":
        """Rebuild the run saved by :meth:`save_checkpoint`; continue it with
        ``learn(total_timesteps - model.num_timesteps, reset_num_timesteps=False)``: on CPU the continued run logs
        exactly what an uninterrupted one would have. ``env`` defaults to the saved env id (pass the same kind
        of env you trained on otherwise). A missing or corrupt checkpoint raises
        ``agents.ppo.checkpoint.CheckpointError`` naming the path and the problem.

        Under ``torchrun`` every rank loads rank 0's checkpoint, then takes its own random streams again (``seed +
        rank``, moved on by the iteration): a distributed resume continues the run, but only a single-process
        resume reproduces the uninterrupted run exactly."""
        saved = ppo_checkpoint.read_checkpoint(path, env, launch)
        algo = cls._from_saved(saved.export, device)
        saved.restore(algo.state)
        if algo.dist.enabled:
            algo.state.reseed_streams(algo.dist.rank_seed((algo.config.seed or 0) + 1_000_003 * algo.iteration))
        algo.last_checkpoint = (str(path), algo.iteration)
        return algo


TokenPPO.__init__.__signature__ = INIT_SIGNATURE  # help(TokenPPO) lists every TokenPPOConfig field
