"""Keywords (CommonGen's shape): write one sentence that uses every given concept.

Record fields: ``prompt`` ("Write a sentence with: dog, ball, park.\\nSentence:"), ``completion`` (" The dog
chases the ball in the park."), ``keywords`` (the 2-4 concept words), ``references`` (every sentence the
generator knows for that concept set, each using every concept). Verbs are regular ones whose third-person form
starts with the lemma ("chase" -> "chases"), so a substring check finds them. Every concept set names a subject
and an object, plus the verb, the place or both.

What the demonstration teaches: fluent scene sentences built around the subject and the object. What it does
not teach: to use every concept. A demonstration for three or four concepts leaves exactly one of them out
(the place, the verb or the subject, in turn), so it earns 2/3 or 3/4 of the keyword reward; the references
(and RL) use them all.

Held-out dimension: (subject, object) pairs. Every :data:`HELD_OUT_EVERY`-th distinct pair in sorted order
(:func:`test_pairs`) occurs only in test prompts, so "girl" and "ball" are trained on, but a prompt asking for
a girl with a ball only in the test split.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from textgym.data._split import by_rank, make_loader

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
    (("child", "farmer"), "plant", "plants", ("tree", "flower", "seed"),
      (("in", "garden"), ("in", "yard"), ("in", "park"))),
    (("girl", "boy"), "pick", "picks", ("apple", "flower", "berry"),
      (("in", "orchard"), ("in", "garden"), ("near", "road"))),
    (("waiter", "waitress"), "serve", "serves", ("soup", "coffee", "cake"), (("in", "restaurant"), ("at", "cafe"))),
    (("man", "woman", "driver"), "park", "parks", ("car", "truck", "van"),
      (("on", "street"), ("near", "station"), ("in", "garage"))),
)
HELD_OUT_EVERY = 8
MAX_REFERENCES = 8  # enough for BLEU-style rewards; more only grows every batch
TEMPLATES = (
    "The {s} {v} the {o} {prep} the {p}.",
    "{Prep} the {p}, a {s} {v} the {o}.",
    "A {s} {v} a {o} {prep} the {p}.",
)


# Demonstrations that leave one concept out: without the place, without the verb, without the subject.
PARTIAL = {
    "place": "The {s} {v} the {o}.",
    "verb": "The {s} is with the {o} {prep} the {p}.",
    "subject": "Someone {v} the {o} {prep} the {p}.",
}
PARTIAL_NO_PLACE = {"verb": "The {s} is with the {o}.", "subject": "Someone {v} the {o}."}


@lru_cache(maxsize=1)
def test_pairs() -> frozenset:
    """The held-out (subject, object) pairs: every ``HELD_OUT_EVERY``-th distinct pair in sorted order."""
    pairs = sorted({(s, o) for subjects, _, _, objects, _ in SCENES for s in subjects for o in objects})
    return by_rank(pairs, HELD_OUT_EVERY)


def _demonstration(keywords: set, s: str, verb: str, o: str, prep: str, p: str, position: int) -> str:
    slots = dict(s=s, v=verb, o=o, prep=prep, Prep=prep.capitalize(), p=p)
    if len(keywords) == 2:
        return TEMPLATES[0].format(**slots)
    omittable = [c for c, word in (("place", p), ("verb", None), ("subject", s)) if c != "place" or word in keywords]
    omittable = [c for c in omittable if c != "verb" or len(keywords & {s, o, p}) < len(keywords)]
    left_out = omittable[position % len(omittable)]
    templates = PARTIAL if p in keywords else {"place": PARTIAL["place"], **PARTIAL_NO_PLACE}
    return templates[left_out].format(**slots)


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    by_prompt: dict[str, dict] = {}
    split_of: dict[str, str] = {}
    rng = random.Random(7)
    held_out = test_pairs()
    for subjects, lemma, verb, objects, places in SCENES:
        assert verb.startswith(lemma), f"{lemma} -> {verb}: keywords must appear verbatim in the sentence"
        for s, o, (prep, p) in itertools.product(subjects, objects, places):
            sentences = [t.format(s=s, v=verb, o=o, prep=prep, Prep=prep.capitalize(), p=p) for t in TEMPLATES]
            # subject and object always; then the verb, the place or both
            for extra in ((), (lemma,), (p,), (lemma, p)):
                keywords = [s, o, *extra]
                rng.shuffle(keywords)
                prompt = f"Write a sentence with: {', '.join(keywords)}.\nSentence:"
                if prompt not in by_prompt:
                    demo = _demonstration(set(keywords), s, verb, o, prep, p, len(by_prompt))
                    by_prompt[prompt] = {"prompt": prompt, "completion": " " + demo, "keywords": keywords,
                                         "references": []}
                    split_of[prompt] = "test" if (s, o) in held_out else "train"
                refs = by_prompt[prompt]["references"]
                refs.extend(x for x in sentences if x not in refs and len(refs) < MAX_REFERENCES)
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for prompt, record in by_prompt.items():
        splits[split_of[prompt]].append(record)
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("keywords", _all_splits, "Concept-to-sentence records.",
                   held_out="(subject, object) pairs test_pairs()")
