"""Built-in rewards that read the completion itself: keywords, length, format, repetition here; sentiment and tone in
:mod:`textgym.rewards.sentiment` (re-exported), word matching in :mod:`textgym.rewards.words`.

Scores lie in [0, 1]; the repetition penalty lies in [-1, 0]. Each class documents the fields it reads.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from textgym.rewards.base import RewardInputError, is_missing, preview
from textgym.rewards.per_sample import Reward
from textgym.rewards.registry import register
from textgym.rewards.sentiment import (  # noqa: F401  (re-exported: sentiment and tone were defined here)
    TONE_CUES, TONE_VADER_WEIGHT, SentimentReward, ToneReward, positivity, salad_factor, sentiment_word_share, vader,
)
from textgym.rewards.words import _porter, mentions_any, phrase_occurs, same_word, stem, words  # noqa: F401


class KeywordsReward(Reward):
    """Fraction of the sample's ``keywords`` that occur in the completion, in [0, 1].

    Matching is case-insensitive on whole words, and accepts inflections: a keyword matches when the Porter stems
    agree (dogs/dog, walked/walking/walk, making/make) or the word is the keyword plus -s/-es/-d/-ed/-ing (bus ->
    buses). Irregular forms (run -> ran) do not match. A multi-word keyword must occur as a contiguous phrase.
    Repeated keywords in the list count once. Reads the field ``keywords`` (a list of strings, or one
    comma-separated string).

    With ``sentence=True`` (the default) the keywords must be used in a sentence, not listed: the score is
    multiplied by :attr:`LIST_FACTOR` when fewer than two of its words are not keywords ("dog ball park", "dog
    dog ball ball") or when two keywords are separated by nothing but a comma (a list, or a copy of the prompt "Write a
    sentence with: dog, ball, park.").

    Args:
        sentence: require a sentence (see above); False scores keyword coverage alone.
    """

    required_fields = ("keywords",)
    LIST_FACTOR = 0.25

    def __init__(self, sentence: bool = True):
        self.sentence = bool(sentence)

    def score_sample(self, prompt: str, completion: str, keywords: Any = None, **_: Any) -> float:
        if isinstance(keywords, str):
            keywords = keywords.split(",")
        targets = list(dict.fromkeys(tuple(words(str(k))) for k in (keywords or [])))
        targets = [t for t in targets if t]
        if not targets:
            raise RewardInputError(
                f"Reward 'keywords' got no keywords ({preview(keywords)}) for prompt {preview(prompt)}; give every "
                f"record a non-empty `keywords` list."
            )
        tokens = words(completion)
        coverage = sum(phrase_occurs(t, tokens) for t in targets) / len(targets)
        others = sum(1 for tok in tokens if not any(same_word(t[0], tok) for t in targets if len(t) == 1))
        if self.sentence and (others < 2 or self._listed(targets, completion)):
            return coverage * self.LIST_FACTOR
        return coverage

    def _listed(self, targets: list[tuple[str, ...]], completion: str) -> bool:
        """Whether two keywords stand side by side with only a comma between them ("dog, ball")."""
        for left, right in zip(completion.split(",")[:-1], completion.split(",")[1:]):
            before, after = words(left), words(right)
            if before and after and any(same_word(t[-1], before[-1]) for t in targets) and any(
                same_word(t[0], after[0]) for t in targets
            ):
                return True
        return False



def _length_score(actual: int, target: float, tolerance: float | None) -> float:
    tolerance = max(1.0, float(target)) if tolerance is None else float(tolerance)
    return max(0.0, 1.0 - abs(actual - float(target)) / tolerance)


class LengthReward(Reward):
    """1.0 at the target length, decaying linearly to 0.0 at ``target +- tolerance``: [0, 1].

    ``score = max(0, 1 - |length - target| / tolerance)``, the length counted in words (``\\w+`` runs) or
    characters (of the stripped completion). The target is the sample's ``target_words`` (``unit="words"``) or
    ``target_chars`` (``unit="chars"``) field when present, else the ``target`` option.

    Args:
        target: the target length for samples without the field; None requires the field.
        unit: ``"words"`` or ``"chars"``.
        tolerance: the distance at which the score reaches 0; None uses ``max(1, target)`` (so an empty
            completion scores 0).
    """

    def __init__(self, target: int | None = None, unit: str = "words", tolerance: float | None = None):
        if unit not in ("words", "chars"):
            raise ValueError(f"unit must be 'words' or 'chars', got {unit!r}.")
        if target is not None and not (isinstance(target, (int, float)) and target >= 0):
            raise ValueError(f"target must be a length >= 0, got {target!r}.")
        if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance > 0):
            raise ValueError(f"tolerance must be > 0, got {tolerance!r}.")
        self.target, self.unit, self.tolerance = target, unit, tolerance
        self.field = "target_words" if unit == "words" else "target_chars"
        self.optional_fields = (self.field,)
        self.required_fields = () if target is not None else (self.field,)

    def length(self, completion: str) -> int:
        """The completion's length in ``unit``."""
        return len(words(completion)) if self.unit == "words" else len(completion.strip())

    def score_sample(self, prompt: str, completion: str, **fields: Any) -> float:
        target = fields.get(self.field)
        target = self.target if is_missing(target) else target
        if target is None:
            raise RewardInputError(
                f"Reward 'length' has no target for prompt {preview(prompt)}: give the record a {self.field!r} "
                f"value or pass make('length', target=...)."
            )
        return _length_score(self.length(completion), target, self.tolerance)


class FormatReward(Reward):
    """1.0 if the completion (stripped of surrounding whitespace) fully matches a regex, else 0.0.

    The regex is the sample's ``pattern`` field when present, else the ``pattern`` option; matched with
    :func:`re.fullmatch` and ``re.DOTALL``.

    Args:
        pattern: the regex for samples without the field; None requires the field.
        strip: strip leading/trailing whitespace before matching (tokenizers often emit a leading space).
    """

    optional_fields = ("pattern",)

    def __init__(self, pattern: str | None = None, strip: bool = True):
        self.pattern, self.strip = pattern, strip
        if pattern is None:
            self.required_fields = ("pattern",)
        else:
            _compile(pattern)

    def score_sample(self, prompt: str, completion: str, pattern: Any = None, **_: Any) -> float:
        pattern = self.pattern if is_missing(pattern) else pattern
        if pattern is None:
            raise RewardInputError(f"Reward 'format' has no `pattern` for prompt {preview(prompt)}.")
        text = completion.strip() if self.strip else completion
        return float(_compile(pattern).fullmatch(text) is not None)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern, re.DOTALL)
    except (re.error, TypeError) as e:
        raise RewardInputError(f"Invalid format regex {pattern!r}: {e}. Fix the `pattern`.") from None


