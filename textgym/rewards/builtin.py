"""Built-in rewards that read the completion itself: sentiment, tone, keywords, length, format, repetition.

Scores lie in [0, 1]; the repetition penalty lies in [-1, 0]. Each class documents the fields it reads.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from textgym.rewards.base import RewardInputError, is_missing, preview
from textgym.rewards.per_sample import Reward
from textgym.rewards.registry import register

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lowercased word tokens (unicode letters/digits runs); punctuation is dropped."""
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1)
def vader():
    """The shared VADER analyzer (its lexicon ships with vaderSentiment; loaded once per process)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def positivity(text: str) -> float:
    """VADER compound score mapped to [0, 1]: ``(compound + 1) / 2`` (0.5 is neutral)."""
    return (vader().polarity_scores(text)["compound"] + 1.0) / 2.0


def sentiment_word_share(text: str, extra: tuple[re.Pattern, ...] = ()) -> float:
    """The fraction of the words of ``text`` that carry sentiment in VADER's lexicon (or match one of ``extra``).

    A sentence has a few such words among function words and nouns ("The acting was wonderful and the music
    felt warm.": 2 of 9); a bare list of sentiment words ("great, wonderful, amazing") has nothing else (1.0).
    0 for text without words.
    """
    tokens = words(text)
    if not tokens:
        return 0.0
    lexicon = vader().lexicon
    charged = sum(1 for t in tokens if lexicon.get(t, 0.0) != 0.0 or any(p.fullmatch(t) for p in extra))
    return charged / len(tokens)


def salad_factor(share: float, max_share: float | None) -> float:
    """1 while ``share <= max_share``, then ``(max_share / share) ** 2``: a word list scores a quarter at most."""
    if max_share is None or share <= max_share:
        return 1.0
    return (max_share / share) ** 2


class SentimentReward(Reward):
    """VADER sentiment of the completion in [0, 1]: ``(compound + 1) / 2`` for ``target="positive"``, one minus
    that for ``"negative"``, times a word-list guard and a topic guard. Reads ``topics`` when records have it.

    The guard: when more than ``max_sentiment_word_share`` of the words carry sentiment (a list of adjectives
    such as "great, wonderful, amazing, perfect", which VADER scores 0.99), the score is multiplied by
    ``(max_share / share) ** 2`` (0.25 for a pure list), so RL cannot win with a word salad instead of a sentence.

    The topic guard (``off_topic_factor``, only for records with a ``topics`` field): a continuation that
    mentions none of the record's topics (the reviewed item and the aspects a reviewer comments on, e.g.
    ``["camera", "lens", "battery", ...]``) is multiplied by ``off_topic_factor``. Without it the reward's
    optimum is one positive sentence for every prompt ("The coffee was quite good." under a camera review);
    with it the best continuation depends on what the prompt reviews.

    Args:
        target: ``"positive"`` or ``"negative"``.
        include_prompt: score ``prompt + completion`` (a continuation that flips a negative prompt) instead of
            the completion alone.
        max_sentiment_word_share: the share of sentiment words above which the score is scaled down; None
            turns the guard off (plain VADER).
        off_topic_factor: the factor in [0, 1] for a completion that mentions none of ``topics`` (1 turns the
            guard off; records without a ``topics`` field are never scaled).
    """

    optional_fields = ("topics",)

    def __init__(self, target: str = "positive", include_prompt: bool = False,
                 max_sentiment_word_share: float | None = 0.5, off_topic_factor: float = 0.5):
        if target not in ("positive", "negative"):
            raise ValueError(f"target must be 'positive' or 'negative', got {target!r}.")
        if max_sentiment_word_share is not None and not 0.0 < max_sentiment_word_share <= 1.0:
            raise ValueError(f"max_sentiment_word_share must be in (0, 1] or None, got {max_sentiment_word_share!r}.")
        if not 0.0 <= off_topic_factor <= 1.0:
            raise ValueError(f"off_topic_factor must be in [0, 1], got {off_topic_factor!r}.")
        self.target, self.include_prompt = target, include_prompt
        self.max_sentiment_word_share = max_sentiment_word_share
        self.off_topic_factor = off_topic_factor
        vader()  # load the lexicon now, not inside the first rollout

    def score_sample(self, prompt: str, completion: str, topics: Any = None, **_: Any) -> float:
        p = positivity(prompt + completion if self.include_prompt else completion)
        score = p if self.target == "positive" else 1.0 - p
        score *= salad_factor(sentiment_word_share(completion), self.max_sentiment_word_share)
        if not is_missing(topics) and not mentions_any(completion, _as_phrases(topics, "topics", prompt)):
            score *= self.off_topic_factor
        return score


def _as_phrases(value: Any, field: str, prompt: str) -> list[str]:
    """A field holding one phrase or a list of phrases, as a list of non-empty strings (else a clear error)."""
    phrases = [value] if isinstance(value, str) else value
    if not isinstance(phrases, (list, tuple)) or not phrases or not all(isinstance(x, str) and x.strip() for x in phrases):
        raise RewardInputError(
            f"The `{field}` field must be a phrase or a non-empty list of phrases, got {preview(value)} for prompt "
            f"{preview(prompt)}."
        )
    return list(phrases)


def mentions_any(text: str, phrases: list[str]) -> bool:
    """Whether ``text`` contains one of ``phrases`` as whole words, word by word as :func:`same_word` compares
    them ("The first episodes" mentions "first episode", "the batteries" mentions "battery"; "screenplay" does
    not mention "screen")."""
    tokens = words(text)
    return any(phrase_occurs(tuple(words(p)), tokens) for p in phrases)


# Cue phrases per tone, matched case-insensitively on word boundaries ("'" variants included).
TONE_CUES: dict[str, tuple[str, ...]] = {
    "positive": (),
    "enthusiastic": (
        "!", "amazing", "awesome", "excited", "exciting", "fantastic", "great", "love", "wonderful", "incredible",
        "can't wait", "so happy", "thrilled", "absolutely", "brilliant",
    ),
    "polite": (
        "please", "thank you", "thanks", "would you", "could you", "kindly", "appreciate", "grateful",
        "may i", "if you don't mind", "happy to help", "you're welcome",
    ),
    "apologetic": (
        "sorry", "apologize", "apologise", "apologies", "my mistake", "my fault", "regret", "forgive",
        "pardon", "i was wrong", "inconvenience",
    ),
}
# Weight of VADER positivity in each tone's score; the rest is the cue score.
TONE_VADER_WEIGHT = {"positive": 1.0, "enthusiastic": 0.5, "polite": 0.3, "apologetic": 0.3}


def _cue_pattern(cue: str) -> re.Pattern:
    if not cue[0].isalnum():
        return re.compile(re.escape(cue))
    return re.compile(r"\b" + re.escape(cue).replace("'", "['\u2019]") + r"\b", re.IGNORECASE)


_TONE_PATTERNS = {tone: [_cue_pattern(c) for c in cues] for tone, cues in TONE_CUES.items()}
# one-word cues, matched against single lowercased words by the word-list guard
_CUE_WORDS = tuple(re.compile(re.escape(c)) for cues in TONE_CUES.values() for c in cues if re.fullmatch(r"\w+", c))


class ToneReward(Reward):
    """How well the completion matches the sample's ``tone``, in [0, 1]:

    ``score = w * positivity + (1 - w) * min(1, distinct_cues_found / cues_for_full_credit)`` with VADER
    ``positivity = (compound + 1) / 2`` and the cue phrases of :data:`TONE_CUES`:

    * ``positive``: VADER only (w = 1);
    * ``enthusiastic``: w = 0.5; cues: "!", amazing, great, love, can't wait...;
    * ``polite``: w = 0.3; cues: please, thank you, would you, could you, kindly, appreciate...;
    * ``apologetic``: w = 0.3; cues: sorry, apologize, my mistake, forgive, inconvenience...

    Reads the field ``tone`` (or uses the constructor's ``tone`` when the batch has none).

    Two guards keep a bare string of cues from winning: a reply shorter than ``min_words`` words is scaled by
    ``words / min_words`` ("!!!!!!" has none), and when more than ``max_cue_word_share`` of the words are cue or
    sentiment words ("Sorry! Apologies! Forgive me!") the score is multiplied by ``(max_share / share) ** 2``,
    as in :class:`SentimentReward`.

    Args:
        tone: the tone for samples without a ``tone`` field; None requires the field.
        cues_for_full_credit: how many distinct cues earn the full cue score.
        min_words: replies with fewer words are scaled down; 0 turns the guard off.
        max_cue_word_share: the share of cue and sentiment words above which the score is scaled down; None
            turns the guard off.
    """

    optional_fields = ("tone",)

    def __init__(self, tone: str | None = None, cues_for_full_credit: int = 2, min_words: int = 3,
                 max_cue_word_share: float | None = 0.5):
        if tone is not None and tone not in TONE_CUES:
            raise ValueError(f"tone must be one of {sorted(TONE_CUES)}, got {tone!r}.")
        if cues_for_full_credit < 1:
            raise ValueError(f"cues_for_full_credit must be >= 1, got {cues_for_full_credit!r}.")
        if not (isinstance(min_words, int) and min_words >= 0):
            raise ValueError(f"min_words must be an integer >= 0, got {min_words!r}.")
        if max_cue_word_share is not None and not 0.0 < max_cue_word_share <= 1.0:
            raise ValueError(f"max_cue_word_share must be in (0, 1] or None, got {max_cue_word_share!r}.")
        self.tone, self.cues_for_full_credit = tone, cues_for_full_credit
        self.min_words, self.max_cue_word_share = min_words, max_cue_word_share
        if tone is None:
            self.required_fields = ("tone",)
        vader()

    def score_sample(self, prompt: str, completion: str, tone: Any = None, **_: Any) -> float:
        tone = self.tone if is_missing(tone) else tone
        if tone not in TONE_CUES:
            raise RewardInputError(
                f"Reward 'tone' got tone {tone!r}; the known tones are {sorted(TONE_CUES)}. Fix the `tone` field of "
                f"your prompt records."
            )
        weight = TONE_VADER_WEIGHT[tone]
        score = weight * positivity(completion)
        if weight < 1.0:
            found = sum(1 for pattern in _TONE_PATTERNS[tone] if pattern.search(completion))
            score += (1.0 - weight) * min(1.0, found / self.cues_for_full_credit)
        n_words = len(words(completion))
        if n_words < self.min_words:
            score *= n_words / self.min_words
        share = sentiment_word_share(completion, extra=_CUE_WORDS)
        return score * salad_factor(share, self.max_cue_word_share)


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
