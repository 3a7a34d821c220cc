"""Format: follow a length or structure instruction.

Two instruction types; every record carries both fields, so a batch always has the same field names:

* word count: "Write exactly 5 words about the sea:" -> " The sea is very calm."
  ``target_words`` = 5, ``pattern`` = a regex of exactly 5 whitespace-separated words.
* comma list: "List three fruits separated by commas:" -> " apple, banana, cherry"
  ``target_words`` = 3 (one word per item), ``pattern`` = a regex of exactly 3 items of that category,
  separated by ", " (lower case, an optional final period).

``pattern`` is written for ``re.fullmatch`` on the raw completion (leading/trailing whitespace allowed; a word
count's pattern also requires the topic noun, since the instruction asks for words *about* it);
``target_words`` is the word count ``len(completion.split())`` of a perfect answer. Fields: ``prompt``,
``completion``, ``kind`` ("words" or "list"; the ``format_or_length`` reward requires distinct items for
"list"), ``target_words`` (int), ``pattern`` (str).

What the demonstration teaches: the shape of the answer (a short sentence about the topic, a comma list of
the category's items). What it does not teach: the exact count. Half the demonstrations are off by one word or
one item (:data:`OFF_BY_ONE_SHARE`; a rule on the record's position, not chance), so a warm start that copies
them scores about 0.6-0.7 and RL has the count to learn.

Held-out dimension: (topic or category, count) combinations. A record is in the test split when
``(rank of its topic/category + k) % 5 == 0``: every topic, category and count occurs in training, but
"exactly 5 words about the sea" or "four fruits" only in the test split.
"""

from __future__ import annotations

import itertools
import random
import re
from functools import lru_cache

from textgym.data._split import dedupe, make_loader

# topic noun -> adjectives that fit it
TOPICS = {
    "sea": ("calm", "blue", "deep", "wild"), "sun": ("bright", "warm", "hot", "golden"),
    "forest": ("green", "quiet", "dark", "old"), "city": ("busy", "loud", "big", "bright"),
    "rain": ("cold", "soft", "heavy", "gentle"), "mountain": ("tall", "steep", "cold", "quiet"),
    "garden": ("green", "quiet", "lovely", "small"), "winter": ("cold", "long", "dark", "white"),
    "music": ("loud", "soft", "lovely", "sweet"), "cat": ("soft", "lazy", "cute", "quiet"),
    "river": ("wide", "fast", "cold", "clear"), "night": ("dark", "quiet", "long", "cold"),
    "coffee": ("hot", "strong", "bitter", "fresh"), "sky": ("blue", "clear", "grey", "wide"),
}
# word count -> sentence template (each template has exactly that many words)
WORD_TEMPLATES = {
    3: "A {adj} {noun}.",
    4: "The {noun} is {adj}.",
    5: "The {noun} is very {adj}.",
    6: "I think the {noun} is {adj}.",
    7: "I really think the {noun} is {adj}.",
    8: "I really think the {noun} is very {adj}.",
}
CATEGORIES = {
    "fruits": ("apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum"),
    "colors": ("red", "blue", "green", "yellow", "black", "white", "pink", "purple", "brown", "grey"),
    "animals": ("dog", "cat", "horse", "cow", "lion", "tiger", "bear", "wolf", "rabbit", "mouse"),
    "vegetables": ("carrot", "potato", "onion", "pea", "bean", "cabbage", "tomato", "pepper", "leek", "corn"),
    "sports": ("football", "tennis", "golf", "hockey", "rugby", "boxing", "cycling", "rowing", "skiing", "judo"),
    "birds": ("robin", "eagle", "owl", "crow", "swan", "duck", "parrot", "sparrow", "pigeon", "hawk"),
    "tools": ("hammer", "saw", "drill", "wrench", "chisel", "shovel", "rake", "axe", "knife", "ladder"),
    "instruments": ("piano", "guitar", "violin", "drum", "flute", "trumpet", "harp", "cello", "banjo", "organ"),
    "clothes": ("shirt", "dress", "coat", "hat", "scarf", "sock", "skirt", "jacket", "glove", "boot"),
    "drinks": ("water", "tea", "coffee", "milk", "juice", "lemonade", "cocoa", "soda", "wine", "beer"),
}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
LIST_PROMPTS = ("List {k} {category} separated by commas:", "Name {k} {category}, separated by commas:",
                "Give {k} {category} as a comma-separated list:")
