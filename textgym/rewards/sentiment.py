"""The sentiment and tone rewards (VADER positivity, tone cue phrases, the word-salad guard). Moved out of
``builtin.py`` unchanged; ``textgym.rewards.builtin`` re-exports every name."""

from __future__ import annotations

import functools
import re
from typing import Any

from textgym.rewards.base import RewardInputError, is_missing, preview
from textgym.rewards.per_sample import Reward
from textgym.rewards.registry import register
from textgym.rewards.words import mentions_any, words

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
