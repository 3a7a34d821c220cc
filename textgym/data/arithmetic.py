"""Arithmetic: small sums, differences and products with a verifiable answer.

Record fields: ``prompt`` ("Q: 7 + 5 = ? A:"), ``completion`` (" 12"), ``answer`` ("12", a string so that rewards
compare text). Operands are small enough for a few-million-parameter model: sums and differences of 0-50
(differences never negative) and products of 0-12, 4,096 distinct problems in all.
"""

from __future__ import annotations

from functools import lru_cache

from textgym.data._split import make_loader

MAX_ADD = 50
MAX_MUL = 12


@lru_cache(maxsize=1)
def _all_records() -> tuple[dict, ...]:
    problems = []
    for a in range(MAX_ADD + 1):
        for b in range(MAX_ADD + 1):
            problems.append((a, "+", b, a + b))
            if a >= b:
                problems.append((a, "-", b, a - b))
    for a in range(MAX_MUL + 1):
        for b in range(MAX_MUL + 1):
            problems.append((a, "*", b, a * b))
    return tuple(
        {"prompt": f"Q: {a} {op} {b} = ? A:", "completion": f" {result}", "answer": str(result)}
        for a, op, b, result in problems
    )


load = make_loader("arithmetic", _all_records, "Arithmetic records.")
