"""MultiTurnDialogue (multi-turn): a scripted user with a goal (book a table, return an item) answers the agent.

Record fields: ``prompt`` (the assistant's brief and the user's opening line, ending in "\\nAgent:"),
``completion`` (a demonstration: one polite question for every missing detail, the user's answer, a
confirmation naming every detail), ``agent_turns`` (the demonstration's agent turns alone), ``kind`` ("booking" or "return"), ``goal`` (slot -> value: ``people``, ``day``,
``time`` for a booking; ``item``, ``order`` for a return) and ``known`` (the slots the opening line already gives).
The user (:class:`textgym.envs.multi_turn_tasks.ScriptedUserTask`) answers the slots the agent asks about and
says goodbye when the agent confirms with every value right.

What the demonstration teaches: to ask for everything missing in one turn, politely, and to confirm with all the
details. What it does not teach: the values of test goals, whose combinations it never sees.

Held-out dimension: the goal's value combination. A booking (people, day, time) is a test goal when
``(people + 2 * day_index + 3 * time_index) % 6 == 1``, a return (item, order) when
``(item_index + 3 * order_index) % 6 == 1`` (:func:`in_test_split`); every opening line of a goal goes to the same
split, so no test conversation pursues a goal a training one does.
"""

from __future__ import annotations

from functools import lru_cache

from textgym.data._split import make_loader

PEOPLE = tuple(range(2, 9))
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIMES = ("6 pm", "7 pm", "8 pm", "9 pm")
ITEMS = ("shoes", "jacket", "lamp", "kettle", "backpack", "phone case", "scarf", "blender")
ORDERS = ("214", "358", "402", "517", "639", "781", "846", "903")
BRIEF = {"booking": "Booking assistant: ask what is missing, then confirm.",
         "return": "Returns assistant: ask what is missing, then confirm."}
OPENINGS = {
    "booking": (("Hi, I would like to book a table.", ()),
                ("Hi, I would like to book a table for {people} people.", ("people",)),
                ("Hello, can I book a table on {day}?", ("day",))),
    "return": (("Hi, I want to return an item.", ()),
               ("Hello, I want to return my {item}.", ("item",))),
}


def in_test_split(kind: str, indices: tuple[int, ...]) -> bool:
    """Whether the goal with these value indices (people, day, time) or (item, order) is a test goal."""
    if kind == "booking":
        people, day, time = indices
        return (people + 2 * day + 3 * time) % 6 == 1
    item, order = indices
    return (item + 3 * order) % 6 == 1


def _goals():
    for p, people in enumerate(PEOPLE):
        for d, day in enumerate(DAYS):
            for t, time in enumerate(TIMES):
                yield "booking", (p, d, t), {"people": str(people), "day": day, "time": time}
    for i, item in enumerate(ITEMS):
        for o, order in enumerate(ORDERS):
            yield "return", (i, o), {"item": item, "order": order}


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    from textgym.envs.multi_turn_tasks import ScriptedUserTask

    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for kind, indices, goal in _goals():
        for template, known in OPENINGS[kind]:
            opening = template.format(**goal)
            record = {
                "prompt": f"{BRIEF[kind]}\nUser: {opening}\nAgent:",
                "kind": kind,
                "goal": dict(goal),
                "known": list(known),
            }
            record["agent_turns"], record["completion"] = ScriptedUserTask.demonstration(record)
            splits["test" if in_test_split(kind, indices) else "train"].append(record)
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("multi_turn_dialogue", _all_splits,
                   "MultiTurnDialogue records (multi-turn: a scripted user with a goal answers the agent).",
                   held_out="goal value combinations (see in_test_split)")
