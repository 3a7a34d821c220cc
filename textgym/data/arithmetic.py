"""Arithmetic: small sums, differences and products with a verifiable answer.

Record fields: ``prompt`` ("Q: 7 + 5 = ? A:"), ``completion`` (" 12"), ``answer`` ("12", a string so that rewards
compare text). Operands are small enough for a few-million-parameter model: sums and differences of 0-50
(differences never negative) and products of 0-12, 4,096 distinct problems in all.

What the demonstration teaches: the answer format (one number, then EOS) and the answers of the training
problems. What it does not teach: the test problems' answers, which need the digit rules (carries, borrows)
applied to unseen operand combinations; a 0.43M model answers about half of them after the warm start.

Held-out dimension: the pair of the operands' last digits. A problem is in the test split when
``(a % 10, b % 10)`` is one of :data:`TEST_DIGIT_PAIRS` (10 of the 100 ordered digit pairs, closed under swapping:
"13 + 28", "28 + 13", "3 * 8" and "44 - 24" are test problems), so no training problem combines those last digits
and the test measures whether the policy learned the rule rather than memorised a table.
"""

from __future__ import annotations

from functools import lru_cache

from textgym.data._split import make_loader

MAX_ADD = 50
MAX_MUL = 12
TEST_DIGIT_PAIRS = frozenset({(3, 8), (8, 3), (1, 6), (6, 1), (4, 4), (7, 7), (2, 9), (9, 2), (0, 5), (5, 0)})


def in_test_split(a: int, b: int) -> bool:
    """Whether the problem on operands ``a`` and ``b`` belongs to the test split (see the module docstring)."""
    return (a % 10, b % 10) in TEST_DIGIT_PAIRS


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
                   held_out="operand last-digit pairs TEST_DIGIT_PAIRS")