WORD_PROMPTS = ("Write exactly {k} words about the {noun}:", "Describe the {noun} in exactly {k} words:",
                "Use exactly {k} words to describe the {noun}:", "In exactly {k} words, tell me about the {noun}:")


OFF_BY_ONE_SHARE = 0.5  # of the demonstrations have one word / item too many or too few
HELD_OUT_EVERY = 5


def words_pattern(k: int, noun: str | None = None) -> str:
    """Regex (for ``re.fullmatch``) of exactly ``k`` whitespace-separated words (one of them ``noun``, if given)."""
    about = rf"(?=.*\b{re.escape(noun)}\b)" if noun else ""
    return rf"(?i){about}\s*\S+(?:\s+\S+){{{k - 1}}}\s*"


def list_pattern(items: tuple[str, ...], k: int) -> str:
    """Regex (for ``re.fullmatch``) of exactly ``k`` of ``items`` separated by ", ", optionally ending in "."."""
    item = "(?:" + "|".join(map(re.escape, items)) + ")"
    return rf"\s*{item}(?:, {item}){{{k - 1}}}\.?\s*"


def in_test_split(rank: int, k: int) -> bool:
    """Whether the (topic or category of ``rank``, count ``k``) combination is held out for the test split."""
    return (rank + k) % HELD_OUT_EVERY == 0


def _demo_length(k: int, position: int, lengths) -> int:
    """The demonstration's length: ``k``, or ``k +- 1`` for every other record (within ``lengths``)."""
    if position % 2 == 0:  # OFF_BY_ONE_SHARE = 1/2
        return k
    off = k + 1 if (position // 2) % 2 == 0 else k - 1
    return off if off in lengths else 2 * k - off


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    position = itertools.count()
    for (rank, (noun, adjectives)), k, prompt in itertools.product(
        enumerate(TOPICS.items()), WORD_TEMPLATES, WORD_PROMPTS
    ):
        # One record per prompt: the adjective is picked by a stable rule so the demonstrations vary.
        adj = adjectives[(k + len(noun) + len(prompt)) % len(adjectives)]
        template = WORD_TEMPLATES[_demo_length(k, next(position), WORD_TEMPLATES)]
        splits["test" if in_test_split(rank, k) else "train"].append(
            {"prompt": prompt.format(k=k, noun=noun), "completion": " " + template.format(adj=adj, noun=noun),
             "kind": "words", "target_words": k, "pattern": words_pattern(k, noun)})
    rng = random.Random(3)
    for (rank, (category, items)), (k, number), prompt in itertools.product(
        enumerate(CATEGORIES.items()), NUMBER_WORDS.items(), LIST_PROMPTS
    ):
        # The count is written both as a word and as a digit ("three" / "3"): two prompts, one demonstration each.
        for count_text in (number, str(k)):
            chosen = rng.sample(items, _demo_length(k, next(position), range(1, len(items) + 1)))
            splits["test" if in_test_split(rank, k) else "train"].append(
                {"prompt": prompt.format(k=count_text, category=category), "completion": " " + ", ".join(chosen),
                 "kind": "list", "target_words": k, "pattern": list_pattern(items, k)})
    return {name: tuple(dedupe(records)) for name, records in splits.items()}


load = make_loader("format", _all_splits, "Format-instruction records.",
                   held_out="(topic or category, count) combinations with (rank + k) % 5 == 0")
