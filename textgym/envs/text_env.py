"""``TextGenerationEnv``: one episode of token generation as a Gymnasium env."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from textgym.envs.core import CONFIG_ARGS, EpisodeBatch, StepReward, check_actions, observation_space, resolve_config

ENV_KWARGS = (*CONFIG_ARGS, "render_mode")


class TextGenerationEnv(gym.Env):
    """Generate a completion for a prompt, one token per step; a reward function scores the finished text.

    ## Description
    Each episode draws a prompt from the prompt source, and the agent writes the completion token by token.
    When the episode ends, the reward function scores ``(prompt, completion)`` together with the prompt
    record's other fields (references, answers, keywords...). Registered tasks (``envs_registry.py``) fix the
    prompts and the reward; any of them can be overridden through ``gym.make`` keyword arguments.

    ## Action space
    ``Discrete(vocab_size)``: the id of the next token in the env's tokenizer.

    ## Observation space
    ``Dict(input_ids=Box(0, vocab_size - 1, (P + T,), int64), attention_mask=Box(0, 1, (P + T,), int64))`` with
    ``P = max_prompt_tokens`` and ``T = max_new_tokens``. The prompt is left-padded into ``[0, P)`` (its last
    token at index ``P - 1``); generated token ``t`` sits at ``P + t``; the mask is 1 exactly on real tokens.

    With ``observation="flat"`` (or the ``textgym/<Task>Flat-v0`` ids): one ``Box(0, high, (2 (P + T),), int64)``,
    the ids followed by the mask (``textgym.envs.core.split_flat_observation`` gives the Dict back), for
    scripts written for flat observations (CleanRL's ``ppo.py``, SB3's ``MlpPolicy``).

    ## Rewards
    On the final step, the task reward of the decoded completion (EOS excluded); 0 on other steps, plus the
    optional ``step_reward`` shaping on every step. ``info["reward_components"]`` holds each component of a
    combined reward on the final step.

    ## Starting state
    A prompt drawn uniformly from the prompt source with the env's ``np_random`` (``reset(seed=...)`` makes it
    reproducible), or the one chosen by ``reset(options={"prompt_index": i})``. Prompts longer than ``P``
    tokens keep their last ``P`` tokens, with a warning.

    ## Episode end
    * ``terminated``: the agent emitted the tokenizer's EOS token.
    * ``truncated``: ``max_new_tokens`` tokens were generated without EOS.
    Stepping after the end raises ``RuntimeError``: call ``reset()``.

    ## Arguments
    * ``task``: a built-in task name (``"sentiment"``) providing default prompts, reward and lengths.
    * ``prompts``: a task name, a list of dicts with a ``"prompt"`` key (other keys reach the reward as keyword
      lists), a ``.jsonl`` path, or a ``datasets.Dataset``.
    * ``reward``: a registered reward name, a reward function (called by keyword as TRL calls it:
      ``reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields)``), or
      ``{reward: weight}`` for a weighted combination (see :mod:`textgym.rewards`).
    * ``tokenizer``: a local sentencepiece ``.model`` file or HF tokenizer directory; default: textgym's own.
    * ``max_prompt_tokens`` / ``max_new_tokens``: ``P`` and ``T`` above.
    * ``step_reward``: optional shaping, ``step_reward(input_ids[n, P+T], actions[n], num_new_tokens[n]) -> [n]``.
    * ``allowed_token_ids``: restrict the task to these tokens (EOS always allowed); see :meth:`action_masks`.
    * ``restrict_actions``: restrict the task to its natural alphabet, where it has one (Arithmetic: tokens made of
      digits, minus signs and spaces; Format: letters, spaces, commas and periods; EOS always), so that
      :meth:`action_masks` (MaskablePPO, TokenPPO) means something. Off by default: the full vocabulary.
    * ``reward_fallback``: if set, a reward that raises or returns NaN gives this value (with a warning)
      instead of stopping the episode with an error.
    * ``observation``: ``"dict"`` (the default) or ``"flat"`` (see Observation space).
    * ``split``: ``"train"`` or ``"test"``, which half of a built-in task's data (ignored with ``prompts=``).
    * ``render_mode``: ``"ansi"`` (``render()`` returns the text), ``"human"`` (prints it) or ``"rgb_array"``
      (the text drawn on an image, for video recorders; SB3's ``make_vec_env`` asks for this mode).
    """

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
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
        **unknown: Any,
    ):
        config_args = {k: v for k, v in locals().items() if k in CONFIG_ARGS}
        self.config = resolve_config(**config_args, unknown_kwargs=unknown, known_kwargs=ENV_KWARGS)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}.")
        self.render_mode = render_mode
        self.tokenizer = self.config.tokenizer
        self.prompt_source = self.config.prompt_source
        self.max_prompt_tokens, self.max_new_tokens = self.config.max_prompt_tokens, self.config.max_new_tokens
        self.observation_space = observation_space(self.config)
        self.action_space = spaces.Discrete(self.tokenizer.vocab_size)
        self._batch = EpisodeBatch(self.config, 1)
        self._slot = np.zeros(1, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"prompt_index"}  # as the vector env: a misspelt option must not be ignored
        if unknown:
            raise ValueError(f"Unknown reset option(s) {sorted(unknown)}; accepted: 'prompt_index'.")
        if "prompt_index" in options:
            index = self._batch.check_prompt_indices([options["prompt_index"]], 1)
        else:
            index = self._batch.sample_prompt_indices(self.np_random, 1)
        self._batch.reset_slots(self._slot, index)
        info = {"prompt": self._batch.prompt_text(0), "prompt_index": int(index[0])}
        if self.render_mode == "human":
            self.render()
        return self._batch.observation(0), info

    def step(self, action: Any):
        batch = self._batch
        if not batch.started[0]:
            raise RuntimeError("step() called before reset(): call env.reset() to start an episode.")
        if batch.terminated[0] or batch.truncated[0]:
            raise RuntimeError("step() called after the episode ended: call env.reset() to start a new one.")
        actions = check_actions(action, 1, self.tokenizer.vocab_size)
        terminated, truncated = batch.append(self._slot, actions)
        reward = float(batch.step_rewards(self._slot, actions)[0])
        info: dict[str, Any] = {"num_new_tokens": int(batch.num_new_tokens[0])}
        if terminated[0] or truncated[0]:
            total, components, prompts, completions = batch.score(self._slot)
            reward += float(total[0])
            info.update(
                prompt=prompts[0],
                completion=completions[0],
                reward_components={k: float(v[0]) for k, v in components.items()},
            )
        if self.render_mode == "human":
            self.render()
        return self._batch.observation(0), reward, bool(terminated[0]), bool(truncated[0]), info

    def action_masks(self) -> np.ndarray:
        """bool ``[vocab_size]``: the tokens this task allows (all True unless constrained). MaskablePPO reads it."""
        return self._batch.action_mask()

    def render(self) -> str | np.ndarray | None:
        text = self._batch.render_slot(0)
        if self.render_mode == "human":
            print(text)
            return None
        if self.render_mode == "rgb_array":
            return text_to_rgb_array(text)
        return text


def text_to_rgb_array(text: str, width: int = 480, height: int = 160) -> np.ndarray:
    """Draw ``text`` (wrapped) in black on white: ``uint8 [height, width, 3]``."""
    import textwrap

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    lines = textwrap.wrap(text, width=width // 7) or [""]
    ImageDraw.Draw(image).multiline_text((6, 6), "\n".join(lines[: height // 14]), fill="black")
    return np.asarray(image)
