"""An env's constructor arguments resolved into one :class:`EnvConfig` (:func:`resolve_config`): prompts, reward,
tokenizer, budgets, allowed actions. Moved out of ``textgym/envs/core.py`` unchanged; ``textgym.envs.core``
re-exports every name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from textgym import rewards as rewards_lib
from textgym.prompts import PromptSource, as_prompt_source
from textgym.tokenizers import TextTokenizer, load_tokenizer

#: Signature of the optional per-step shaping reward:
#: ``step_reward(input_ids [n, P+T], actions [n], num_new_tokens [n]) -> [n] floats``, called on the slots that
#: took a token this step, after the token is written (so ``input_ids`` already holds it).
StepReward = Callable[[np.ndarray, np.ndarray, np.ndarray], Sequence[float]]


#: The constructor arguments of both envs that :func:`resolve_config` turns into an :class:`EnvConfig`.
CONFIG_ARGS = (
    "task", "prompts", "reward", "tokenizer", "max_prompt_tokens", "max_new_tokens", "step_reward",
    "allowed_token_ids", "restrict_actions", "reward_fallback", "split", "observation", "multi_turn",
)
OBSERVATION_MODES = ("dict", "flat")


@dataclass
class EnvConfig:
    """Everything an env needs, resolved from the constructor arguments (see :class:`TextGenerationEnv`)."""

    prompt_source: PromptSource
    reward: Any
    tokenizer: TextTokenizer
    max_prompt_tokens: int
    max_new_tokens: int
    step_reward: StepReward | None
    allowed_token_ids: np.ndarray | None
    reward_fallback: float | None
    task_name: str | None
    observation: str = "dict"
    multi_turn: Any = None  # a MultiTurnTask (textgym.envs.multi_turn), or None for one-completion episodes


def resolve_config(
    *,
    task: Any = None,
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
    multi_turn: Any = None,
    unknown_kwargs: dict[str, Any] | None = None,
    known_kwargs: Sequence[str] = (),
) -> EnvConfig:
    """Fill in a task's defaults and validate every argument, with errors that name the fix."""
    from textgym.envs.multi_turn import check_multi_turn
    from textgym.envs.tasks import get_task

    if unknown_kwargs:
        name = next(iter(unknown_kwargs))
        close = difflib.get_close_matches(name, known_kwargs, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise TypeError(
            f"textgym env got unknown keyword argument(s) {sorted(unknown_kwargs)}.{hint} "
            f"Accepted arguments: {', '.join(known_kwargs)}."
        )
    if observation not in OBSERVATION_MODES:
        raise ValueError(f"observation must be 'dict' or 'flat', got {observation!r}: 'dict' gives "
                         "Dict(input_ids, attention_mask), 'flat' one Box of the ids followed by the mask.")
    spec = get_task(task) if task is not None else None
    if prompts is None and spec is None:
        raise ValueError(
            "A textgym env needs prompts: pass `task=` (one of the built-in tasks) or `prompts=` "
            "(a list of dicts with a 'prompt' key, a .jsonl path or a datasets.Dataset)."
        )
    if multi_turn is None and spec is not None and spec.multi_turn is not None:
        multi_turn = spec.multi_turn()
    if multi_turn is not None:
        check_multi_turn(multi_turn)
    if reward is None and spec is None and multi_turn is None:
        raise ValueError(
            "A textgym env needs a reward: pass `reward=` (a registered reward name, a callable "
            "`reward(completions, **kwargs) -> list[float]`, called by keyword as TRL does, or {name: weight})."
        )
    prompt_source = as_prompt_source(prompts if prompts is not None else spec.load_prompts(split))
    reward_spec = reward if reward is not None else (spec.reward if spec is not None else None)
    # A multi-turn task rewards its turns itself; a `reward=` on top scores the whole conversation at the end.
    reward_fn = rewards_lib.make(reward_spec) if reward_spec is not None else None
    if reward_fn is not None:
        # Records that cannot feed the reward fail here, at make, not at the first episode end.
        rewards_lib.check_reward_inputs(
            reward_fn, prompt_source.field_names, source=f"the prompt records ({prompt_source.name})"
        )
    rewards_lib.check_fallback(reward_fallback, "reward_fallback")
    tok = load_tokenizer(tokenizer)
    P = max_prompt_tokens if max_prompt_tokens is not None else (spec.max_prompt_tokens if spec else 64)
    T = max_new_tokens if max_new_tokens is not None else (spec.max_new_tokens if spec else 32)
    for arg, value in (("max_prompt_tokens", P), ("max_new_tokens", T)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}.")
    allowed = None
    if restrict_actions and allowed_token_ids is None:
        if spec is None or spec.allowed_tokens is None:
            what = f"the {spec.name!r} task" if spec is not None else "an env without a built-in task"
            with_mask = ", ".join(name for name, task in _tasks().items() if task.allowed_tokens is not None)
            raise ValueError(
                f"restrict_actions=True, but {what} has no natural action mask (tasks with one: {with_mask}). "
                "Pass allowed_token_ids=[...] to restrict the tokens yourself."
            )
        allowed_token_ids = spec.allowed_tokens(tok)
    if allowed_token_ids is not None:
        allowed = np.unique(np.asarray(list(allowed_token_ids), dtype=np.int64))
        if allowed.size == 0 or allowed.min() < 0 or allowed.max() >= tok.vocab_size:
            raise ValueError(
                f"allowed_token_ids must be non-empty ids in [0, {tok.vocab_size}); got {allowed_token_ids!r}."
            )
        allowed = np.union1d(allowed, [tok.eos_token_id])  # an episode must always be able to end
    if step_reward is not None and not callable(step_reward):
        raise TypeError(f"step_reward must be callable(input_ids, actions, num_new_tokens), got {step_reward!r}.")
    return EnvConfig(
        prompt_source=prompt_source,
        reward=reward_fn,
        tokenizer=tok,
        max_prompt_tokens=int(P),
        max_new_tokens=int(T),
        step_reward=step_reward,
        allowed_token_ids=allowed,
        reward_fallback=reward_fallback,
        task_name=spec.name if spec is not None else None,
        observation=observation,
        multi_turn=multi_turn,
    )


def _tasks() -> dict:
    from textgym.envs.tasks import TASKS

    return TASKS
