"""The reward protocol, its errors, the ``trainer_state`` rewards receive, and the ``Reward`` base class.

A reward is any callable called by keyword, as TRL's ``GRPOTrainer`` calls reward functions::

    reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields) -> list[float | None]

batched, so TRL users' functions plug in unchanged. ``fields`` are the per-sample fields of the prompt records,
each a list aligned with ``completions`` (``references``, ``answer``, ``keywords``...). A reward with ``**kwargs``
ignores what it does not use; one without receives only the inputs it names (see :mod:`textgym.rewards.calling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

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


class Reward:
    """Base class for rewards scored one sample at a time (all the text built-ins).

    Subclasses implement :meth:`score_sample` and declare the per-sample fields they read; ``__call__`` checks
    the fields once per batch (a missing field is a :class:`RewardInputError` that says which key to add to the
    prompt records) and loops over the samples.

    Attributes:
        required_fields: fields every batch must carry (an instance may override it in ``__init__``, e.g. when
            a constructor option replaces the field).
        optional_fields: fields passed to :meth:`score_sample` when the batch has them.
    """

    required_fields: ClassVar[tuple[str, ...]] = ()
    optional_fields: ClassVar[tuple[str, ...]] = ()

    def score_sample(self, prompt: str, completion: str, **fields: Any) -> float:
        """Score one completion; ``fields`` holds this sample's value of each declared field."""
        raise NotImplementedError

    def __call__(self, prompts: list[str], completions: list[str], **fields: Any) -> list[float]:
        """Score the batch; conversational prompts/completions (message lists, as TRL passes them for a chat
        dataset) are scored on their text. ``completion_ids``, ``trainer_state`` and undeclared fields are ignored."""
        prompts, completions = [as_text(p) for p in prompts], [as_text(c) for c in completions]
        self.check_fields(len(completions), fields)
        names = [k for k in (*self.required_fields, *self.optional_fields) if k in fields]
        return [
            float(self.score_sample(p, c, **{k: fields[k][i] for k in names}))
            for i, (p, c) in enumerate(zip(prompts, completions))
        ]

    def check_fields(self, n: int, fields: dict[str, Any]) -> None:
        """Raise :class:`RewardInputError` when a required field is missing or a field is not aligned with the batch."""
        from textgym.rewards.registry import reward_name

        for key in self.required_fields:
            if key not in fields:
                raise RewardInputError(
                    f"Reward {reward_name(self)!r} reads the per-sample field {key!r}, but the batch only has "
                    f"{sorted(fields) or 'no fields'}. Add a {key!r} key to every prompt record "
                    f"(or use a task whose data has it)."
                )
        for key in (*self.required_fields, *self.optional_fields):
            if key in fields and len(fields[key]) != n:
                raise RewardInputError(
                    f"Reward {reward_name(self)!r}: field {key!r} has {len(fields[key])} values for {n} completions; "
                    f"every field must be a list aligned with `prompts`."
                )

    def __repr__(self) -> str:
        shown = {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_fields")}
        options = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({options})"
