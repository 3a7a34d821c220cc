"""QA: a short passage about a person and a question whose answer is a span of the passage.

Record fields: ``prompt`` ("Context: Anna lives in Paris and works as a nurse. ...\\nQuestion: What is Anna's
job?\\nAnswer:"), ``completion`` (" nurse"), ``answer`` ("nurse", a verbatim span of the passage), ``references``
([answer]).
"""

from __future__ import annotations

import random
from functools import lru_cache

from textgym.data._split import dedupe, make_loader

PEOPLE = (("Anna", "she"), ("Tom", "he"), ("Maria", "she"), ("David", "he"), ("Sara", "she"), ("Omar", "he"),
          ("Emma", "she"), ("Lucas", "he"), ("Nina", "she"), ("Peter", "he"), ("Grace", "she"), ("James", "he"),
          ("Laura", "she"), ("Hugo", "he"), ("Olivia", "she"), ("Ben", "he"))
CITIES = ("Paris", "London", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Dublin", "Oslo", "Prague",
          "Boston", "Toronto", "Chicago", "Seattle", "Sydney", "Tokyo")
JOBS = ("nurse", "teacher", "baker", "pilot", "doctor", "farmer", "painter", "lawyer", "chef", "driver",
        "engineer", "writer", "dentist", "gardener")
PETS = ("dog", "cat", "parrot", "rabbit", "horse", "turtle", "hamster")
PET_NAMES = ("Max", "Bella", "Rocky", "Luna", "Coco", "Milo", "Daisy", "Oscar", "Ruby", "Leo", "Pepper")
PLACES = ("market", "beach", "library", "gym", "park", "museum", "cinema", "lake", "swimming pool")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FOODS = ("pasta", "soup", "pizza", "rice", "salad", "fish", "pancakes", "noodles")


def _record(r: random.Random) -> dict:
    (name, pronoun), friend = r.choice(PEOPLE), r.choice(PEOPLE)[0]
    while friend == name:
        friend = r.choice(PEOPLE)[0]
    city, job, pet, pet_name = r.choice(CITIES), r.choice(JOBS), r.choice(PETS), r.choice(PET_NAMES)
    place, day, food = r.choice(PLACES), r.choice(DAYS), r.choice(FOODS)
    passage = (f"{name} lives in {city} and works as a {job}. {pronoun.capitalize()} has a {pet} named {pet_name}. "
               f"On {day}, {pronoun} goes to the {place} with {friend}. {name} likes to cook {food}.")
    question, answer = r.choice((
        (f"Where does {name} live?", city),
        (f"What is {name}'s job?", job),
        (f"What pet does {name} have?", pet),
        (f"What is the name of {name}'s {pet}?", pet_name),
        (f"On which day does {name} go to the {place}?", day),
        (f"Who goes to the {place} with {name}?", friend),
        (f"Where does {name} go on {day}?", f"the {place}"),
        (f"What does {name} like to cook?", food),
    ))
    assert answer in passage
    return {"prompt": f"Context: {passage}\nQuestion: {question}\nAnswer:", "completion": " " + answer,
            "answer": answer, "references": [answer]}


@lru_cache(maxsize=1)
def _all_records() -> tuple[dict, ...]:
    rng = random.Random(5)
    return tuple(dedupe([_record(rng) for _ in range(5000)]))


load = make_loader("qa", _all_records, "Passage + question records with span answers.", "a hash bucket of prompts")
