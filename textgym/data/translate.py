"""Translate: simple English sentences and their French translations, from a phrase table and a small grammar.

Record fields: ``prompt`` ("Translate to French: The cat eats the fish.\\nFrench:"), ``completion``
(" Le chat mange le poisson."), ``references`` ([the French sentence]). Sentences are subject + verb + object
(+ an optional time phrase) in the present tense; the grammar handles gender (le/la/un/une), elision (l'eau,
j'aime) and conjugation for "I", "we" and third-person subjects, so every reference is correct French.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from textgym.data._split import make_loader

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


def _french_clause(subject: str, verb: str) -> str:
    # Elision: "je" before a vowel or mute h becomes "j'" ("j'aime", "j'ai", "j'achète").
    if subject == "je" and verb[0] in "aeiouhéè":
        return "j'" + verb
    return f"{subject} {verb}"


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:]


@lru_cache(maxsize=1)
def _all_records() -> tuple[dict, ...]:
    records = []
    for (en_subj, fr_subj, person), (en_verb, fr_verb, objects), (en_time, fr_time) in itertools.product(
        SUBJECTS, VERBS, TIMES
    ):
        for en_obj, fr_obj in objects:
            english = _sentence_case(f"{en_subj} {en_verb[0 if person == '3s' else 1]} {en_obj}{en_time}.")
            french = _sentence_case(f"{_french_clause(fr_subj, fr_verb[PERSON_INDEX[person]])} {fr_obj}{fr_time}.")
            records.append({"prompt": f"Translate to French: {english}\nFrench:", "completion": " " + french,
                            "references": [french]})
    return tuple(records)


load = make_loader("translate", _all_records, "English-to-French records.", "a hash bucket of prompts")
