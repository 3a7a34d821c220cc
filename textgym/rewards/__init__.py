"""Rewards: the protocol, a registry, weighted combination, strict validation, and the built-ins.

A reward is ``reward(prompts, completions, **fields) -> list[float]``: batched, TRL's shape, so a TRL reward
function plugs in unchanged. ``fields`` are the per-sample fields of the prompt records (``references``,
``answer``, ``keywords``...), each a list aligned with ``prompts``; a reward ignores the ones it does not use::

    from textgym import rewards

    def brevity(prompts, completions, **kwargs):
        return [1.0 / (1 + len(c.split())) for c in completions]

    rewards.register("brevity", brevity)
    reward = rewards.make({"sentiment": 1.0, "brevity": 0.2})      # a CombinedReward
    total, components = rewards.score(reward, prompts, completions, fields={})

Built-ins (``list_rewards()``): sentiment, tone, keywords, length, format, format_or_length, repetition (in
:mod:`~textgym.rewards.builtin`); bleu, chrf, rouge, exact_match, token_f1, numeric_match (in
:mod:`~textgym.rewards.reference`); classifier (any local HF sequence classifier, :mod:`~textgym.rewards.learned`).
Plugins add more through the ``textgym.rewards`` entry-point group.
"""

from textgym.rewards.base import Reward, RewardError, RewardFunction, RewardInputError, RewardWarning
from textgym.rewards.registry import list_rewards, load_entry_points, make, register, reward_name
from textgym.rewards.scoring import score
from textgym.rewards.combine import CombinedReward, combine
from textgym.rewards.builtin import (
    FormatOrLengthReward,
    FormatReward,
    KeywordsReward,
    LengthReward,
    RepetitionPenalty,
    SentimentReward,
    ToneReward,
)
from textgym.rewards.reference import (
    BleuReward,
    ChrfReward,
    ExactMatchReward,
    NumericMatchReward,
    RougeReward,
    TokenF1Reward,
)
from textgym.rewards.learned import ClassifierReward

__all__ = [
    "RewardFunction",
    "Reward",
    "RewardError",
    "RewardInputError",
    "RewardWarning",
    "register",
    "make",
    "list_rewards",
    "load_entry_points",
    "reward_name",
    "score",
    "combine",
    "CombinedReward",
    "SentimentReward",
    "ToneReward",
    "KeywordsReward",
    "LengthReward",
    "FormatReward",
    "FormatOrLengthReward",
    "RepetitionPenalty",
    "BleuReward",
    "ChrfReward",
    "RougeReward",
    "ExactMatchReward",
    "TokenF1Reward",
    "NumericMatchReward",
    "ClassifierReward",
]
