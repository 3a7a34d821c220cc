"""The batched episode engine shared by :class:`TextGenerationEnv` and :class:`TextGenerationVectorEnv`.

Both envs hold one :class:`EpisodeBatch` (the single env is a batch of one), so the token layout, the
termination rules, the batched reward call and the info dicts are written once.

Layout (``docs/design.md``): with ``P = max_prompt_tokens`` and ``T = max_new_tokens`` each slot is a row of
``P + T`` ids. The prompt is left-padded into ``[0, P)``; generated token ``t`` goes to index ``P + t``. The
attention mask is 1 exactly on real tokens.

Multi-turn episodes (a :class:`~textgym.envs.multi_turn.MultiTurnTask`) keep the layout: the conversation after
the prompt fills ``[P, P + T)`` in order, the agent's tokens and the env's appended text alike, so ``T`` is the
episode's total token budget; ``agent_mask`` is 1 exactly on the tokens the agent wrote.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from gymnasium import spaces

from textgym import rewards as rewards_lib
from textgym.envs.env_config import (  # noqa: F401  (re-exported: defined here before)
    CONFIG_ARGS, OBSERVATION_MODES, EnvConfig, StepReward, _tasks, resolve_config,
)


def observation_space(cfg: EnvConfig) -> spaces.Dict | spaces.Box:
    """The observation of one slot: the Dict of token ids and attention mask, both int64 of shape (P + T,), or
    with ``observation="flat"`` one int64 Box of shape (2 (P + T),): the ids, then the mask. A multi-turn env's
    Dict also has ``agent_mask`` (1 on the agent's tokens); its flat form stays ids + mask."""
    length = cfg.max_prompt_tokens + cfg.max_new_tokens
    if cfg.observation == "flat":
        high = np.concatenate([np.full(length, cfg.tokenizer.vocab_size - 1), np.ones(length)]).astype(np.int64)
        return spaces.Box(np.zeros(2 * length, dtype=np.int64), high, dtype=np.int64)
    keys = {
        "input_ids": spaces.Box(0, cfg.tokenizer.vocab_size - 1, shape=(length,), dtype=np.int64),
        "attention_mask": spaces.Box(0, 1, shape=(length,), dtype=np.int64),
    }
    if cfg.multi_turn is not None:
        keys["agent_mask"] = spaces.Box(0, 1, shape=(length,), dtype=np.int64)
    return spaces.Dict(keys)


def split_flat_observation(observation: Any) -> dict[str, Any]:
    """The Dict form of an observation: a ``observation="flat"`` array ``[..., 2 L]`` (numpy or torch) becomes
    ``{"input_ids": [..., :L], "attention_mask": [..., L:]}``; a Dict observation is returned as it is."""
    if isinstance(observation, dict):
        return observation
    length = observation.shape[-1]
    if length % 2:
        raise ValueError(f"A flat textgym observation has an even length (ids, then mask); got shape {tuple(observation.shape)}.")
    half = length // 2
    return {"input_ids": observation[..., :half], "attention_mask": observation[..., half:]}


def left_padded_prompt(ids: Any, max_prompt_tokens: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A prompt's row in the observation layout: its last ``max_prompt_tokens`` ids (the end is what the
    completion continues) right-aligned, pad ids before them; and the row's attention mask.

    The one place that layout is written: the env's reset and the supervised warm start both use it, so a
    demonstration is trained on exactly the context the policy later acts in.
    """
    ids = np.asarray(ids, dtype=np.int64)[-max_prompt_tokens:] if max_prompt_tokens else np.zeros(0, dtype=np.int64)
    row = np.full(max_prompt_tokens, pad_id, dtype=np.int64)
    mask = np.zeros(max_prompt_tokens, dtype=np.int64)
    row[max_prompt_tokens - ids.size :], mask[max_prompt_tokens - ids.size :] = ids, 1
    return row, mask


def check_actions(actions: Any, n: int, vocab_size: int) -> np.ndarray:
    """Validate a batch of token-id actions and return them as an int64 array of shape (n,)."""
    arr = np.asarray(actions)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise TypeError(
            f"Actions must be integer token ids, got dtype {arr.dtype} ({actions!r:.80}). "
            "Pass an int / np.int64 (e.g. `int(action)`), not a float or a string."
        )
    if arr.size != n:
        raise ValueError(f"Expected {n} action(s), one per env slot, got shape {arr.shape}.")
    arr = arr.reshape(n).astype(np.int64)
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        raise ValueError(
            f"Action {int(arr[bad][0])} is outside the action space Discrete({vocab_size}): token ids run from "
            f"0 to {vocab_size - 1}. Check that the policy's vocabulary matches the env's tokenizer."
        )
    return arr


class EpisodeBatch:
    """N episodes of token generation in the fixed ``(P + T)`` layout.

    The engine does no sampling of its own except choosing prompts, for which it uses the ``rng`` passed in,
    so that the owning env's ``np_random`` makes resets reproducible.
    """

    def __init__(self, cfg: EnvConfig, num_slots: int):
        self.cfg = cfg
        self.n = num_slots
        self.P, self.T = cfg.max_prompt_tokens, cfg.max_new_tokens
        self.pad_id, self.eos_id = cfg.tokenizer.pad_token_id, cfg.tokenizer.eos_token_id
        self.input_ids = np.full((num_slots, self.P + self.T), self.pad_id, dtype=np.int64)
        self.attention_mask = np.zeros((num_slots, self.P + self.T), dtype=np.int64)
        self.num_new_tokens = np.zeros(num_slots, dtype=np.int64)
        self.prompt_index = np.full(num_slots, -1, dtype=np.int64)
        self.terminated = np.zeros(num_slots, dtype=bool)
        self.truncated = np.zeros(num_slots, dtype=bool)
        self.started = np.zeros(num_slots, dtype=bool)
        self._encoded: dict[int, np.ndarray] = {}  # prompt index -> ids, so each prompt is tokenized once
        self._warned_truncation = False
        self.num_steps = 0  # transitions taken over all slots, and episodes scored: the reward's trainer_state
        self.num_episodes = 0
        self.multi_turn = cfg.multi_turn
        if self.multi_turn is not None:
            self.agent_mask = np.zeros((num_slots, self.P + self.T), dtype=np.int64)
            self.turn_start = np.zeros(num_slots, dtype=np.int64)  # where the current agent turn began (in [0, T))
            self.num_turns = np.zeros(num_slots, dtype=np.int64)
            self.task_return = np.zeros(num_slots)  # the episode's task rewards so far (reward_components["task"])
            self.turn_rewards = np.zeros(num_slots)  # the task reward of each slot's last step
            self.turn_infos: list[dict[str, Any] | None] = [None] * num_slots  # the last step's turn info per slot
            self.states: list[Any] = [None] * num_slots
            self.stop_sequences = tuple(getattr(self.multi_turn, "stop_sequences", ()))

    # ---------------------------------------------------------------- prompts
    def encode_prompt(self, index: int) -> np.ndarray:
        ids = self._encoded.get(index)
        if ids is None:
            text = self.cfg.prompt_source[index]["prompt"]
            ids = np.asarray(self.cfg.tokenizer.encode(text), dtype=np.int64)
            if ids.size == 0:
                raise ValueError(
                    f"Prompt {index} ({text!r:.60}) encodes to zero tokens; give it some text the tokenizer knows."
                )
            if ids.size > self.P:
                # Keep the end of the prompt: it is what the completion continues. Documented in the env table.
                if not self._warned_truncation:
                    warnings.warn(
                        f"Prompt {index} has {ids.size} tokens, more than max_prompt_tokens={self.P}; its first "
                        f"{ids.size - self.P} tokens are dropped (textgym keeps the end of a prompt). Raise "
                        "max_prompt_tokens to keep whole prompts. (Warned once per env.)",
                        stacklevel=4,
                    )
                    self._warned_truncation = True
                ids = ids[-self.P :]
            self._encoded[index] = ids
        return ids

    def reset_slots(self, slots: np.ndarray, prompt_indices: np.ndarray) -> None:
        """Start new episodes in ``slots`` with the given prompt indices."""
        for slot, index in zip(slots, prompt_indices):
            self.input_ids[slot] = self.pad_id
            self.attention_mask[slot] = 0
            row, mask = left_padded_prompt(self.encode_prompt(int(index)), self.P, self.pad_id)
            self.input_ids[slot, : self.P], self.attention_mask[slot, : self.P] = row, mask
            self.prompt_index[slot] = index
        self.num_new_tokens[slots] = 0
        self.terminated[slots] = False
        self.truncated[slots] = False
        self.started[slots] = True
        if self.multi_turn is not None:
            self.agent_mask[slots] = 0
            self.turn_start[slots] = 0
            self.num_turns[slots] = 0
            self.task_return[slots] = 0.0
            self.turn_rewards[slots] = 0.0
            for slot in slots:
                self.turn_infos[slot] = None
                # A deep copy: a task may mutate what start() gets without touching the prompt source.
                record = copy.deepcopy(dict(self.cfg.prompt_source[int(self.prompt_index[slot])]))
                self.states[slot] = self.multi_turn.start(record)

    def sample_prompt_indices(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, len(self.cfg.prompt_source), size=count)

    def check_prompt_indices(self, indices: Any, count: int) -> np.ndarray:
        arr = np.asarray(indices)
        n = len(self.cfg.prompt_source)
        if arr.shape != (count,) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"options['prompt_indices'] must be {count} integers, got {indices!r:.80}.")
        if arr.min() < 0 or arr.max() >= n:
            raise ValueError(f"options['prompt_indices'] must lie in [0, {n}) (the prompt source has {n} prompts).")
        return arr.astype(np.int64)

    # ---------------------------------------------------------------- stepping
    def append(self, slots: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write one token into each of ``slots``; return the slots that just terminated / truncated."""
        positions = self.P + self.num_new_tokens[slots]
        self.input_ids[slots, positions] = actions
        self.attention_mask[slots, positions] = 1
        self.num_new_tokens[slots] += 1
        self.num_steps += int(slots.size)
        if self.multi_turn is not None:
            self.agent_mask[slots, positions] = 1
            self._advance_turns(slots, actions)
            return self.terminated[slots], self.truncated[slots]
        self.terminated[slots] = actions == self.eos_id
        self.truncated[slots] = ~self.terminated[slots] & (self.num_new_tokens[slots] >= self.T)
        return self.terminated[slots], self.truncated[slots]

    # ---------------------------------------------------------------- turns (multi-turn tasks only)
    def _advance_turns(self, slots: np.ndarray, actions: np.ndarray) -> None:
        """After each slot's new agent token: end the turn at EOS or a stop sequence, ask the task for its
        answer, append the env's text, and end the episode when the task says so or the budget runs out."""
        task = self.multi_turn
        self.turn_rewards[slots] = 0.0
        for slot, action in zip(slots.tolist(), actions.tolist()):
            self.turn_infos[slot] = None
            self.terminated[slot] = self.truncated[slot] = False
            ended_by_eos = action == self.eos_id
            # Decoded only when something reads it: tasks without stop sequences need it at EOS or the budget.
            text = self.current_turn_text(slot) if ended_by_eos or self.stop_sequences else None
            if not (ended_by_eos or any(stop in text for stop in self.stop_sequences)):
                if self.num_new_tokens[slot] >= self.T:  # the budget ran out inside the agent's turn
                    self._end_by_budget(slot, text if text is not None else self.current_turn_text(slot))
                continue
            from textgym.envs.multi_turn import check_turn

            result = check_turn(task, task.turn(self.states[slot], text))
            self.num_turns[slot] += 1
            self.turn_rewards[slot] = result.reward
            info: dict[str, Any] = {**result.info, "turn": int(self.num_turns[slot]), "agent_turn": text,
                                    "turn_reward": result.reward, "env_text": "", "num_env_tokens": 0}
            self.turn_infos[slot] = info
            if result.done:
                self.terminated[slot] = True
            else:
                ids = self.cfg.tokenizer.encode(result.env_text) if result.env_text else []
                room = self.T - int(self.num_new_tokens[slot])
                written = ids[:room]
                start = self.P + int(self.num_new_tokens[slot])
                self.input_ids[slot, start : start + len(written)] = written
                self.attention_mask[slot, start : start + len(written)] = 1
                self.num_new_tokens[slot] += len(written)
                self.turn_start[slot] = self.num_new_tokens[slot]
                # What the observation holds: the env's text, or the part of it that fit in the budget.
                shown = result.env_text if len(written) == len(ids) else self.cfg.tokenizer.decode(written)
                info.update(env_text=shown, num_env_tokens=len(written))
                if len(ids) >= room:  # no token left for the agent's next turn
                    self._end_by_budget(slot, "")
            self.task_return[slot] += self.turn_rewards[slot]

    def _end_by_budget(self, slot: int, unfinished_turn: str) -> None:
        reward = float(self.multi_turn.budget_end(self.states[slot], unfinished_turn))
        if reward != reward or abs(reward) == float("inf"):
            raise ValueError(f"{type(self.multi_turn).__name__}.budget_end returned {reward!r}; it must be finite.")
        self.truncated[slot] = True
        self.turn_rewards[slot] += reward
        if self.turn_infos[slot] is None:  # budget ran out mid-turn (no turn result this step)
            self.task_return[slot] += reward

    def current_turn_text(self, slot: int) -> str:
        """The agent's current (or just-finished) turn as text, EOS left out."""
        ids = self.input_ids[slot, self.P + self.turn_start[slot] : self.P + self.num_new_tokens[slot]]
        return self.cfg.tokenizer.decode(ids[ids != self.eos_id].tolist())

    def turn_step_info(self, slot: int) -> dict[str, Any]:
        """The info entries of the slot's last step (turn results), ``{}`` when no turn ended."""
        return dict(self.turn_infos[slot]) if self.multi_turn is not None and self.turn_infos[slot] else {}

    def task_step_rewards(self, slots: np.ndarray) -> np.ndarray:
        """The multi-turn task's reward of each slot's last step (0 without a multi-turn task)."""
        if self.multi_turn is None:
            return np.zeros(slots.size)
        return self.turn_rewards[slots].copy()

    def step_rewards(self, slots: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if self.cfg.step_reward is None or slots.size == 0:
            return np.zeros(slots.size)
        values = np.asarray(
            self.cfg.step_reward(self.input_ids[slots], actions, self.num_new_tokens[slots]), dtype=np.float64
        )
        if values.shape != (slots.size,) or not np.all(np.isfinite(values)):
            raise ValueError(
                f"step_reward {getattr(self.cfg.step_reward, '__qualname__', self.cfg.step_reward)!r} must "
                f"return {slots.size} finite floats, one per slot; got {values!r:.100}."
            )
        return values

    # ---------------------------------------------------------------- text and rewards
    def prompt_text(self, slot: int) -> str:
        return self.cfg.prompt_source[int(self.prompt_index[slot])]["prompt"]

    def completion_ids(self, slot: int) -> np.ndarray:
        ids = self.input_ids[slot, self.P : self.P + self.num_new_tokens[slot]]
        if self.multi_turn is not None:  # the whole conversation after the prompt; turn-ending EOS tokens left out
            return ids[ids != self.eos_id]
        return ids[:-1] if self.terminated[slot] else ids  # the EOS token is not part of the text

    def completion_text(self, slot: int) -> str:
        return self.cfg.tokenizer.decode(self.completion_ids(slot).tolist())

    def score(self, slots: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], list[str], list[str]]:
        """One batched reward call for the finished ``slots``: (total, components, prompts, completions)."""
        records = [self.cfg.prompt_source[int(self.prompt_index[s])] for s in slots]
        prompts = [r["prompt"] for r in records]
        completions = [self.completion_text(s) for s in slots]
        if self.cfg.reward is None:  # a multi-turn task without an extra conversation-level reward
            self.num_episodes += len(slots)
            return np.zeros(len(slots)), {"task": self.task_return[slots].copy()}, prompts, completions
        fields = {k: [r[k] for r in records] for k in self.cfg.prompt_source.field_names if k != "prompt"}
        state = rewards_lib.RewardState(global_step=self.num_steps, num_episodes=self.num_episodes)
        total, components = rewards_lib.score(
            self.cfg.reward, prompts, completions, fields, fallback=self.cfg.reward_fallback,
            completion_ids=[self.completion_ids(s).tolist() for s in slots], trainer_state=state,
        )
        self.num_episodes += len(slots)
        if self.multi_turn is not None:
            components = {**components, "task": self.task_return[slots].copy()}
        return total, components, prompts, completions

    def observation(self, slots: np.ndarray | slice | int = slice(None)) -> dict[str, np.ndarray] | np.ndarray:
        if self.cfg.observation == "flat":
            return np.concatenate([self.input_ids[slots], self.attention_mask[slots]], axis=-1)
        obs = {"input_ids": self.input_ids[slots].copy(), "attention_mask": self.attention_mask[slots].copy()}
        if self.multi_turn is not None:
            obs["agent_mask"] = self.agent_mask[slots].copy()
        return obs

    def action_mask(self) -> np.ndarray:
        """bool [vocab_size]: which tokens the task allows (all of them unless the task constrains tokens)."""
        mask = np.zeros(self.cfg.tokenizer.vocab_size, dtype=bool)
        if self.cfg.allowed_token_ids is None:
            mask[:] = True
        else:
            mask[self.cfg.allowed_token_ids] = True
        return mask

    def render_slot(self, slot: int) -> str:
        """Prompt, then the completion so far in brackets, e.g. ``Q: 2 + 3 = ? A: [ 5]<eos>``."""
        if not self.started[slot]:
            return "(not started: call reset())"
        if self.multi_turn is not None:
            return self._render_conversation(slot)
        text = self.prompt_text(slot) + "[" + self.completion_text(slot) + "]"
        if self.terminated[slot]:
            text += "<eos>"
        elif self.truncated[slot]:
            text += "<truncated>"
        return text

    def _render_conversation(self, slot: int) -> str:
        """Prompt, then each agent turn in brackets and the env's text plain: ``Q: ...[ <calc>2*3</calc>] = 6[ 6]``."""
        n = int(self.num_new_tokens[slot])
        ids, agent = self.input_ids[slot, self.P : self.P + n], self.agent_mask[slot, self.P : self.P + n]
        parts, start = [self.prompt_text(slot)], 0
        for end in range(1, n + 1):
            if end == n or agent[end] != agent[start]:
                text = self.cfg.tokenizer.decode(ids[start:end].tolist())
                if agent[start]:
                    text = "[" + text + "]" + ("<eos>" if (ids[start:end] == self.eos_id).any() else "")
                parts.append(text)
                start = end
        if self.terminated[slot]:
            parts.append("<done>")
        elif self.truncated[slot]:
            parts.append("<truncated>")
        return "".join(parts)
