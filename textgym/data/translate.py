"""Translate: simple English sentences and their French translations, from a phrase table and a small grammar.

Record fields: ``prompt`` ("Translate to French: The cat eats the fish.\\nFrench:"), ``completion``
(" Le chat mange le poisson."), ``references`` ([the French sentence]). Sentences are subject + verb + object
(+ an optional time phrase) in the present tense; the grammar handles gender (le/la/un/une), elision (l'eau,
j'aime) and conjugation for "I", "we" and third-person subjects, so every reference is correct French.

What the demonstration teaches: the vocabulary and the word order. What it does not teach: all of the grammar.
Half the demonstrations are a literal, word-by-word rendering with one error of the kind a learner makes
(:func:`literal_translation`): the third-person verb for every subject ("nous mange"), no elision ("je aime",
"le eau"), or the object's article of the wrong gender ("la pain"); the ``references`` stay correct, so the
demonstrations average about 0.8 BLEU+chrF and RL has the grammar to fix.

Held-out dimension: (subject, object) pairs. Every :data:`HELD_OUT_EVERY`-th distinct pair in sorted order
(:func:`test_pairs`) occurs only in test prompts: every subject, verb and object is trained on, but "the girl"
with "an apple" only in the test split.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from textgym.data._split import by_rank, make_loader

# English subject, French subject, person ("1s", "1p", "3s")
SUBJECTS = (
    ("the cat", "le chat", "3s"), ("the dog", "le chien", "3s"), ("the girl", "la fille", "3s"),
    ("the boy", "le garçon", "3s"), ("the woman", "la femme", "3s"), ("the man", "l'homme", "3s"),
    ("my mother", "ma mère", "3s"), ("my father", "mon père", "3s"), ("the teacher", "le professeur", "3s"),
    ("my friend", "mon ami", "3s"), ("she", "elle", "3s"), ("he", "il", "3s"), ("I", "je", "1s"),
    ("we", "nous", "1p"),
)
# English forms (3s, other), French forms (1s, 3s, 1p), objects as (English, French)
VERBS = (
    (("eats", "eat"), ("mange", "mange", "mangeons"),
     (("an apple", "une pomme"), ("the bread", "le pain"), ("a cake", "un gâteau"), ("the fish", "le poisson"),
      ("an orange", "une orange"), ("the cheese", "le fromage"), ("the soup", "la soupe"))),
    (("drinks", "drink"), ("bois", "boit", "buvons"),
     (("the water", "l'eau"), ("the milk", "le lait"), ("a coffee", "un café"), ("the juice", "le jus"),
      ("the tea", "le thé"), ("a glass of wine", "un verre de vin"))),
    (("reads", "read"), ("lis", "lit", "lisons"),
     (("a book", "un livre"), ("the letter", "la lettre"), ("the newspaper", "le journal"), ("the map", "la carte"),
      ("a story", "une histoire"))),
    (("sees", "see"), ("vois", "voit", "voyons"),
     (("the house", "la maison"), ("a bird", "un oiseau"), ("the car", "la voiture"), ("the sea", "la mer"),
      ("the tree", "l'arbre"), ("the garden", "le jardin"), ("the moon", "la lune"))),
    (("likes", "like"), ("aime", "aime", "aimons"),
     (("the music", "la musique"), ("the garden", "le jardin"), ("the city", "la ville"), ("the film", "le film"),
      ("the beach", "la plage"), ("the song", "la chanson"))),
    (("wants", "want"), ("veux", "veut", "voulons"),
     (("a bike", "un vélo"), ("a house", "une maison"), ("a dog", "un chien"), ("a cat", "un chat"),
      ("a ticket", "un billet"), ("the car", "la voiture"))),
    (("has", "have"), ("ai", "a", "avons"),
     (("a bike", "un vélo"), ("a brother", "un frère"), ("a sister", "une sœur"), ("a garden", "un jardin"),
      ("a key", "une clé"), ("the ticket", "le billet"))),
    (("buys", "buy"), ("achète", "achète", "achetons"),
     (("the bread", "le pain"), ("a hat", "un chapeau"), ("the flowers", "les fleurs"), ("a newspaper", "un journal"),
      ("a shirt", "une chemise"), ("the milk", "le lait"))),
)
TIMES = (("", ""), (" today", " aujourd'hui"), (" every day", " tous les jours"), (" in the morning", " le matin"),
         (" tonight", " ce soir"), (" on Sunday", " le dimanche"))
PERSON_INDEX = {"1s": 0, "3s": 1, "1p": 2}
HELD_OUT_EVERY = 8
ERRORS = ("conjugation", "elision", "gender")
_GENDER_SWAP = {"le ": "la ", "la ": "le ", "un ": "une ", "une ": "un ", "l'": "le ", "les ": "la "}


def _french_clause(subject: str, verb: str) -> str:
    # Elision: "je" before a vowel or mute h becomes "j'" ("j'aime", "j'ai", "j'achète").
    if subject == "je" and verb[0] in "aeiouhéè":
        return "j'" + verb
    return f"{subject} {verb}"


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:]


def literal_translation(fr_subj: str, fr_verb: tuple[str, str, str], person: str, fr_obj: str, fr_time: str,
                        error: str) -> str:
    """A word-by-word French sentence with one learner's ``error`` (one of :data:`ERRORS`), where it applies."""
    verb = fr_verb[PERSON_INDEX[person]]
    if error == "conjugation" and verb != fr_verb[1]:
        return _sentence_case(f"{fr_subj} {fr_verb[1]} {fr_obj}{fr_time}.")  # "nous mange", "je boit"
    clause = _french_clause(fr_subj, verb)
    if error == "elision" and (clause.startswith("j'") or fr_obj.startswith("l'") or fr_subj.startswith("l'")):
        subject = {"l'homme": "le homme"}.get(fr_subj, fr_subj)
        obj = "le " + fr_obj[2:] if fr_obj.startswith("l'") else fr_obj
        return _sentence_case(f"{subject} {verb} {obj}{fr_time}.")  # "je aime", "le eau"
    article = next(a for a in _GENDER_SWAP if fr_obj.startswith(a))  # every object starts with an article
    obj = _GENDER_SWAP[article] + fr_obj[len(article):]
    return _sentence_case(f"{clause} {obj}{fr_time}.")  # "la pain", "une gâteau"


