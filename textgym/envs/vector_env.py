"""``TextGenerationVectorEnv``: N token-generation episodes stepped as arrays, the ``vector_entry_point`` of every
textgym id (``gym.make_vec("textgym/Sentiment-v0", num_envs=64)``).

One ``step`` writes N tokens with a few numpy operations and scores every episode that finished on that step
in ONE batched reward call, instead of N Python envs each calling the reward on one sample.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from textgym.envs.core import CONFIG_ARGS, EpisodeBatch, StepReward, check_actions, observation_space, resolve_config
from textgym.envs.text_env import ENV_KWARGS, text_to_rgb_array


class TextGenerationVectorEnv(VectorEnv):
    """A natively batched :class:`~textgym.envs.text_env.TextGenerationEnv`: same arguments, plus ``num_envs``
    and ``autoreset_mode``. Spaces, rewards and episode ends are those of the single env, slot by slot.

    ## Autoreset (Gymnasium's ``AutoresetMode``)
    * ``NEXT_STEP`` (default, Gymnasium's default): the step after a slot's episode ends resets that slot; its
      action is ignored and it returns the new episode's first observation with reward 0.
    * ``SAME_STEP``: a finished slot is reset in the same step; ``info["final_obs"]`` / ``info["final_info"]``
      hold the finished episode's last observation and info.
    * ``DISABLED``: a finished slot ignores further actions (its observation stays, reward 0, its flags stay
      set) until ``reset(options={"reset_mask": mask})`` or a full ``reset()``. TokenPPO uses this mode to run
      one synchronised batch of episodes.

    ## Reset options
    * ``prompt_indices``: int array ``[num_envs]``, the prompt of each slot (e.g. the same prompt G times for
      group baselines); default: drawn uniformly with ``np_random``.
    * ``reset_mask``: bool array ``[num_envs]``, reset only these slots (only in ``DISABLED`` mode).

    ## Info
    On the step a slot finishes: ``prompt``, ``completion``, ``num_new_tokens`` and ``reward_components`` (a
    dict of arrays), each with Gymnasium's ``_key`` mask marking the slots that hold a value. A multi-turn env
    (``multi_turn=``, see :class:`~textgym.envs.text_env.TextGenerationEnv`) adds, on a step that ended a slot's
    turn, ``turn``, ``agent_turn``, ``turn_reward``, ``env_text``, ``num_env_tokens`` and the task's own keys, and
    its Dict observation has ``agent_mask`` (``[num_envs, P + T]``).
    """

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        task: str | None = None,
        prompts: Any = None,
        reward: Any = None,
        tokenizer: Any = None,
        max_prompt_tokens: int | None = None,
        max_new_tokens: int | None = None,
        step_reward: StepReward | None = None,
        allowed_token_ids: Sequence[int] | None = None,
        restrict_actions: bool = False,
        reward_fallback: float | None = None,
        split: str = "train",
        observation: str = "dict",
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        multi_turn: Any = None,
        **unknown: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}.")
        config_args = {k: v for k, v in locals().items() if k in CONFIG_ARGS}
        self.config = resolve_config(**config_args, unknown_kwargs=unknown, known_kwargs=(*ENV_KWARGS, "num_envs", "autoreset_mode"))
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}.")
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError as e:
            raise ValueError(f"autoreset_mode must be one of {[m.value for m in AutoresetMode]}, got {autoreset_mode!r}.") from e
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.num_envs = int(num_envs)
        self.tokenizer = self.config.tokenizer
        self.prompt_source = self.config.prompt_source
        self.max_prompt_tokens, self.max_new_tokens = self.config.max_prompt_tokens, self.config.max_new_tokens
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = spaces.Discrete(self.tokenizer.vocab_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._batch = EpisodeBatch(self.config, self.num_envs)
        self._all = np.arange(self.num_envs)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: ended last step, reset on this one

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)  # seeds self.np_random
        options = options or {}
        unknown = set(options) - {"prompt_indices", "reset_mask"}
        if unknown:
            raise ValueError(f"Unknown reset option(s) {sorted(unknown)}; accepted: 'prompt_indices', 'reset_mask'.")
        slots = self._all
        if "reset_mask" in options:
            if self.autoreset_mode != AutoresetMode.DISABLED:
                raise ValueError(
                    "options['reset_mask'] is only meaningful with autoreset_mode=DISABLED; in the "
                    f"{self.autoreset_mode.value} mode finished slots reset by themselves."
                )
            mask = np.asarray(options["reset_mask"], dtype=bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},).")
            slots = self._all[mask]
        if "prompt_indices" in options:
            indices = self._batch.check_prompt_indices(options["prompt_indices"], self.num_envs)[slots]
        else:
            indices = self._batch.sample_prompt_indices(self.np_random, slots.size)
        self._batch.reset_slots(slots, indices)
        self._needs_reset[slots] = False
        infos: dict[str, Any] = {}
        for slot in slots:
            infos = self._add_info(infos, {"prompt": self._batch.prompt_text(slot)}, int(slot))
        return self._batch.observation(), infos

    # ------------------------------------------------------------------ step
    def step(self, actions: Any):
        batch = self._batch
        if not batch.started.all():
            raise RuntimeError("step() called before reset(): call envs.reset() first.")
        actions = check_actions(actions, self.num_envs, self.tokenizer.vocab_size)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        infos: dict[str, Any] = {}
        done = batch.terminated | batch.truncated

        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._needs_reset.any():
            restart = self._all[self._needs_reset]
            batch.reset_slots(restart, batch.sample_prompt_indices(self.np_random, restart.size))
            for slot in restart:
                infos = self._add_info(infos, {"prompt": batch.prompt_text(slot)}, int(slot))
            active = ~self._needs_reset
            self._needs_reset[:] = False
        else:
            # DISABLED: finished slots are frozen until reset. (Other modes never hold finished slots here.)
            active = ~done
        slots = self._all[active]
        if slots.size:
            batch.append(slots, actions[slots])
            rewards[slots] = batch.step_rewards(slots, actions[slots]) + batch.task_step_rewards(slots)
            if batch.multi_turn is not None:
                for slot in slots:
                    turn_info = batch.turn_step_info(int(slot))
                    if turn_info:
                        infos = self._add_info(infos, turn_info, int(slot))
        terminated = batch.terminated.copy()
        truncated = batch.truncated.copy()
        finished = slots[terminated[slots] | truncated[slots]]
        if finished.size:
            total, components, prompts, completions = batch.score(finished)
            rewards[finished] += total
            for j, slot in enumerate(finished):
                info = {
                    "prompt": prompts[j],
                    "completion": completions[j],
                    "num_new_tokens": int(batch.num_new_tokens[slot]),
                    "reward_components": {k: float(v[j]) for k, v in components.items()},
                }
                infos = self._add_info(infos, info, int(slot))

        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset[finished] = True
            obs = batch.observation()
        elif self.autoreset_mode == AutoresetMode.SAME_STEP and finished.size:
            final_obs = batch.observation()
            final_info = infos
            batch.reset_slots(finished, batch.sample_prompt_indices(self.np_random, finished.size))
            obs = batch.observation()
            infos = {}
            mask = np.zeros(self.num_envs, dtype=bool)
            mask[finished] = True
            infos["final_obs"] = np.array(
                [(final_obs[i] if isinstance(final_obs, np.ndarray) else {k: v[i] for k, v in final_obs.items()}) if mask[i] else None
                 for i in self._all], dtype=object)
            infos["_final_obs"] = mask
            infos["final_info"] = final_info
            infos["_final_info"] = mask
        else:
            obs = batch.observation()
        if self.autoreset_mode == AutoresetMode.DISABLED:
            # Frozen slots keep reporting their end so a caller polling the flags sees the whole batch's state.
            return obs, rewards, terminated, truncated, infos
        keep = np.zeros(self.num_envs, dtype=bool)
        keep[slots] = True
        return obs, rewards, terminated & keep, truncated & keep, infos

    # ------------------------------------------------------------------ extras
    def action_masks(self) -> np.ndarray:
        """bool ``[num_envs, vocab_size]``: the tokens each slot may take (all True unless the task constrains)."""
        return np.broadcast_to(self._batch.action_mask(), (self.num_envs, self.tokenizer.vocab_size))

    def render(self) -> tuple[str, ...] | tuple[np.ndarray, ...] | None:
        texts = tuple(self._batch.render_slot(i) for i in self._all)
        if self.render_mode == "human":
            print("\n".join(f"[{i}] {t}" for i, t in enumerate(texts)))
            return None
        if self.render_mode == "rgb_array":
            return tuple(text_to_rgb_array(t) for t in texts)
        return texts
