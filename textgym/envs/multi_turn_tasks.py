"""The built-in multi-turn tasks (:class:`~textgym.envs.multi_turn.MultiTurnTask` implementations).

* :class:`CalculatorTask` (``textgym/Calculator-v0``): the agent may call ``<calc>37*48</calc>``; the env appends
  `` = 1776``; the final answer (the turn that ends at EOS) is scored.
* :class:`GuessNumberTask` (``textgym/GuessNumber-v0``): one number per turn, the env says "higher" or "lower".
* :class:`ScriptedUserTask` (``textgym/MultiTurnDialogue-v0``): a scripted user with a goal answers the agent.

Their data: :mod:`textgym.data.calculator`, :mod:`textgym.data.guess_number`, :mod:`textgym.data.multi_turn_dialogue`.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from textgym.envs.multi_turn import MultiTurnTask, Turn

_NUMBER = re.compile(r"-?\d+")


def first_integer(text: str) -> int | None:
    """The first (signed) integer written in ``text``, or ``None``."""
    match = _NUMBER.search(text)
    return int(match.group()) if match else None


# ---------------------------------------------------------------- safe arithmetic
class ExpressionError(ValueError):
    """An expression the calculator refuses (syntax, an operator it lacks, a number too large)."""


_MAX_EXPRESSION_CHARS = 64
_MAX_MAGNITUDE = 10**15
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def evaluate_arithmetic(expression: str) -> int:
    """The value of an integer expression of ``+ - *``, unary minus and parentheses, without ``eval``.

    The expression is parsed by :mod:`ast` and only integer literals and those operators are evaluated; anything
    else (names, calls, attributes, floats, ``**``, ``/``) is an :class:`ExpressionError`, as are expressions
    over 64 characters and values beyond 10**15 (so a call cannot make the env compute huge powers).
    """
    if len(expression) > _MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {_MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"not an arithmetic expression: {expression!r}") from e

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            result = node.value
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            result = -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            result = _BINARY[type(node.op)](value(node.left), value(node.right))
        else:
            raise ExpressionError(f"unsupported element {type(node).__name__} (the calculator has + - * and ())")
        if abs(result) > _MAX_MAGNITUDE:
            raise ExpressionError("value out of range")
        return result

    return value(tree.body)


class CalculatorTask(MultiTurnTask):
    """Answer a multi-digit arithmetic problem, optionally with a calculator tool.

    A turn that contains ``<calc>EXPR</calc>`` (the turn ends at ``</calc>``) is a tool call: the env appends
    `` = VALUE\\n`` (or `` = error\\n`` for an expression it refuses) and costs ``call_cost``. A turn that ends at
    EOS is the final answer: reward 1 if its first integer equals the record's ``answer``, else 0, and the episode
    ends. More than ``max_calls`` calls end the episode with reward 0 (on top of the call costs).

    Args:
        call_cost: reward subtracted per tool call (default 0.02: small next to the answer's 1).
        max_calls: tool calls allowed per episode.
    """

    stop_sequences = ("</calc>",)
    CALL = re.compile(r"<calc>(.*?)</calc>", re.DOTALL)

    def __init__(self, call_cost: float = 0.02, max_calls: int = 3):
        self.call_cost, self.max_calls = float(call_cost), int(max_calls)

    def start(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"answer": int(record["answer"]), "calls": 0}

    def turn(self, state: dict[str, Any], agent_text: str) -> Turn:
        call = self.CALL.search(agent_text)
        if call is None:  # the turn ended at EOS: the final answer
            correct = first_integer(agent_text) == state["answer"]
            return Turn(reward=1.0 if correct else 0.0, done=True,
                        info={"correct": correct, "tool_calls": state["calls"]})
        state["calls"] += 1
        if state["calls"] > self.max_calls:
            return Turn(reward=-self.call_cost, done=True, info={"correct": False, "tool_calls": state["calls"]})
        try:
            result = str(evaluate_arithmetic(call.group(1)))
        except ExpressionError:
            result = "error"
        return Turn(env_text=f" = {result}\n", reward=-self.call_cost, info={"tool_result": result})


class GuessNumberTask(MultiTurnTask):
    """Find the hidden number: each turn is one guess (the first integer of the turn, which ends at EOS); the env
    answers " higher" / " lower" and a new "Guess:" prompt.

    Reward on success: ``1 - 0.1 * (guesses - 1)`` (at least 0.1), so fewer turns pay more; 0 if ``max_guesses``
    guesses all miss or the budget runs out. A turn without a number counts as a guess.

    Args:
        max_guesses: guesses allowed per episode.
    """

    HIGHER, LOWER, NO_NUMBER = " higher\nGuess:", " lower\nGuess:", " a number, please\nGuess:"

    def __init__(self, max_guesses: int = 10):
        self.max_guesses = int(max_guesses)

    def start(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"target": int(record["target"]), "guesses": 0}

    def turn(self, state: dict[str, Any], agent_text: str) -> Turn:
        state["guesses"] += 1
        guess = first_integer(agent_text)
        if guess == state["target"]:
            return Turn(reward=max(0.1, 1.0 - 0.1 * (state["guesses"] - 1)), done=True,
                        info={"solved": True, "guesses": state["guesses"]})
        if state["guesses"] >= self.max_guesses:
            return Turn(done=True, info={"solved": False, "guesses": state["guesses"]})
        if guess is None:
            return Turn(env_text=self.NO_NUMBER)
        return Turn(env_text=self.HIGHER if guess < state["target"] else self.LOWER)


class ScriptedUserTask(MultiTurnTask):
    """A scripted user with a goal: a table to book (``people``, ``day``, ``time``) or an item to return (``item``,
    ``order``). The opening line gives some details (``known``); the agent must ask for the rest and confirm.

    The user reads each agent turn (a turn ends at EOS): it answers every missing detail the turn
    asks about (by keywords: "how many"/"people", "day"/"date", "time", "item"/"what", "order"), and when the
    turn confirms (a word like "booked" or "confirmed") naming every value of the goal, it says goodbye and the
    episode ends. A confirmation with a value wrong or missing gets a correction that spells out the whole goal.

    Reward on the goal reached: ``1 + 0.2`` if any agent turn is polite ("please", "thank", "sorry", "glad",
    "happy to"), ``- 0.1`` per turn beyond the fewest possible (one question turn if anything is missing, then
    the confirmation) and ``- 0.01`` per agent word beyond 15 per turn on average; 0 when ``max_turns`` pass or
    the budget runs out without it.

    Args:
        max_turns: agent turns allowed per episode.
    """

    SLOTS = {"booking": ("people", "day", "time"), "return": ("item", "order")}
    ASK = {
        "people": ("how many", "people", "guests", "party", "persons"),
        "day": ("day", "date", "when"),
        "time": ("time", "when", "hour"),
        "item": ("item", "what would", "what do you", "which product", "what are you"),
        "order": ("order",),
    }
    ANSWER = {"people": "{people} people", "day": "on {day}", "time": "at {time}", "item": "the {item}",
              "order": "order {order}"}
    CONFIRM = ("booked", "reserved", "confirmed", "confirm", "processed", "accepted", "refund", "done")
    POLITE = ("please", "thank", "sorry", "glad", "happy to")
    USER, AGENT = "\nUser: ", "\nAgent:"

    def __init__(self, max_turns: int = 6):
        self.max_turns = int(max_turns)

    def start(self, record: dict[str, Any]) -> dict[str, Any]:
        goal = dict(record["goal"])
        return {"kind": record["kind"], "goal": goal, "told": set(record["known"]), "turns": 0, "polite": False,
                "words": 0, "min_turns": 1 if set(record["known"]) >= set(self.SLOTS[record["kind"]]) else 2}

    @classmethod
    def mentions(cls, text: str, slot: str, value: str) -> bool:
        """Whether ``text`` names ``value`` of ``slot`` (numbers as whole numbers, "7 pm" also as "7pm")."""
        text = text.lower()
        if slot == "time":
            hour = value.split()[0]
            return re.search(rf"\b{hour}\s*pm\b", text) is not None
        if slot in ("people", "order"):
            return re.search(rf"(?<!\d){value}(?!\d)", text) is not None
        return value.lower() in text

    def turn(self, state: dict[str, Any], agent_text: str) -> Turn:
        state["turns"] += 1
        state["words"] += len(agent_text.split())
        lower = agent_text.lower()
        state["polite"] |= any(word in lower for word in self.POLITE)
        slots, goal = self.SLOTS[state["kind"]], state["goal"]
        if any(word in lower for word in self.CONFIRM):
            if all(self.mentions(agent_text, slot, goal[slot]) for slot in slots):
                extra_turns = max(0, state["turns"] - state["min_turns"])
                extra_words = max(0, state["words"] - 15 * state["turns"])
                reward = 1.0 + 0.2 * state["polite"] - 0.1 * extra_turns - 0.01 * extra_words
                return Turn(env_text="", reward=reward, done=True, info={"goal_reached": True, "turns": state["turns"]})
            if state["turns"] < self.max_turns:
                state["told"] |= set(slots)
                details = ", ".join(self.ANSWER[slot].format(**goal) for slot in slots)
                return Turn(env_text=f"{self.USER}No, that is not right: {details}.{self.AGENT}")
        if state["turns"] >= self.max_turns:
            return Turn(done=True, info={"goal_reached": False, "turns": state["turns"]})
        asked = [slot for slot in slots if any(word in lower for word in self.ASK[slot])]
        if not asked:
            return Turn(env_text=f"{self.USER}Sorry, what do you need from me?{self.AGENT}")
        state["told"] |= set(asked)
        answer = ", ".join(self.ANSWER[slot].format(**goal) for slot in asked)
        return Turn(env_text=f"{self.USER}{answer[0].upper()}{answer[1:]}.{self.AGENT}")

    @classmethod
    def demonstration(cls, record: dict[str, Any]) -> tuple[list[str], str]:
        """A record's demonstration: the agent's turns (one polite question, the confirmation) and the transcript
        with the user's answer between them."""
        kind, goal = record["kind"], record["goal"]
        slots = cls.SLOTS[kind]
        missing = [slot for slot in slots if slot not in record["known"]]
        questions = {"people": "how many people", "day": "which day", "time": "what time", "item": "which item",
                     "order": "the order number"}
        turns, parts = [], []
        if missing:
            asked = ", ".join(questions[slot] for slot in missing)
            turns.append(f" Could you tell me {asked}, please?")
            answer = ", ".join(cls.ANSWER[slot].format(**goal) for slot in missing)
            parts += [turns[-1], f"{cls.USER}{answer[0].upper()}{answer[1:]}.{cls.AGENT}"]
        if kind == "booking":
            turns.append(f" Thank you, your table for {goal['people']} on {goal['day']} at {goal['time']} is booked.")
        else:
            turns.append(f" Thank you, the return of your {goal['item']} from order {goal['order']} is confirmed.")
        return turns, "".join([*parts, turns[-1]])
