"""Word matching shared by the built-in rewards: word tokens, inflection-tolerant word and phrase matching
(suffixes, Porter stems), "does this text mention one of these phrases". Moved out of ``builtin.py`` unchanged;
``textgym.rewards.builtin`` re-exports every name."""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lowercased word tokens (unicode letters/digits runs); punctuation is dropped."""
    return _WORD.findall(text.lower())


def mentions_any(text: str, phrases: list[str]) -> bool:
    """Whether ``text`` contains one of ``phrases`` as whole words, word by word as :func:`same_word` compares
    them ("The first episodes" mentions "first episode", "the batteries" mentions "battery"; "screenplay" does
    not mention "screen")."""
    tokens = words(text)
    return any(phrase_occurs(tuple(words(p)), tokens) for p in phrases)


_SUFFIXES = ("", "s", "es", "d", "ed", "ing")


def same_word(keyword: str, token: str) -> bool:
    """``token`` is ``keyword`` or an inflection of it: a common suffix ("dogs", "chased") or the same Porter stem."""
    return token in (keyword + suffix for suffix in _SUFFIXES) or stem(token) == stem(keyword)


def phrase_occurs(phrase: tuple[str, ...], tokens: list[str]) -> bool:
    """Whether the words of ``phrase`` stand consecutively in ``tokens``, each compared by :func:`same_word`."""
    k = len(phrase)
    return any(all(same_word(w, t) for w, t in zip(phrase, tokens[i : i + k])) for i in range(len(tokens) - k + 1))


@functools.lru_cache(maxsize=1)
def _porter():
    from nltk.stem.porter import PorterStemmer  # nltk comes with rouge-score; importing it takes ~0.3 s

    return PorterStemmer()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Porter stem of a lowercased word (nltk; cached: rollouts repeat words a lot)."""
    return _porter().stem(word)
