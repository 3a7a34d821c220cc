"""Calculator (multi-turn): multi-digit products and chains, with a ``<calc>`` tool the env evaluates.

Record fields: ``prompt`` ("Q: 37 * 48 + 12 = ? Tool: <calc>expr</calc>\\nA:"), ``completion`` (a demonstration
transcript: one tool call, the env's result, the answer), ``agent_turns`` (the demonstration's agent turns alone,
for :func:`textgym.envs.text_actions.replay_turns`), ``answer`` ("1788", a string), ``expression``
("37 * 48 + 12") and ``operands`` ("37,48", the unordered product pair, smaller first). Problems are two-digit by
two-digit products (12-99), alone or followed by ``+ c`` / ``- c`` with ``c`` in 10-99: too hard to do in one's
head for a few-million-parameter model, one ``<calc>`` call away for one that uses the tool.

What the demonstration teaches: the tool's syntax (``<calc>37*48+12</calc>``), that the env answers
``= 1788``, and to copy that number as the final answer. It contains the env's own text too (the SFT machinery
trains on whole completions, so it cannot use it yet); ``agent_turns`` replayed through the env give the exact
token layout and agent mask a masked warm start would train on.

Held-out dimension: the product's unordered operand pair. A problem on ``a * b`` is in the test split when
``(min(a, b) + 3 * max(a, b)) % 11 == 5`` (:func:`in_test_split`), so "37 * 48" and "48 * 37 + 5" are both test
problems and no training problem multiplies the same two numbers.
"""

from __future__ import annotations

from functools import lru_cache

from textgym.data._split import make_loader

LOW, HIGH = 12, 99
TOOL_HINT = " Tool: <calc>expr</calc>"


def in_test_split(a: int, b: int) -> bool:
    """Whether the product of ``a`` and ``b`` belongs to the test split (see the module docstring)."""
    return (min(a, b) + 3 * max(a, b)) % 11 == 5


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for a in range(LOW, HIGH + 1):
        for b in range(a, HIGH + 1):
            # Each unordered pair gives one plain product and one chain; the order and the tail are fixed
            # functions of the pair, so the data is deterministic without a random generator.
            first, second = (a, b) if (a + b) % 2 else (b, a)
            c = (7 * a + 13 * b) % 90 + 10
            op = "+" if (a * b) % 3 else "-"
            for expression in (f"{first} * {second}", f"{first} * {second} {op} {c}"):
                value = first * second + (0 if expression.count(" ") == 2 else (c if op == "+" else -c))
                call = expression.replace(" ", "")
                splits["test" if in_test_split(a, b) else "train"].append({
                    "prompt": f"Q: {expression} = ?{TOOL_HINT}\nA:",
                    "completion": f" <calc>{call}</calc> = {value}\n {value}",
                    "agent_turns": [f" <calc>{call}</calc>", f" {value}"],
                    "answer": str(value),
                    "expression": expression,
                    "operands": f"{a},{b}",
                })
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("calculator", _all_splits, "Calculator records (multi-turn: the env evaluates <calc> calls).",
                   held_out="unordered product operand pairs with (min + 3 * max) % 11 == 5")
