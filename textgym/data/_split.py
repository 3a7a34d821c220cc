"""The one split/sample rule every built-in task uses.

Each task module enumerates its distinct records once (deterministically, cached); this module assigns every
record to ``"train"`` or ``"test"`` by a hash of its prompt, so the two splits are disjoint by construction and a
record never changes split when a task grows, then shuffles with the caller's seed and keeps ``n``.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np

SPLITS = ("train", "test")
TEST_FRACTION = 0.1


def in_test_split(prompt: str, test_fraction: float = TEST_FRACTION) -> bool:
    """Whether ``prompt`` belongs to the test split (a stable md5 bucket, the same on every machine)."""
    bucket = int.from_bytes(hashlib.md5(prompt.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return bucket < test_fraction


def select(records: list[dict], split: str, n: int | None, seed: int, task: str) -> list[dict]:
    """The ``split`` part of ``records``, shuffled with ``seed``, cut to ``n`` (copies: callers may mutate them).

    Args:
        records: every distinct record of the task (unique prompts).
        split: ``"train"`` or ``"test"``.
        n: how many records to return; ``None`` returns the whole split.
        seed: seed of the shuffle (numpy ``default_rng``); the same seed gives the same records in the same order.
        task: the task name, for error messages.

    Raises:
        ValueError: an unknown split, or ``n`` larger than the split or not positive.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} for task {task!r}: use one of {SPLITS}.")
    part = [r for r in records if in_test_split(r["prompt"]) == (split == "test")]
    if n is not None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int or None (the whole split), got {n!r}.")
        if n > len(part):
            raise ValueError(
                f"Task {task!r} has {len(part)} {split} records, fewer than n={n}: pass n <= {len(part)} or n=None."
            )
    order = np.random.default_rng(seed).permutation(len(part))
    if n is not None:
        order = order[:n]
    return [copy.deepcopy(part[i]) for i in order]


def make_loader(task: str, all_records, description: str):
    """The ``load(split="train", n=None, seed=0) -> list[dict]`` function of a task module.

    Args:
        task: the task name (for error messages).
        all_records: a zero-argument callable returning every distinct record of the task (cached by the module).
        description: the first line of the loader's docstring (what a record is).
    """

    def load(split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
        return select(list(all_records()), split, n, seed, task=task)

    load.__doc__ = f"""{description}

    Args:
        split: ``"train"`` or ``"test"`` (disjoint: assigned by a hash of the prompt).
        n: number of records; ``None`` for the whole split.
        seed: shuffle seed.
    """
    return load


def dedupe(records: list[dict]) -> list[dict]:
    """Keep the first record of each prompt (two records with one prompt would straddle nothing but waste data)."""
    seen: set[str] = set()
    out = []
    for record in records:
        if record["prompt"] not in seen:
            seen.add(record["prompt"])
            out.append(record)
    return out
