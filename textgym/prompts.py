"""PromptSource: the prompts an env draws episodes from, whatever they came as.

Accepted inputs (:func:`as_prompt_source`): a built-in task name, a list of dicts, a ``.jsonl`` file (one JSON
object per line), a ``datasets.Dataset`` (or anything with ``__len__``, ``__getitem__`` returning dicts and
``column_names``), or an existing :class:`PromptSource`. Every record needs a non-empty string ``"prompt"``;
its other fields (``answer``, ``references``, ...) reach the reward function as keyword lists, so every record
must have the same field names. An optional ``"completion"`` (a demonstration) is kept for supervised warm-start
and not passed to rewards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


# "prompt" reaches rewards as `prompts`; "completion" is a demonstration for supervised warm-start, not a reward input.
NOT_REWARD_FIELDS = ("prompt", "completion")


class PromptSource:
    """A finite, validated list of prompt records with uniform sampling.

    Attributes:
        field_names: the record keys that reach the reward as keyword lists: every key except ``"prompt"`` and
            ``"completion"`` (an optional demonstration, used by supervised warm-start).

    Args:
        records: dicts, each with a non-empty str ``"prompt"`` and the same field names.
        name: where the records came from (shown in errors and ``repr``).

    Raises:
        ValueError: no records, a record without a usable ``"prompt"``, or records with different fields.
    """

    def __init__(self, records: Sequence[Mapping[str, Any]], name: str = "prompts"):
        self.name = name
        self._records = _validate(list(records), name, where="record")
        self.field_names: list[str] = [k for k in self._records[0] if k not in NOT_REWARD_FIELDS]

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict:
        return self._records[index]

    def __iter__(self):
        return iter(self._records)

    def __repr__(self) -> str:
        return f"PromptSource({self.name!r}, {len(self)} records, fields={self.field_names})"

    @property
    def prompts(self) -> list[str]:
        """Every prompt text, in record order."""
        return [r["prompt"] for r in self._records]

    def sample(self, rng: np.random.Generator) -> tuple[int, dict]:
        """One record drawn uniformly.

        Args:
            rng: the caller's generator (the env's ``np_random``), so sampling follows the env's seed.

        Returns:
            ``(index, record)``.
        """
        index = int(rng.integers(len(self._records)))
        return index, self._records[index]


def as_prompt_source(data: Any = None, task: str | None = None) -> PromptSource:
    """Turn any supported prompt input into a :class:`PromptSource`.

    Args:
        data: ``None`` (use ``task``'s built-in train data), a built-in task name (``"qa"``), a list of dicts, a
            path (str or ``Path``) to a ``.jsonl`` file, a ``datasets.Dataset``-like object, or a
            :class:`PromptSource` (returned as is).
        task: the built-in task whose data to load when ``data`` is None.

    Raises:
        ValueError: bad records (see :class:`PromptSource`), an unknown task, or neither ``data`` nor ``task``.
        FileNotFoundError: a path that does not exist.
        TypeError: an unsupported kind of ``data``.
    """
    if isinstance(data, PromptSource):
        return data
    if data is None:
        if task is None:
            raise ValueError("No prompts: pass data (a task name, list of dicts, .jsonl path or Dataset) or task.")
        return _builtin(task)
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        if isinstance(data, str) and not text.lower().endswith(".jsonl"):
            from textgym.data import DATA_TASKS

            if text.lower() in DATA_TASKS:
                return _builtin(text)
            if not Path(text).exists():
                raise ValueError(f"{text!r} is neither a built-in task ({', '.join(DATA_TASKS)}) nor an existing "
                                 ".jsonl file.")
        return PromptSource(_read_jsonl(Path(text)), name=str(text))
    if isinstance(data, Mapping):
        raise TypeError("Got one dict: pass a list of prompt records, e.g. [{'prompt': 'Q: 2 + 3 = ? A:'}].")
    if hasattr(data, "column_names") and hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return _from_dataset(data)
    if isinstance(data, Sequence):
        return PromptSource(data, name="list")
    raise TypeError(
        f"Cannot read prompts from a {type(data).__name__}: pass a task name, a list of dicts, a .jsonl path or a "
        "datasets.Dataset."
    )


def _builtin(task: str) -> PromptSource:
    from textgym.data import load_task_data

    return PromptSource(load_task_data(task, split="train"), name=f"textgym.data:{task}")


def _from_dataset(dataset: Any) -> PromptSource:
    columns = list(dataset.column_names)
    if "prompt" not in columns:
        raise ValueError(f"The dataset has no 'prompt' column (columns: {columns}); rename the column holding "
                         "the prompt text: dataset.rename_column('text', 'prompt').")
    name = f"{type(dataset).__name__}({len(dataset)} rows)"
    return PromptSource([dict(dataset[i]) for i in range(len(dataset))], name=name)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"Prompt file {str(path)!r} does not exist.")
    records = []
    with path.open("rb") as f:  # bytes: a line that is not UTF-8 gets an error naming it
        for line_number, raw in enumerate(f, start=1):
            if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark (Windows editors write one): not part of the JSON
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}:{line_number} is not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); "
                    "a .jsonl file must be UTF-8. Convert it, e.g. from Latin-1: "
                    f"iconv -f latin1 -t utf-8 {path} > converted.jsonl"
                ) from None
            if not line.strip():
                continue  # blank lines (a trailing newline, spacing) are not records
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number} is not valid JSON ({error.msg}); a .jsonl file holds one "
                                 'JSON object per line, e.g. {"prompt": "Q: 2 + 3 = ? A:", "answer": "5"}.') from None
            records.append((line_number, record))
    _validate([r for _, r in records], str(path), where="line", labels=[n for n, _ in records])
    return [r for _, r in records]


def _validate(records: list[Any], name: str, where: str, labels: list[int] | None = None) -> list[dict]:
    """Check the records; ``where``/``labels`` say how to point at a bad one ("record 3" or "line 4")."""
    if not records:
        raise ValueError(f"{name} holds no prompt records; an env needs at least one.")
    labels = labels if labels is not None else list(range(len(records)))
    first_fields = None
    for label, record in zip(labels, records):
        at = f"{name}: {where} {label}"
        if not isinstance(record, Mapping):
            raise ValueError(f"{at} is a {type(record).__name__}, not a dict; each record must look like "
                             '{"prompt": "...", <reward fields>}.')
        prompt = record.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            problem = "has no 'prompt' key" if "prompt" not in record else f"has prompt {prompt!r}"
            raise ValueError(f"{at} {problem}; every record needs a non-empty string 'prompt' (keys found: "
                             f"{sorted(record)}).")
        for key in NOT_REWARD_FIELDS:  # the texts that get tokenized: a lone surrogate cannot be encoded
            _check_encodable(record.get(key), f"{at} field {key!r}")
        fields = set(record)
        if first_fields is None:
            first_fields = fields
        elif fields != first_fields:
            missing, extra = sorted(first_fields - fields), sorted(fields - first_fields)
            raise ValueError(
                f"{at} has different fields from the first record (missing {missing}, extra {extra}); rewards get "
                "each field as one list per batch, so every record needs the same fields (use None for 'no value')."
            )
    return [dict(r) for r in records]


def _check_encodable(text: Any, at: str) -> None:
    """A str holding a lone surrogate (JSON allows the escape ``"\\ud800"``; Python keeps it) is not text any
    tokenizer can encode: say where it is instead of failing in the tokenizer."""
    if not isinstance(text, str):
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        before = text[max(0, error.start - 20) : error.start]
        raise ValueError(
            f"{at} holds a lone surrogate {text[error.start]!r} at character {error.start} (after {before!r}), which "
            "is not valid Unicode text. Fix the escape in the data (a surrogate pair such as \\ud83d\\ude00 is "
            "fine; half of one is not)."
        ) from None
