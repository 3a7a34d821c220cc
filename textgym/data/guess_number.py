"""GuessNumber (multi-turn): find a hidden number from "higher" / "lower" feedback.

Record fields: ``prompt`` ("I am thinking of a number from 1 to 100.\\nGuess:"), ``completion`` (a demonstration:
a binary-search transcript with the env's feedback), ``agent_turns`` (its guesses alone), ``low``, ``high`` and ``target`` (ints). Ranges: 1-20,
1-50, 1-100, 10-60 and 100-200, every target in each.

What the demonstration teaches: the answer format (one number per turn) and halving the interval; a policy that
learns it solves a 1-100 range in at most 7 guesses.

Held-out dimension: the hidden number. A target ``t`` is in the test split when ``t % 7 == 3``
(:func:`in_test_split`): no test episode hides a number any training episode hides.
"""

from __future__ import annotations

from functools import lru_cache

from textgym.data._split import make_loader

RANGES = ((1, 20), (1, 50), (1, 100), (10, 60), (100, 200))


def in_test_split(target: int) -> bool:
    """Whether an episode hiding ``target`` belongs to the test split."""
    return target % 7 == 3


def binary_search(low: int, high: int, target: int) -> tuple[list[str], str]:
    """The demonstration: the midpoint guesses (the agent's turns) and the transcript with the env's replies (as
    :class:`~textgym.envs.multi_turn_tasks.GuessNumberTask` writes them)."""
    from textgym.envs.multi_turn_tasks import GuessNumberTask

    turns, parts = [], []
    while True:
        guess = (low + high) // 2
        turns.append(f" {guess}")
        parts.append(f" {guess}")
        if guess == target:
            return turns, "".join(parts)
        if guess < target:
            parts.append(GuessNumberTask.HIGHER)
            low = guess + 1
        else:
            parts.append(GuessNumberTask.LOWER)
            high = guess - 1


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for low, high in RANGES:
        for target in range(low, high + 1):
            turns, transcript = binary_search(low, high, target)
            splits["test" if in_test_split(target) else "train"].append({
                "prompt": f"I am thinking of a number from {low} to {high}.\nGuess:",
                "completion": transcript,
                "agent_turns": turns,
                "low": low,
                "high": high,
                "target": target,
            })
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("guess_number", _all_splits, "GuessNumber records (multi-turn: the env answers higher/lower).",
                   held_out="hidden numbers t with t % 7 == 3")
