"""The one split/sample rule every built-in task uses.

Each task module generates its train and test records once (deterministically, cached) and says which dimension
the test split holds out: entities, combinations, numbers or templates that never occur in a training prompt
(each module's docstring names its dimension; the tests check the two splits are disjoint in it). The split is
therefore a property of the generator, not a hash over one template space: a test prompt measures
generalisation, not memory. This module then shuffles a split with the caller's seed and keeps ``n``.
"""

from __future__ import annotations

import copy

import numpy as np

SPLITS = ("train", "test")


def select(records: list[dict], split: str, n: int | None, seed: int, task: str) -> list[dict]:
    """``records`` (one split's records) shuffled with ``seed``, cut to ``n`` (copies: callers may mutate them).

    Args:
        records: every distinct record of the split (unique prompts).
        split: ``"train"`` or ``"test"`` (for error messages).
        n: how many records to return; ``None`` returns the whole split.
        seed: seed of the shuffle (numpy ``default_rng``); the same seed gives the same records in the same order.
        task: the task name, for error messages.

    Raises:
        ValueError: ``n`` larger than the split or not positive.
    """
    if n is not None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int or None (the whole split), got {n!r}.")
        if n > len(records):
            raise ValueError(
                f"Task {task!r} has {len(records)} {split} records, fewer than n={n}: pass n <= {len(records)} or "
                f"n=None."
            )
    order = np.random.default_rng(seed).permutation(len(records))
    if n is not None:
        order = order[:n]
    return [copy.deepcopy(records[i]) for i in order]


def make_loader(task: str, all_splits, description: str, held_out: str):
    """The ``load(split="train", n=None, seed=0) -> list[dict]`` function of a task module.

    Args:
        task: the task name (for error messages).
        all_splits: a zero-argument callable returning ``{"train": records, "test": records}`` (cached by the
            module).
        description: the first line of the loader's docstring (what a record is).
        held_out: what the test split holds out (for the docstring).
    """

    def load(split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r} for task {task!r}: use one of {SPLITS}.")
        return select(list(all_splits()[split]), split, n, seed, task=task)

    load.__doc__ = f"""{description}

    Args:
        split: ``"train"`` or ``"test"``; the test split holds out {held_out}.
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


def by_rank(values, every: int, offset: int = 0) -> frozenset:
    """Every ``every``-th of ``values`` starting at ``offset``: a fixed, documented held-out subset (no hashing)."""
    return frozenset(v for i, v in enumerate(values) if i % every == offset % every)

