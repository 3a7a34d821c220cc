"""``Reward``: the base class of the rewards scored one sample at a time (every text built-in)."""

from __future__ import annotations

from typing import Any, ClassVar

from textgym.rewards.base import RewardInputError, as_text
from textgym.rewards.registry import reward_name


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
