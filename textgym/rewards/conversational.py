"""``conversational(reward)``: a reward written for chat data (message lists), as TRL passes a chat dataset."""

from __future__ import annotations

from typing import Any, Sequence

from textgym.rewards.base import is_conversation
from textgym.rewards.calling import call_reward
from textgym.rewards.factory import make
from textgym.rewards.registry import reward_name


class ConversationalReward:
    """Wraps a reward written for chat data: it receives prompts and completions as message lists.

    textgym's envs generate plain text; TRL passes a chat dataset's prompts as ``[{"role": "user", "content": ...}]``
    lists and its completions as ``[{"role": "assistant", "content": ...}]``. This wrapper gives a reward written
    for the latter exactly that shape: each text prompt becomes ``[{"role": "user", "content": prompt}]`` (a prompt
    that already is a message list is kept) and each completion ``[{"role": "assistant", "content": text}]``.
    Everything else (``completion_ids``, ``trainer_state``, the record fields) passes through unchanged. Build it
    with :func:`conversational`.

    Attributes:
        textgym_inner_reward: the wrapped reward (checked against the records in its place).
    """

    def __init__(self, reward: Any, name: str):
        self.textgym_inner_reward = reward
        self._textgym_reward_name = name

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **inputs: Any) -> Any:
        chat = {
            "prompts": [p if is_conversation(p) else [{"role": "user", "content": p}] for p in prompts],
            "completions": [c if is_conversation(c) else [{"role": "assistant", "content": c}] for c in completions],
            **inputs,
        }
        return call_reward(self.textgym_inner_reward, self._textgym_reward_name, chat)

    def __repr__(self) -> str:
        return f"conversational({self.textgym_inner_reward!r})"


def conversational(reward: Any) -> ConversationalReward:
    """``reward`` (anything :func:`textgym.rewards.make` accepts) fed chat-shaped prompts and completions.

    Example::

        def polite(completions, **kwargs):  # TRL's conversational shape
            return [float("please" in c[0]["content"]) for c in completions]

        env = gym.make("textgym/Dialogue-v0", reward=textgym.rewards.conversational(polite))
    """
    made = make(reward)
    return ConversationalReward(made, reward_name(made))
