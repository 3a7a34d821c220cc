"""Built-in rewards that compare the completion with references or answers (sacrebleu, rouge-score, SQuAD).

All scores lie in [0, 1]. Fields: ``references`` (a string or a list of strings per sample) for bleu/chrf/rouge,
``answer`` (a string, a number, or a list of accepted answers per sample) for exact_match/token_f1/numeric_match.
"""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Any

from textgym.rewards.base import RewardInputError, as_text_list, preview
from textgym.rewards.per_sample import Reward
from textgym.rewards.registry import register


class BleuReward(Reward):
    """Sentence BLEU (sacrebleu, ``effective_order=True``) against the sample's ``references``, / 100: [0, 1].

    Args:
        tokenize: sacrebleu tokenizer (``"13a"``; ``"zh"``, ``"ja-mecab"``, ``"char"``... for other scripts).
        lowercase: compare lowercased text.
    """

    required_fields = ("references",)

    def __init__(self, tokenize: str = "13a", lowercase: bool = False):
        from sacrebleu.metrics import BLEU

        self.tokenize, self.lowercase = tokenize, lowercase
        self._bleu = BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=True)

    def score_sample(self, prompt: str, completion: str, references: Any = None, **_: Any) -> float:
        refs = as_text_list(references, "references", "bleu")
        return _unit(self._bleu.sentence_score(completion, refs).score / 100.0)


class ChrfReward(Reward):
    """Sentence chrF (sacrebleu) against the sample's ``references``, / 100: [0, 1].

    Args:
        char_order: character n-gram order (6 in the chrF paper).
        word_order: word n-gram order; 2 gives chrF++.
        lowercase: compare lowercased text.
    """

    required_fields = ("references",)

    def __init__(self, char_order: int = 6, word_order: int = 0, lowercase: bool = False):
        from sacrebleu.metrics import CHRF

        self.char_order, self.word_order, self.lowercase = char_order, word_order, lowercase
        self._chrf = CHRF(char_order=char_order, word_order=word_order, lowercase=lowercase)

    def score_sample(self, prompt: str, completion: str, references: Any = None, **_: Any) -> float:
        refs = as_text_list(references, "references", "chrf")
        return _unit(self._chrf.sentence_score(completion, refs).score / 100.0)


class RougeReward(Reward):
    """ROUGE F-measure (rouge-score, Porter stemming) against the sample's ``references``, max over them: [0, 1].

    rouge-score's default tokenizer keeps only ASCII letters and digits: use bleu/chrf for other scripts.

    Args:
        rouge_type: ``"rougeL"`` (longest common subsequence), ``"rouge1"``, ``"rouge2"`` or ``"rougeLsum"``.
        use_stemmer: Porter-stem words before matching.
    """

    required_fields = ("references",)
    ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

    def __init__(self, rouge_type: str = "rougeL", use_stemmer: bool = True):
        from rouge_score import rouge_scorer

        if rouge_type not in self.ROUGE_TYPES:
            raise ValueError(f"rouge_type must be one of {self.ROUGE_TYPES}, got {rouge_type!r}.")
        self.rouge_type, self.use_stemmer = rouge_type, use_stemmer
        self._scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=use_stemmer)

    def score_sample(self, prompt: str, completion: str, references: Any = None, **_: Any) -> float:
        refs = as_text_list(references, "references", "rouge")
        return max(self._scorer.score(ref, completion)[self.rouge_type].fmeasure for ref in refs)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalization: lowercase, drop punctuation and the articles a/an/the, squeeze spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


class ExactMatchReward(Reward):
    """1.0 if the normalized completion equals a normalized accepted ``answer``, else 0.0 (SQuAD exact match).

    Normalization (:func:`normalize_answer`): lowercase, punctuation and articles removed, whitespace squeezed,
    so ``" The Eiffel Tower."`` matches ``"eiffel tower"``.
    """

    required_fields = ("answer",)

    def score_sample(self, prompt: str, completion: str, answer: Any = None, **_: Any) -> float:
        target = normalize_answer(completion)
        return float(any(target == normalize_answer(a) for a in as_text_list(answer, "answer", "exact_match")))


class TokenF1Reward(Reward):
    """SQuAD token F1 between the normalized completion and the best accepted ``answer``: [0, 1].

    Partial credit for partial answers: ``"in Paris"`` vs ``"Paris"`` scores 2/3.
    """

    required_fields = ("answer",)

    def score_sample(self, prompt: str, completion: str, answer: Any = None, **_: Any) -> float:
        predicted = normalize_answer(completion).split()
        answers = as_text_list(answer, "answer", "token_f1")
        return max(_token_f1(predicted, normalize_answer(a).split()) for a in answers)


def _token_f1(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


_NUMBER = re.compile(r"[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+\u2212]?\.\d+")


def first_number(text: str) -> float | None:
    """The first number in ``text`` (``"-3"``, ``"1,000"``, ``"2.5"``, ``"1e3"``, unicode minus), or None."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    return float(match.group().replace(",", "").replace("\u2212", "-"))


class NumericMatchReward(Reward):
    """1.0 if the first number in the completion equals ``answer`` within ``tolerance``, else 0.0 (also 0.0 when
    the completion has no number). ``answer`` may be a number, a numeric string or a list of accepted ones.

    Args:
        tolerance: the largest accepted absolute difference.
    """

    required_fields = ("answer",)

    def __init__(self, tolerance: float = 1e-6):
        if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
            raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}.")
        self.tolerance = tolerance

    def score_sample(self, prompt: str, completion: str, answer: Any = None, **_: Any) -> float:
        value = first_number(completion)
        if value is None:
            return 0.0
        for accepted in as_text_list(answer, "answer", "numeric_match"):
            target = first_number(accepted)
            if target is None:
                raise RewardInputError(
                    f"Reward 'numeric_match' needs a numeric `answer`, got {preview(accepted)}. Use 'exact_match' "
                    f"for text answers."
                )
            if math.isfinite(value) and abs(value - target) <= self.tolerance:
                return 1.0
        return 0.0


def _unit(x: float) -> float:
    """Clip to [0, 1]: sacrebleu returns 100.00000000000004 for a perfect match."""
    return min(1.0, max(0.0, x))


register("bleu", BleuReward)
register("chrf", ChrfReward)
register("rouge", RougeReward)
register("exact_match", ExactMatchReward)
register("token_f1", TokenF1Reward)
register("numeric_match", NumericMatchReward)
