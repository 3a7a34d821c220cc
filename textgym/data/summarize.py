"""Summarize: a four-sentence news "article" and a one-sentence summary of it.

Record fields: ``prompt`` ("Article: The town of Oakdale opened a new library on Monday. ...\\nSummary:"),
``completion`` (" Oakdale opened a new library that cost 12 million dollars."), ``references`` ([that summary]).
Five story frames (openings, sports, weather, product launches, prizes) filled from word lists: the summary
always keeps the who/what/key number of the first two sentences, so ROUGE rewards copying the right facts.

What the demonstration teaches: to restate the article in one sentence taken from it. What it does not teach:
which facts matter. The demonstration is the article's lead sentence (lead-1, the classic extractive baseline),
while the reference combines the key facts of the first two sentences (the cost, the scorer, the number of
roads closed, the price, what was built), so the demonstration earns about 0.6-0.7 ROUGE-L and RL has the
second sentence's fact to add.

Held-out dimension: the named places, teams and companies. Test articles draw them only from
:data:`TEST_TOWNS`, :data:`TEST_TEAMS` and :data:`TEST_COMPANIES`, which never occur in a training prompt.
"""

from __future__ import annotations

import random
from functools import lru_cache

from textgym.data._split import dedupe, make_loader

TOWNS = ("Oakdale", "Riverton", "Maple Creek", "Brookfield", "Fairview", "Cedar Falls", "Greenville", "Lakeside",
         "Hillcrest", "Springfield", "Westport", "Milford", "Ashland", "Bayview", "Stonebridge", "Clearwater",
         "Pine Ridge", "Elmwood", "Northgate", "Silver Lake")
TEST_TOWNS = ("Kingsbury", "Redwood", "Harbor City", "Millbrook", "Eastfield")
PEOPLE = ("Anna Lee", "David Brown", "Maria Garcia", "James Smith", "Laura Chen", "Peter Novak", "Sara Khan",
          "Tom Baker", "Emma Wilson", "Lucas Martin", "Nina Patel", "Omar Hassan", "Grace Kim", "Paul Young")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "March", "April", "June", "July", "September", "October", "November")
AFTERMATH = ("No one was hurt.", "Two people were hurt.", "Power was cut in some areas.")
ORDINALS = ("second", "third", "fourth", "fifth", "sixth", "seventh")
FACILITIES = ("library", "hospital", "swimming pool", "bridge", "school", "park", "train station", "museum",
              "sports center", "market hall")
REACTIONS = ("Local residents welcomed the project.", "Some residents complained about the cost.",
             "A large crowd came to the opening.", "Local shops expect more visitors.")
TEAMS = ("Lions", "Eagles", "Sharks", "Tigers", "Wolves", "Bears", "Falcons", "Rangers", "Rockets", "Hawks")
TEST_TEAMS = ("Panthers", "Comets", "Giants", "Dragons")
COMPANIES = ("Brightline", "Northwind", "Bluepeak", "Solara", "Greenleaf", "Nimbus", "Ironwood", "Vantage")
TEST_COMPANIES = ("Starfield", "Copperleaf", "Redstone")
PRODUCTS = ("phone", "laptop", "electric bike", "smart watch", "tablet", "camera", "electric car", "speaker")
CONTESTS = ("science fair", "robot contest", "math olympiad", "coding challenge", "spelling bee")
BUILDS = ("solar car", "water filter", "small robot", "weather station", "mobile app", "wind turbine")


def _opening(r: random.Random, towns, teams, companies) -> tuple[str, str]:
    town, facility, cost = r.choice(towns), r.choice(FACILITIES), r.randint(2, 90)
    article = (f"The town of {town} opened a new {facility} on {r.choice(DAYS)}. The {facility} cost {cost} million "
               f"dollars and took {r.randint(2, 6)} years to build. Mayor {r.choice(PEOPLE)} said it would serve "
               f"{r.randint(2, 40) * 100} families. {r.choice(REACTIONS)}")
    return article, f"{town} opened a new {facility} that cost {cost} million dollars."


def _sports(r: random.Random, towns, teams, companies) -> tuple[str, str]:
    winner, loser = r.sample(teams, 2)
    high, low = r.randint(2, 6), r.randint(0, 1)
    player, goals = r.choice(PEOPLE), r.randint(1, high)
    article = (f"The {winner} beat the {loser} {high} to {low} on {r.choice(DAYS)} in {r.choice(towns)}. "
               f"{player} scored {goals} of the goals in the second half. It was the {winner}' {r.choice(ORDINALS)} "
               f"win in a row. The two teams meet again in {r.choice(MONTHS)}.")
    return article, f"The {winner} beat the {loser} {high} to {low}, and {player} scored {goals}."


def _weather(r: random.Random, towns, teams, companies) -> tuple[str, str]:
    town, day, roads = r.choice(towns), r.choice(DAYS), r.randint(3, 40)
    article = (f"A strong storm hit {town} on {day}. Heavy rain closed {roads} roads and several schools. "
               f"Officials said the storm would move east by the weekend. {r.choice(AFTERMATH)}")
    return article, f"A storm hit {town} on {day} and closed {roads} roads."


def _launch(r: random.Random, towns, teams, companies) -> tuple[str, str]:
    company, product, price = r.choice(companies), r.choice(PRODUCTS), r.randint(2, 30) * 50
    article = (f"{company} launched a new {product} on {r.choice(DAYS)}. The {product} costs {price} dollars and "
               f"goes on sale in {r.choice(MONTHS)}. The company expects to sell {r.randint(10, 900)} thousand "
               f"units this year. Its shares rose {r.randint(1, 9)} percent.")
    return article, f"{company} launched a new {product} that costs {price} dollars."


def _prize(r: random.Random, towns, teams, companies) -> tuple[str, str]:
    town, contest, build = r.choice(towns), r.choice(CONTESTS), r.choice(BUILDS)
    article = (f"Students from {town} won the national {contest} on {r.choice(DAYS)}. The team of "
               f"{r.randint(3, 9)} students built a {build}. Their teacher, {r.choice(PEOPLE)}, said the whole "
               f"school was proud. The prize is {r.randint(2, 20)} thousand dollars.")
    return article, f"Students from {town} won the national {contest} with a {build}."


FRAMES = (_opening, _sports, _weather, _launch, _prize)


PER_FRAME = {"train": 900, "test": 100}


def lead_sentence(article: str) -> str:
    """The article's first sentence (the lead-1 baseline)."""
    return article.split(". ")[0].rstrip(".") + "."


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    splits = {}
    for name, pools, seed in (("train", (TOWNS, TEAMS, COMPANIES), 11),
                              ("test", (TEST_TOWNS, TEST_TEAMS, TEST_COMPANIES), 12)):
        rng = random.Random(seed)
        records = []
        for _ in range(PER_FRAME[name]):
            for frame in FRAMES:
                article, summary = frame(rng, *pools)
                records.append({"prompt": f"Article: {article}\nSummary:", "completion": " " + lead_sentence(article),
                                "references": [summary]})
        splits[name] = tuple(dedupe(records))
    return splits


load = make_loader("summarize", _all_splits, "Article-to-summary records.",
                   held_out="the towns, teams and companies TEST_TOWNS, TEST_TEAMS, TEST_COMPANIES")