@lru_cache(maxsize=1)
def test_pairs() -> frozenset:
    """The held-out (English subject, English object) pairs: every ``HELD_OUT_EVERY``-th in sorted order."""
    pairs = sorted({(subject[0], obj[0]) for subject in SUBJECTS for verb in VERBS for obj in verb[2]})
    return by_rank(pairs, HELD_OUT_EVERY)


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    held_out = test_pairs()
    position = itertools.count()
    for (en_subj, fr_subj, person), (en_verb, fr_verb, objects), (en_time, fr_time) in itertools.product(
        SUBJECTS, VERBS, TIMES
    ):
        for en_obj, fr_obj in objects:
            english = _sentence_case(f"{en_subj} {en_verb[0 if person == '3s' else 1]} {en_obj}{en_time}.")
            french = _sentence_case(f"{_french_clause(fr_subj, fr_verb[PERSON_INDEX[person]])} {fr_obj}{fr_time}.")
            i = next(position)
            demo = french if i % 2 == 0 else literal_translation(fr_subj, fr_verb, person, fr_obj, fr_time,
                                                                 ERRORS[(i // 2) % len(ERRORS)])
            splits["test" if (en_subj, en_obj) in held_out else "train"].append(
                {"prompt": f"Translate to French: {english}\nFrench:", "completion": " " + demo,
                 "references": [french]})
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("translate", _all_splits, "English-to-French records.",
                   held_out="(subject, object) pairs test_pairs()")
