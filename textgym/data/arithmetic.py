"""Arithmetic: small sums, differences and products with a verifiable answer.

Record fields: ``prompt`` ("Q: 7 + 5 = ? A:"), ``completion`` (" 12"), ``answer`` ("12", a string so that rewards
compare text). Operands are small enough for a few-million-parameter model: sums and differences of 0-50
(differences never negative) and products of 0-12, 4,096 distinct problems in all.

What the demonstration teaches: the answer format (one number, then EOS) and the answers of the training
problems. What it does not teach: the answers of the test problems, whose operand pairs it never sees; a 0.43M
model answers about half of them after the warm start, so RL has the other half to win.

Held-out dimension: the operand pair. A problem on operands ``a`` and ``b`` is in the test split when
``(min(a, b) + 3 * max(a, b)) % 11 == 5`` (:func:`in_test_split`; 370 of 4,096 problems), a rule on the unordered
pair, so "13 + 28" and "28 + 13" are both test problems and commutativity cannot leak an answer from training
(the old prompt-hash split put one order in each split). The rule cuts across digits: every last-digit pair
occurs in both splits. (Holding out whole last-digit pairs instead, e.g. every sum of numbers ending in 3 and 8,
left the warm start at 0.22 greedy accuracy: too hard a jump for this model.)
"""

from __future__ import annotations

from functools import lru_cache

from textgym.data._split import make_loader

MAX_ADD = 50
MAX_MUL = 12
def in_test_split(a: int, b: int) -> bool:
    """Whether the problem on operands ``a`` and ``b`` belongs to the test split (see the module docstring)."""
    return (min(a, b) + 3 * max(a, b)) % 11 == 5


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    problems = []
    for a in range(MAX_ADD + 1):
        for b in range(MAX_ADD + 1):
            problems.append((a, "+", b, a + b))
            if a >= b:
                problems.append((a, "-", b, a - b))
    for a in range(MAX_MUL + 1):
        for b in range(MAX_MUL + 1):
            problems.append((a, "*", b, a * b))
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for a, op, b, result in problems:
        record = {"prompt": f"Q: {a} {op} {b} = ? A:", "completion": f" {result}", "answer": str(result)}
        splits["test" if in_test_split(a, b) else "train"].append(record)
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("arithmetic", _all_splits, "Arithmetic records.",
                   held_out="unordered operand pairs with (min + 3 * max) % 11 == 5")
