"""QA: a short passage about two people and a question whose answer is a span of the passage.

Record fields: ``prompt`` ("Context: Anna lives in Paris and works as a nurse. ... Tom lives in Rome and works as
a pilot. ...\\nQuestion: What is Tom's job?\\nAnswer:"), ``completion`` (a demonstration, see below),
``answer`` ("pilot", a verbatim span of the passage), ``references`` ([answer]) and ``qtype`` (the question
type, one of :data:`QTYPES`, so accuracy can be reported per type).

The passage makes itself necessary: it describes two people with different cities, jobs and favourite foods,
and a question may ask about either of them, so within every question type the answer varies with the passage
and with the person asked about (the tests check no answer dominates a type); a policy that ignores the passage
and answers from a prior ("baker" for every job question) scores about one in ten.

What the demonstration teaches: to find the fact in the passage. What it does not teach: to answer with the
span alone. Two demonstrations in three are a verbose sentence (" Tom works as a pilot.", token F1 0.4 against
"pilot"), one in three the bare span (F1 1.0), so the warm start mixes both styles and RL can steer to the span.

Held-out dimension: the passage. No test passage (its two people with their cities, jobs, pet, day, place and
foods) occurs in a training prompt, so a test question can only be answered by reading its passage, not by
recalling a training one. The names are the training names: a held-out name is a token the warm start never
trained on, and the default models cannot copy one (measured 2026-12-02, the shipped qa config: warm-start
token F1 0.36 greedy on training passages, 0.03 on passages with six unseen names, every question type near 0).
"""

from __future__ import annotations

import random
from functools import lru_cache

from textgym.data._split import dedupe, make_loader

PEOPLE = (("Anna", "she"), ("Tom", "he"), ("Maria", "she"), ("David", "he"), ("Sara", "she"), ("Omar", "he"),
          ("Emma", "she"), ("Lucas", "he"), ("Nina", "she"), ("Peter", "he"), ("Grace", "she"), ("James", "he"),
          ("Laura", "she"), ("Hugo", "he"), ("Olivia", "she"), ("Ben", "he"), ("Clara", "she"), ("Felix", "he"),
          ("Julia", "she"), ("Marco", "he"))
CITIES = ("Paris", "London", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Dublin", "Oslo", "Prague",
          "Boston", "Toronto", "Chicago", "Seattle", "Sydney", "Tokyo")
JOBS = ("nurse", "teacher", "baker", "pilot", "doctor", "farmer", "painter", "lawyer", "chef", "driver",
        "engineer", "writer", "dentist", "gardener")
PETS = ("dog", "cat", "parrot", "rabbit", "horse", "turtle", "hamster")
PET_NAMES = ("Max", "Bella", "Rocky", "Luna", "Coco", "Milo", "Daisy", "Oscar", "Ruby", "Leo", "Pepper")
PLACES = ("market", "beach", "library", "gym", "park", "museum", "cinema", "lake", "swimming pool")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FOODS = ("pasta", "soup", "pizza", "rice", "salad", "fish", "pancakes", "noodles")
QTYPES = ("city", "job", "food", "pet", "pet_name", "day", "friend", "place")
RECORDS_PER_SPLIT = {"train": 6000, "test": 600}


def _record(r: random.Random, people: tuple[tuple[str, str], ...], position: int) -> dict:
    (a, pronoun), (b, _) = r.sample(people, 2)
    city_a, city_b = r.sample(CITIES, 2)
    job_a, job_b = r.sample(JOBS, 2)
    food_a, food_b = r.sample(FOODS, 2)
    pet, pet_name, place, day = r.choice(PETS), r.choice(PET_NAMES), r.choice(PLACES), r.choice(DAYS)
    passage = (f"{a} lives in {city_a} and works as a {job_a}. {pronoun.capitalize()} has a {pet} named {pet_name}. "
               f"{b} lives in {city_b} and works as a {job_b}. On {day}, {a} goes to the {place} with {b}. "
               f"{a} likes to cook {food_a}, and {b} likes to cook {food_b}.")
    who, city, job, food = r.choice(((a, city_a, job_a, food_a), (b, city_b, job_b, food_b)))
    qtype = QTYPES[position % len(QTYPES)]  # every type equally often
    question, answer, sentence = {
        "city": (f"Where does {who} live?", city, f"{who} lives in {city}."),
        "job": (f"What is {who}'s job?", job, f"{who} works as a {job}."),
        "food": (f"What does {who} like to cook?", food, f"{who} likes to cook {food}."),
        "pet": (f"What pet does {a} have?", pet, f"{a} has a {pet}."),
        "pet_name": (f"What is the name of {a}'s {pet}?", pet_name, f"The {pet} is named {pet_name}."),
        "day": (f"On which day does {a} go to the {place}?", day, f"{a} goes there on {day}."),
        "friend": (f"Who goes to the {place} with {a}?", b, f"{b} goes with {a}."),
        "place": (f"Where does {a} go on {day}?", f"the {place}", f"{a} goes to the {place}."),
    }[qtype]
    assert answer in passage
    verbose = position % 3 != 0  # two in three demonstrations answer with a sentence
    return {"prompt": f"Context: {passage}\nQuestion: {question}\nAnswer:",
            "completion": " " + (sentence if verbose else answer), "answer": answer, "references": [answer],
            "qtype": qtype}


def passage(record: dict) -> str:
    """The record's passage (the held-out dimension)."""
    return record["prompt"].split("\nQuestion:")[0]


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    rng = random.Random(5)
    train = dedupe([_record(rng, PEOPLE, i) for i in range(RECORDS_PER_SPLIT["train"])])
    seen = {passage(r) for r in train}
    rng, test, position = random.Random(6), [], 0
    while len(test) < RECORDS_PER_SPLIT["test"]:
        record = _record(rng, PEOPLE, position)
        position += 1
        if passage(record) not in seen:  # a repeat of a training passage would measure memory, not reading
            test.append(record)
    return {"train": tuple(train), "test": tuple(dedupe(test))}


load = make_loader("qa", _all_splits, "Passage + question records with span answers.",
                   held_out="the passages (no test passage occurs in training)")
