"""Rewards: the protocol, a registry, weighted combination, strict validation, and the built-ins.

textgym calls a reward by keyword, exactly as TRL's ``GRPOTrainer`` does, so a TRL reward function plugs in
unchanged::

    reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **fields) -> list[float | None]

``fields`` are the per-sample fields of the prompt records (``references``, ``answer``, ``keywords``...), each a
list aligned with ``completions``; ``completion_ids`` are the completions' token ids (lists of ints) and
``trainer_state`` a :class:`RewardState` (``global_step``: the env's steps so far). A reward with ``**kwargs``
ignores what it does not use; one without receives only what it names (``def f(completions, answer)``); a
parameter no field provides is an error when the env is made. ``async def`` rewards are awaited; ``None`` means
"not applicable" in a combination, as in TRL. For chat-shaped inputs wrap the reward in :func:`conversational`::

    from textgym import rewards

    def brevity(completions, **kwargs):
        return [1.0 / (1 + len(c.split())) for c in completions]

    rewards.register("brevity", brevity)
    reward = rewards.make({"sentiment": 1.0, "brevity": 0.2})      # a CombinedReward
    total, components = rewards.score(reward, prompts, completions, fields={})

Built-ins (``list_rewards()``): sentiment, tone, keywords, length, format, format_or_length, repetition (in
:mod:`~textgym.rewards.builtin`); bleu, chrf, rouge, exact_match, token_f1, numeric_match (in
:mod:`~textgym.rewards.reference`); classifier (any local HF sequence classifier, :mod:`~textgym.rewards.learned`).
Plugins add more through the ``textgym.rewards`` entry-point group.
"""

from textgym.rewards.base import (
    RewardError,
    RewardFunction,
    RewardInputError,
    RewardState,
    RewardWarning,
)
from textgym.rewards.per_sample import Reward
from textgym.rewards.registry import list_rewards, load_entry_points, register, reward_name
from textgym.rewards.scoring import CombinedReward, check_fallback
from textgym.rewards.factory import check_reward_inputs, combine, make, score
from textgym.rewards.conversational import ConversationalReward, conversational
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
    "RewardState",
    "ConversationalReward",
    "conversational",
    "check_reward_inputs",
    "check_fallback",
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