def list_items(completion: str) -> list[str]:
    """The comma-separated items of a list answer, lowercased, without surrounding space or a final period."""
    text = completion.strip()
    text = text[:-1] if text.endswith(".") else text
    return [item.strip().lower() for item in text.split(",")]


class FormatOrLengthReward(Reward):
    """Per sample: the ``format`` score when the record has a ``pattern``, the ``length`` score (words) when it has
    ``target_words``, their mean when it has both: [0, 1]. Made for the ``format`` task, whose records carry one
    or the other.

    When the sample's ``kind`` is ``"list"`` (an instruction such as "List four fruits"), the items must be
    distinct: a list with a repeated item fails the format, and only its distinct items count towards the
    length (``" soda, soda, soda, soda, water"`` for five drinks scores (0 + 0.4) / 2, not 1).

    Args:
        tolerance: the length tolerance (see :class:`LengthReward`).
    """

    optional_fields = ("pattern", "target_words", "kind")

    def __init__(self, tolerance: float | None = None):
        self.tolerance = tolerance
        self._format = FormatReward(pattern=None)
        self._length = LengthReward(target=None, unit="words", tolerance=tolerance)

    def score_sample(self, prompt: str, completion: str, pattern: Any = None, target_words: Any = None,
                     kind: Any = None, **_) -> float:
        distinct = True
        if not is_missing(kind) and kind == "list":
            items = list_items(completion)
            distinct = len(set(items)) == len(items)
            if not distinct:  # count each item once: repeating one cannot reach the length
                completion = ", ".join(dict.fromkeys(items))
        scores = []
        if not is_missing(pattern):
            scores.append(self._format.score_sample(prompt, completion, pattern=pattern) if distinct else 0.0)
        if not is_missing(target_words):
            scores.append(self._length.score_sample(prompt, completion, target_words=target_words))
        if not scores:
            raise RewardInputError(
                f"Reward 'format_or_length' needs a `pattern` or a `target_words` field for prompt {preview(prompt)}."
            )
        return sum(scores) / len(scores)


class RepetitionPenalty(Reward):
    """Minus the fraction of repeated word n-grams: ``-(1 - distinct n-grams / n-grams)``, in [-1, 0].

    0 for text without repeats (or shorter than ``n`` words); ``"sodium sodium sodium sodium"`` gets -2/3 with
    bigrams. Add it to a reward that a policy can hack by repeating a high-scoring word. Reads no field.

    Args:
        n: the n-gram order (2: bigrams).
    """

    def __init__(self, n: int = 2):
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be an integer >= 1, got {n!r}.")
        self.n = n

    def score_sample(self, prompt: str, completion: str, **_: Any) -> float:
        tokens = words(completion)
        ngrams = [tuple(tokens[i : i + self.n]) for i in range(len(tokens) - self.n + 1)]
        if not ngrams:
            return 0.0
        return len(set(ngrams)) / len(ngrams) - 1.0  # (not -(1 - x): no -0.0 in the logs)


register("sentiment", SentimentReward)
register("tone", ToneReward)
register("keywords", KeywordsReward)
register("length", LengthReward)
register("format", FormatReward)
register("format_or_length", FormatOrLengthReward)
register("repetition", RepetitionPenalty)
