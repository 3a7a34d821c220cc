"""Keywords (CommonGen's shape): write one sentence that uses every given concept.

Record fields: ``prompt`` ("Write a sentence with: dog, ball, park.\\nSentence:"), ``completion`` (" The dog
chases the ball in the park."), ``keywords`` (the 2-4 concept words), ``references`` (every sentence the
generator knows for that concept set). Each keyword appears verbatim in the demonstration; verbs are regular
ones whose third-person form starts with the lemma ("chase" -> "chases"), so a substring check finds them.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from textgym.data._split import make_loader

# (subjects, verb lemma, third-person form, objects, places as (preposition, noun)): scenes that make sense.
SCENES = (
    (("dog", "puppy"), "chase", "chases", ("ball", "cat", "stick"),
      (("in", "park"), ("in", "yard"), ("across", "field"))),
    (("girl", "boy", "child"), "kick", "kicks", ("ball", "can"),
      (("in", "park"), ("on", "street"), ("across", "field"))),
    (("chef", "cook"), "cut", "cuts", ("onion", "tomato", "bread"), (("in", "kitchen"), ("at", "restaurant"))),
    (("man", "woman", "student"), "read", "reads", ("book", "newspaper", "letter"),
      (("in", "library"), ("on", "train"), ("in", "garden"))),
    (("farmer",), "feed", "feeds", ("cow", "horse", "chicken"), (("on", "farm"), ("in", "barn"), ("in", "field"))),
    (("student", "writer"), "write", "writes", ("essay", "letter", "story"),
      (("in", "classroom"), ("in", "library"), ("at", "desk"))),
    (("boy", "girl", "artist"), "paint", "paints", ("picture", "wall", "fence"),
      (("in", "garden"), ("at", "school"), ("near", "house"))),
    (("woman", "man"), "wash", "washes", ("car", "dog", "dish"),
      (("in", "driveway"), ("in", "garage"), ("in", "kitchen"))),
    (("cat",), "watch", "watches", ("bird", "fish", "mouse"),
      (("from", "window"), ("in", "garden"), ("in", "kitchen"))),
    (("musician", "girl"), "play", "plays", ("guitar", "piano", "violin"),
      (("at", "concert"), ("on", "street"), ("in", "room"))),
    (("player", "boy"), "throw", "throws", ("ball", "stone"),
      (("in", "stadium"), ("across", "field"), ("into", "lake"))),
    (("baker", "woman"), "bake", "bakes", ("bread", "cake", "pie"), (("in", "bakery"), ("in", "kitchen"))),
    (("child", "boy", "climber"), "climb", "climbs", ("tree", "hill", "wall"),
      (("in", "park"), ("in", "forest"), ("near", "river"))),
    (("fisherman", "man"), "catch", "catches", ("fish",), (("in", "lake"), ("in", "river"), ("from", "boat"))),
    (("family", "couple"), "eat", "eats", ("dinner", "lunch", "pizza"),
      (("at", "restaurant"), ("in", "kitchen"), ("in", "garden"))),
    (("girl", "woman", "rider"), "ride", "rides", ("bike", "horse"),
      (("on", "street"), ("along", "beach"), ("through", "park"))),
    (("man", "mechanic"), "fix", "fixes", ("car", "bike", "door"),
      (("in", "garage"), ("on", "street"), ("at", "shop"))),
    (("teacher", "student"), "open", "opens", ("window", "door", "book"), (("in", "classroom"), ("at", "school"))),
    (("child", "gardener"), "plant", "plants", ("tree", "flower", "seed"),
      (("in", "garden"), ("in", "yard"), ("in", "park"))),
    (("girl", "boy"), "pick", "picks", ("apple", "flower", "berry"),
      (("in", "orchard"), ("in", "garden"), ("near", "road"))),
    (("waiter", "waitress"), "serve", "serves", ("soup", "coffee", "cake"), (("in", "restaurant"), ("at", "cafe"))),
    (("man", "woman", "driver"), "park", "parks", ("car", "truck", "van"),
      (("on", "street"), ("near", "station"), ("in", "garage"))),
)
MAX_REFERENCES = 8  # enough for BLEU-style rewards; more only grows every batch
TEMPLATES = (
    "The {s} {v} the {o} {prep} the {p}.",
    "{Prep} the {p}, a {s} {v} the {o}.",
    "A {s} {v} a {o} {prep} the {p}.",
)


@lru_cache(maxsize=1)
def _all_records() -> tuple[dict, ...]:
    by_prompt: dict[str, dict] = {}
    rng = random.Random(7)
    for subjects, lemma, verb, objects, places in SCENES:
        assert verb.startswith(lemma), f"{lemma} -> {verb}: keywords must appear verbatim in the sentence"
        for s, o, (prep, p) in itertools.product(subjects, objects, places):
            sentences = [t.format(s=s, v=verb, o=o, prep=prep, Prep=prep.capitalize(), p=p) for t in TEMPLATES]
            concepts = [s, lemma, o, p]
            for size in (2, 3, 4):
                for subset in itertools.combinations(concepts, size):
                    if o not in subset:  # the object anchors the scene; "cat, park" alone is too open
                        continue
                    keywords = list(subset)
                    rng.shuffle(keywords)
                    prompt = f"Write a sentence with: {', '.join(keywords)}.\nSentence:"
                    record = by_prompt.setdefault(
                        prompt, {"prompt": prompt, "completion": " " + sentences[0], "keywords": keywords,
                                 "references": []})
                    refs = record["references"]
                    refs.extend(x for x in sentences if x not in refs and len(refs) < MAX_REFERENCES)
    return tuple(by_prompt.values())


load = make_loader("keywords", _all_records, "Concept-to-sentence records.", "a hash bucket of prompts")
