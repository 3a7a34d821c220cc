"""The completion-level view of any textgym task: one action = one whole turn as a string.

Text-level clients (the GEM / OpenEnv / verifiers style: an LLM API call per turn) see the same tasks, data and
rewards as the token-level env, so token-level PPO and a text-level agent can be compared on one task::

    env = gym.make("textgym/CalculatorText-v0")          # or TextActionEnv(gym.make("textgym/Calculator-v0"))
    obs, info = env.reset(seed=0)                        # obs: the conversation so far, as text
    obs, reward, terminated, truncated, info = env.step(" <calc>37*48</calc>")
    obs, reward, terminated, truncated, info = env.step(" 1776")

Every ``textgym/<Task>-v0`` id has a ``textgym/<Task>Text-v0`` twin (``envs_registry.TEXT_ENVS``).
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: Characters an action sampled from the action space uses (any str is accepted by ``step``).
ACTION_CHARSET = string.ascii_letters + string.digits + " .,!?'-+*=<>/()\n"


class TextActionEnv(gym.Wrapper):
    """One action is one agent turn as text; the wrapped token-level env plays its tokens.

    ## Action space
    ``Text(max_length=max_new_tokens, charset=ACTION_CHARSET)`` for sampling; ``step`` accepts any ``str``
    (characters outside the charset are encoded by the tokenizer like any text).

    ## Observation space
    ``Text``: the conversation the token-level env observes, decoded (the prompt, as far as ``max_prompt_tokens``
    keeps it, then every turn so far, the agent's and the env's; EOS tokens left out).

    ## Step
    The action's tokens go to the wrapped env one by one. The turn ends where the token env ends it: at a task
    stop sequence (the action's remaining tokens are dropped, as an LLM API drops text after a stop string), or,
    when the string is used up, with an EOS token the wrapper adds. A single-turn task's episode therefore ends
    after one action; a multi-turn task's goes on with the env's reply in the next observation.

    ## Rewards
    The sum of the token env's rewards over the turn's steps: the same task reward as the token-level env.

    ## Episode end
    The token env's ``terminated`` / ``truncated`` (the token budget can run out inside a turn).

    ## Info
    The token env's info of the turn's last step (``completion``, ``reward_components``, the turn's entries), plus
    ``action_tokens`` (tokens played, EOS included) and ``dropped_tokens`` (tokens after a stop sequence).

    Args:
        env: a single textgym env (``gym.make("textgym/...-v0")`` or a ``TextGenerationEnv``), not a vector env.
    """

    def __init__(self, env: gym.Env):
        base = env.unwrapped
        if not hasattr(base, "tokenizer") or not hasattr(base, "_batch"):
            raise TypeError(
                f"TextActionEnv wraps a textgym TextGenerationEnv (gym.make('textgym/...-v0')), got {type(base).__name__}."
            )
        super().__init__(env)
        self.tokenizer = base.tokenizer
        length = base.max_prompt_tokens + base.max_new_tokens
        # The longest text a token decodes to bounds the observation's length (byte tokens decode to <= 1 char).
        longest_piece = max(len(t) for t in self.tokenizer.batch_decode([[i] for i in range(self.tokenizer.vocab_size)]))
        characters = set(ACTION_CHARSET) | set(string.printable)
        for index in range(len(base.prompt_source)):
            characters |= set(base.prompt_source[index]["prompt"])
        self.observation_space = spaces.Text(max_length=max(1, longest_piece) * length, min_length=0,
                                             charset=frozenset(characters))
        self.action_space = spaces.Text(max_length=base.max_new_tokens, min_length=0, charset=ACTION_CHARSET)

    def _text(self, observation: Any) -> str:
        base = self.env.unwrapped
        ids, mask = np.asarray(base._batch.input_ids[0]), np.asarray(base._batch.attention_mask[0])
        real = ids[mask.astype(bool)]
        return self.tokenizer.decode(real[real != self.tokenizer.eos_token_id].tolist())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._text(obs), info

    def step(self, action: Any):
        if not isinstance(action, str):
            raise TypeError(f"A TextActionEnv action is one turn as a str, got {type(action).__name__} ({action!r:.60}); "
                            "for token ids use the token-level env (gym.make('textgym/<Task>-v0')).")
        text_tokens = self.tokenizer.encode(action)
        tokens = [*text_tokens, self.tokenizer.eos_token_id]
        total, played = 0.0, 0
        for token in tokens:
            obs, reward, terminated, truncated, info = self.env.step(np.int64(token))
            total += float(reward)
            played += 1
            if terminated or truncated or "turn" in info:  # "turn": a multi-turn task's turn just ended
                break
        info = dict(info, action_tokens=played, dropped_tokens=max(0, len(text_tokens) - played))
        return self._text(obs), total, terminated, truncated, info


def make_text_action_env(**kwargs: Any) -> TextActionEnv:
    """Entry point of the ``textgym/<Task>Text-v0`` ids: a :class:`TextActionEnv` over ``TextGenerationEnv(**kwargs)``."""
    from textgym.envs.text_env import TextGenerationEnv

    return TextActionEnv(TextGenerationEnv(**kwargs))


def replay_turns(env: gym.Env, turns: list[str], prompt_index: int) -> dict[str, Any]:
    """Play ``turns`` (an agent's turns as text, e.g. a record's ``agent_turns``) on prompt ``prompt_index`` of a
    token-level textgym env, and return the episode as the env saw it.

    Returns a dict with ``input_ids``, ``attention_mask`` and ``agent_mask`` (int64 ``[P + T]``: the layout a
    token-level learner trains on; ``agent_mask`` marks the tokens a supervised or RL loss should count), ``return``
    (the sum of the rewards), ``turns_played`` and ``info`` (the last step's). Stops early if the episode ends.
    """
    text_env = env if isinstance(env, TextActionEnv) else TextActionEnv(env)
    text_env.reset(options={"prompt_index": int(prompt_index)})
    total, played, info = 0.0, 0, {}
    for turn in turns:
        _, reward, terminated, truncated, info = text_env.step(turn)
        total, played = total + reward, played + 1
        if terminated or truncated:
            break
    batch = text_env.env.unwrapped._batch
    agent = batch.agent_mask[0] if batch.multi_turn is not None else (
        np.where(np.arange(batch.P + batch.T) >= batch.P, batch.attention_mask[0], 0))
    return {"input_ids": batch.input_ids[0].copy(), "attention_mask": batch.attention_mask[0].copy(),
            "agent_mask": np.asarray(agent).copy(), "return": total, "turns_played": played, "info": info}
