"""The reward protocol, its errors, the ``trainer_state`` rewards receive, and the helpers every part of
``textgym.rewards`` shares (the bottom of the package: it imports none of the others).

A reward is any callable called by keyword, as TRL's ``GRPOTrainer`` calls reward functions::

    reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields) -> list[float | None]

batched, so TRL users' functions plug in unchanged. ``fields`` are the per-sample fields of the prompt records,
each a list aligned with ``completions`` (``references``, ``answer``, ``keywords``...). A reward with ``**kwargs``
ignores what it does not use; one without receives only the inputs it names (see :mod:`textgym.rewards.calling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class RewardFunction(Protocol):
    """What every reward is: called by keyword with ``prompts``, ``completions``, ``completion_ids``,
    ``trainer_state`` and the record fields, it returns one float per completion.

    The result may be a list, a tuple, a 1-D numpy array or a 1-D tensor; :func:`textgym.rewards.score` checks it.
    ``None`` for a sample means "not applicable" (TRL's convention): in a weighted combination that component is
    left out of that sample's sum. ``async def`` rewards are awaited.
    """

    def __call__(self, prompts: list[str], completions: list[str], **fields: Any) -> Sequence[float] | np.ndarray: ...


@dataclass(frozen=True)
class RewardState:
    """The ``trainer_state`` a textgym env passes its reward: what the env knows of training progress.

    It stands in for TRL's ``transformers.TrainerState`` (``trainer_state.global_step`` works in both), but an env
    does not see the optimiser, so its counts are the env's own, for this env instance.

    Attributes:
        global_step: env transitions (generated tokens, over every slot of a vector env) taken so far, this
            episode's last token included; SB3's ``num_timesteps`` when one env feeds the learner. Not the
            number of optimiser updates that TRL counts.
        num_episodes: episodes this env finished before this batch.
        max_steps: None: an env does not know the training budget (TRL's field of that name, for code that reads it).
    """

    global_step: int = 0
    num_episodes: int = 0
    max_steps: int | None = None


def is_conversation(value: Any) -> bool:
    """True for a conversational prompt or completion: a list of ``{"role": ..., "content": ...}`` messages."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(m, dict) and "content" in m for m in value
    )


def as_text(value: Any) -> Any:
    """A conversational prompt/completion as plain text (its messages' contents, one per line); text unchanged."""
    if is_conversation(value):
        return "\n".join(str(m["content"]) for m in value)
    return value


class RewardError(RuntimeError):
    """A reward raised, or returned something that is not one finite float per completion.

    The message names the reward, what was wrong, and how to fix it.
    """


class RewardInputError(RewardError, ValueError):
    """The batch does not fit the reward (a missing field, an unknown tone, a bad regex).

    Raised by the built-ins; never replaced by a ``fallback``: it is a data or configuration bug that would turn
    every reward into the fallback.
    """


class RewardWarning(UserWarning):
    """A reward failed and its ``fallback`` value was used instead (filter with ``warnings.simplefilter``)."""


def preview(text: Any, limit: int = 60) -> str:
    """``text`` as a short quoted string for error messages (non-ASCII kept as is)."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def is_missing(value: Any) -> bool:
    """True for the "no value" markers found in prompt records: None, "", [] and float NaN (pandas/datasets)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, (str, list, tuple)) and len(value) == 0:
        return True
    return False


def as_text_list(value: Any, field: str, reward: str) -> list[str]:
    """A per-sample field that holds one string or a list of strings (references, accepted answers) -> list[str]."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise RewardInputError(
        f"Reward {reward!r} expects the field {field!r} of each sample to be a string or a list of strings, "
        f"got {type(value).__name__}: {preview(value)}. Fix the {field!r} values of your prompt records."
    )
