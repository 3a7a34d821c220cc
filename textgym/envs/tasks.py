"""The built-in tasks: prompts, reward and lengths behind each registered id (the ids: ``envs_registry.py``).

Every task ships data that textgym generates itself (:mod:`textgym.data`), so every id works offline; every
field can be overridden per env (``gym.make("textgym/QA-v0", prompts="my.jsonl", reward="exact_match")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Task:
    """One built-in task.

    Attributes:
        name: short name (``"sentiment"``); also the name of its data in :mod:`textgym.data`.
        summary: one line for ``textgym envs`` and the README table.
        reward: reward spec passed to :func:`textgym.rewards.make` (name, callable or ``{name: weight}``).
        reward_doc: what the reward measures and its range.
        fields: the prompt record fields the reward reads.
        max_prompt_tokens: ``P``, prompt slots in the observation.
        max_new_tokens: ``T``, the new-token limit (truncation).
        allowed_tokens: optional ``tokenizer -> token ids``, the task's natural alphabet, applied with
            ``restrict_actions=True`` (EOS is always added).
        multi_turn: optional zero-argument factory of a :class:`~textgym.envs.multi_turn.MultiTurnTask`: the env
            then runs multi-turn episodes (``max_new_tokens`` is the whole conversation's token budget) and
            ``reward`` may be ``None`` (the task rewards its turns).
    """

    name: str
    summary: str
    reward: Any
    reward_doc: str
    fields: tuple[str, ...] = ()
    max_prompt_tokens: int = 64
    max_new_tokens: int = 24
    allowed_tokens: Callable[[Any], np.ndarray] | None = None
    multi_turn: Callable[[], Any] | None = None

    def load_prompts(self, split: str = "train") -> list[dict]:
        from textgym.data import load_task_data

        return load_task_data(self.name, split=split)


def alphabet_tokens(alphabet: str) -> Callable[[Any], np.ndarray]:
    """``tokenizer -> ids`` of the tokens whose text is non-empty and made only of ``alphabet``'s characters
    (a task's ``allowed_tokens``; special tokens decode to "" and are left out, EOS is added by the env)."""
    characters = frozenset(alphabet)

    def allowed(tokenizer: Any) -> np.ndarray:
        texts = tokenizer.batch_decode([[i] for i in range(tokenizer.vocab_size)], skip_special_tokens=True)
        return np.asarray([i for i, text in enumerate(texts) if text and set(text) <= characters], dtype=np.int64)

    return allowed


#: The natural alphabets (``gym.make(id, restrict_actions=True)``): an Arithmetic answer is a (signed) number,
#: a Format answer is words, commas and periods (its data has no digits or other punctuation).
ARITHMETIC_ALPHABET = "0123456789- "
FORMAT_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,."


def _calculator():
    from textgym.envs.multi_turn_tasks import CalculatorTask

    return CalculatorTask()


def _guess_number():
    from textgym.envs.multi_turn_tasks import GuessNumberTask

    return GuessNumberTask()


def _scripted_user():
    from textgym.envs.multi_turn_tasks import ScriptedUserTask

    return ScriptedUserTask()


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            name="arithmetic",
            summary="Answer small arithmetic problems; verifiable numeric reward.",
            reward="numeric_match",
            reward_doc="1 if the first number in the completion equals `answer`, else 0.",
            fields=("answer",),
            max_prompt_tokens=24,
            max_new_tokens=6,
            allowed_tokens=alphabet_tokens(ARITHMETIC_ALPHABET),
        ),
        Task(
            name="sentiment",
            summary="Continue a review positively (RL4LMs' IMDB task shape); VADER reward with a repetition penalty.",
            reward={"sentiment": 1.0, "repetition": 1.0},
            reward_doc="VADER positivity in [0, 1], halved when the completion mentions none of `topics` (the "
            "item and its aspects), plus a repeated-bigram penalty in [-1, 0].",
            fields=("topics",),
            max_prompt_tokens=32,
            max_new_tokens=20,
        ),
        Task(
            name="keywords",
            summary="Write a sentence that uses the given concepts (CommonGen's shape).",
            reward={"keywords": 1.0, "repetition": 0.5},
            reward_doc="Fraction of `keywords` used in [0, 1] plus half a repeated-bigram penalty.",
            fields=("keywords", "references"),
            max_prompt_tokens=32,
            max_new_tokens=24,
        ),
        Task(
            name="summarize",
            summary="Summarize a short article in one sentence; ROUGE-L reward.",
            reward={"rouge": 1.0, "repetition": 0.5},
            reward_doc="ROUGE-L F-measure against `references`, in [0, 1], plus half a repeated-bigram penalty (a "
                       "summary written twice scores 0.67 ROUGE-L alone).",
            fields=("references",),
            max_prompt_tokens=128,
            max_new_tokens=32,
        ),
        Task(
            name="translate",
            summary="Translate simple English sentences to French; BLEU + chrF reward.",
            reward={"bleu": 0.5, "chrf": 0.5, "repetition": 0.5},
            reward_doc="Mean of sentence BLEU and chrF against `references`, in [0, 1], plus half a repeated-bigram "
                       "penalty (a translation written twice scores 0.61 BLEU+chrF alone).",
            fields=("references",),
            max_prompt_tokens=48,
            max_new_tokens=24,
        ),
        Task(
            name="qa",
            summary="Answer a question from a short passage; SQuAD token-F1 reward.",
            reward="token_f1",
            reward_doc="SQuAD token F1 of the completion against `answer`, in [0, 1].",
            fields=("answer", "references", "qtype"),
            max_prompt_tokens=128,
            max_new_tokens=12,
        ),
        Task(
            name="dialogue",
            summary="Reply to a message in a target tone (polite, apologetic, enthusiastic, positive).",
            reward={"tone": 1.0, "repetition": 0.5},
            reward_doc="Tone score in [0, 1] for the sample's `tone` plus half a repeated-bigram penalty.",
            fields=("tone", "references"),
            max_prompt_tokens=48,
            max_new_tokens=24,
        ),
        Task(
            name="format",
            summary="Follow a length or structure instruction (exact word counts, comma-separated lists).",
            reward={"format_or_length": 1.0, "repetition": 1.0},
            reward_doc="1 if the completion matches the sample's `pattern` and hits `target_words` (distinct items for "
                       "a list), decaying with distance; plus a repeated-bigram penalty in [-1, 0].",
            fields=("target_words", "pattern", "kind"),
            max_prompt_tokens=32,
            max_new_tokens=20,
            allowed_tokens=alphabet_tokens(FORMAT_ALPHABET),
        ),
        # Multi-turn tasks (textgym/envs/multi_turn_tasks.py): the task rewards its turns, reward=None.
        Task(
            name="calculator",
            summary="Multi-turn: multi-digit products and chains with a <calc> tool the env evaluates.",
            reward=None,
            reward_doc="1 for the right final answer, -0.02 per <calc> call (per-turn, on the call's last token).",
            fields=("answer", "expression", "operands"),
            max_prompt_tokens=48,
            max_new_tokens=64,
            multi_turn=_calculator,
        ),
        Task(
            name="guess_number",
            summary="Multi-turn: find a hidden number from higher/lower feedback in few guesses.",
            reward=None,
            reward_doc="1 - 0.1 x (guesses - 1) (at least 0.1) when found; 0 after 10 misses or the budget.",
            fields=("low", "high", "target"),
            max_prompt_tokens=32,
            max_new_tokens=96,
            multi_turn=_guess_number,
        ),
        Task(
            name="multi_turn_dialogue",
            summary="Multi-turn: a scripted user with a goal (book a table, return an item) answers the agent.",
            reward=None,
            reward_doc="1 for a confirmation naming the whole goal, +0.2 if polite, -0.1 per extra turn, -0.01 per "
                       "word beyond 15 a turn; 0 if not reached in 6 turns.",
            fields=("kind", "goal", "known"),
            max_prompt_tokens=48,
            max_new_tokens=96,
            multi_turn=_scripted_user,
        ),
    )
}


def get_task(task: str | Task) -> Task:
    """Look a task up by name (``"qa"``) or env id (``"textgym/QA-v0"``); a clear error lists the choices."""
    from envs_registry import BUILTIN_ENVS, FLAT_ENVS

    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        name = BUILTIN_ENVS.get(task, FLAT_ENVS.get(task, task)).lower()
        if name in TASKS:
            return TASKS[name]
    raise ValueError(f"Unknown textgym task {task!r}. Built-in tasks: {', '.join(TASKS)}.")
