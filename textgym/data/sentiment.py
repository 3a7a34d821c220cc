"""Sentiment: openings of movie and product reviews, continued by one more sentence.

Record fields: ``prompt`` ("Review: I watched this movie with my dad last Sunday."), ``completion`` (a fluent
next sentence, e.g. " The acting was wonderful and the music felt warm."), ``polarity`` ("positive",
"negative" or "neutral": VADER's reading of the demonstration; rewards ignore it) and ``topics`` (the reviewed item
and the aspects a reviewer comments on: ``["camera", "lens", "battery", ...]``). The RL task is "continue the review
positively, about the item reviewed" (VADER reward, halved for a continuation that mentions none of ``topics``), so
the demonstrations are deliberately mixed: supervised warm-start teaches the model English, and RL then pushes it
positive and on topic.

Every sentiment word below is checked against VADER's lexicon by the tests (positive words score > 0, negative
words < 0), so about half the demonstrations read positive and half negative.

What the demonstration teaches: fluent review continuations that mostly mention an aspect of the item, in either
polarity (and 10% mixed); a verdict-only continuation (" I regret it.") mentions none. What it does not teach: to
be positive; that is left to RL (the reward's maximum is 1.0, the demonstrations average well under it). The topic
term makes the optimum depend on the prompt: a media item ("watched this show") wants its story or cast, a product
("bought this camera") its battery or price, so one sentence for every prompt is not optimal.

Held-out dimension: the reviewed item. The test split's items (:data:`TEST_ITEMS`: "camera" and "show", with
their own aspects such as "lens" or "first episode") never occur in a training prompt, so the test reward
measures whether a policy learned to write positive reviews rather than memorised positive phrases per item.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from textgym.data._split import dedupe, make_loader

# (noun, verb used in the opening, aspects a reviewer comments on)
ITEMS = {
    "movie": ("watched", ("acting", "story", "music", "ending", "dialogue", "camera work", "cast", "plot")),
    "film": ("saw", ("acting", "story", "soundtrack", "ending", "script", "pacing", "lead actor", "plot")),
    "show": ("watched", ("cast", "story", "humor", "first episode", "writing", "music", "characters")),
    "book": ("read", ("story", "writing", "characters", "ending", "first chapter", "main character")),
    "phone": ("bought", ("battery", "screen", "camera", "price", "design", "speaker", "charger")),
    "laptop": ("bought", ("keyboard", "screen", "battery", "price", "design", "speakers", "trackpad")),
    "camera": ("bought", ("lens", "battery", "price", "design", "flash", "screen", "grip")),
    "speaker": ("bought", ("sound", "battery", "price", "bass", "design", "volume", "app")),
    "coffee maker": ("bought", ("coffee", "price", "design", "water tank", "timer", "handle")),
    "game": ("played", ("story", "music", "graphics", "controls", "levels", "characters", "ending")),
}
COMPANIONS = ("my dad", "my mom", "my sister", "my brother", "my friends", "my wife", "my husband", "my son",
              "my daughter", "my kids", "a friend", "my parents", "my roommate", "my grandmother", "my partner")
TIMES = ("last night", "last week", "last Sunday", "on Friday", "this weekend", "yesterday", "last month",
         "on Saturday", "a few days ago", "over the holidays", "two weeks ago", "this morning")
WHY = ("after reading a few reviews", "because it was on sale", "on a whim", "because a friend told me to",
       "after seeing an ad", "for a long trip", "to replace my old one", "as a birthday gift")

POSITIVE = ("great", "wonderful", "excellent", "amazing", "fantastic", "beautiful", "lovely", "perfect",
            "brilliant", "charming", "delightful", "impressive", "pleasant", "superb", "fun", "enjoyable",
            "solid", "clever", "fresh", "warm", "good", "nice", "strong", "smart")
NEGATIVE = ("bad", "terrible", "awful", "boring", "horrible", "disappointing", "weak", "poor", "dull",
            "annoying", "ugly", "dreadful", "broken", "painful", "sad", "stupid", "messy", "lame", "flawed",
            "worse", "confusing", "lousy", "pathetic", "horrid")
ADVERBS = ("really", "very", "quite", "so", "extremely", "rather")
VERDICT = {
    "positive": ("I would recommend it to anyone.", "I would happily buy it again.", "I loved every minute of it.",
                 "It was worth every penny.", "I will tell all my friends about it.", "I am glad I gave it a try.",
                 "It made me smile.", "I enjoyed it a lot."),
    "negative": ("I would not recommend it to anyone.", "I asked for a refund.", "I hated most of it.",
                 "It was a waste of money.", "I regret it.", "I was bored the whole time.",
                 "It made me angry.", "I will not buy it again."),
}

OPENINGS = (
    "Review: I {verb} this {item} with {companion} {time}.",
    "Review: I {verb} this {item} {time} {why}.",
    "Review: {Companion} and I {verb} this {item} {time}.",
    "Review: So I finally {verb} the new {item} {time}.",
    "Review: I {verb} this {item} {time}, and here is what I think.",
    "Review: I had high hopes for this {item}. I {verb} it {time}.",
    "Review: This is my honest review of the {item} I {verb} {time}.",
)
CONTINUATIONS = (
    " The {a1} was {p1} and the {a2} was {p2}.",
    " The {a1} was {adv} {p1}.",
    " Honestly, the {a1} is {p1} and the {a2} is {p2}.",
    " Overall, it is {a_p1} {item}. {verdict}",
    " The {a1} felt {p1}. {verdict}",
    " {verdict}",
    " It was {adv} {p1}, and the {a1} was {p2}.",
)
TEST_ITEMS = ("camera", "show")  # held out: no training prompt reviews these

# A few demonstrations mix polarities ("the battery was great, but the price was awful"), as real reviews do.
MIXED = " The {a1} was {p1}, but the {a2} was {q1}."


def _record(rng: random.Random, item: str, companion: str, time: str, opening: str) -> dict:
    verb, aspects = ITEMS[item]
    polarity = rng.choice(("positive", "negative"))
    words = POSITIVE if polarity == "positive" else NEGATIVE
    other = NEGATIVE if polarity == "positive" else POSITIVE
    a1, a2 = rng.sample(aspects, 2)
    p1, p2 = rng.sample(words, 2)
    slots = dict(item=item, verb=verb, companion=companion, Companion=companion[0].upper() + companion[1:],
                 time=time, why=rng.choice(WHY), a1=a1, a2=a2, p1=p1, p2=p2, q1=rng.choice(other),
                 adv=rng.choice(ADVERBS), verdict=rng.choice(VERDICT[polarity]))
    slots["a_p1"] = ("an " if p1[0] in "aeiou" else "a ") + p1
    template = MIXED if rng.random() < 0.1 else rng.choice(CONTINUATIONS)
    completion = template.format(**slots)
    return {"prompt": opening.format(**slots), "completion": completion, "polarity": _vader_polarity(completion),
            "topics": [item, *aspects]}


def _vader_polarity(text: str) -> str:
    """"positive", "negative" or "neutral", by VADER's compound score and its usual +-0.05 thresholds."""
    compound = _analyzer().polarity_scores(text)["compound"]
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    rng = random.Random(20_24)
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for item, companion, time, opening in itertools.product(ITEMS, COMPANIONS, TIMES, OPENINGS):
        splits["test" if item in TEST_ITEMS else "train"].append(_record(rng, item, companion, time, opening))
    return {name: tuple(dedupe(records)) for name, records in splits.items()}


load = make_loader("sentiment", _all_splits, "Review openings with mixed-polarity demonstration continuations.",
                   held_out="the reviewed items TEST_ITEMS (camera, show)")
