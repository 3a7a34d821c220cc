"""The task side of a multi-turn episode: :class:`MultiTurnTask` and the :class:`Turn` it returns.

A multi-turn textgym env is still a token-level MDP (one action = one token). What a task adds is what happens
when an agent *turn* ends: the env hands the decoded turn to :meth:`MultiTurnTask.turn`, which answers with the
env's text (a tool's output, a user's reply, a game's feedback), a reward for the turn and whether the episode
is over. The env tokenizes that text, appends it to the conversation (marked 0 in the observation's
``agent_mask``) and the agent goes on writing after it.

Write your own task by subclassing :class:`MultiTurnTask` (or any object with the same methods)::

    class Echo(MultiTurnTask):
        stop_sequences = ("?",)                      # a turn also ends when the agent writes "?"

        def start(self, record):                     # one fresh state per episode
            return {"turns": 0, "target": record["target"]}

        def turn(self, state, agent_text):
            state["turns"] += 1
            if state["target"] in agent_text:
                return Turn(reward=1.0, done=True)
            return Turn(env_text=f"\\nUser: say {state['target']}\\nAgent:", reward=-0.1)

    env = textgym.TextGenerationEnv(prompts=[{"prompt": "Agent:", "target": "hi"}], multi_turn=Echo(),
                                    max_new_tokens=64)

``max_new_tokens`` is then the episode's total token budget after the prompt (agent and env tokens together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class Turn:
    """What a task answers to one agent turn.

    Attributes:
        env_text: text the env appends after the agent's turn (ignored when ``done``); ``""`` appends nothing
            and lets the agent write its next turn straight away.
        reward: reward of this turn, given on the step whose token ended the turn.
        done: the episode is over (``terminated``).
        info: extra entries for the step's info dict (e.g. ``{"solved": True}``); keys must be strings.
    """

    env_text: str = ""
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class MultiTurnTask:
    """The protocol a multi-turn task follows (subclass it, or duck-type the same three methods).

    Attributes:
        stop_sequences: strings that end an agent turn as soon as the decoded turn contains one (for example
            ``"</calc>"``, the end of a tool call). A turn always ends at the tokenizer's EOS token too.
    """

    stop_sequences: Sequence[str] = ()

    def start(self, record: dict[str, Any]) -> Any:
        """A fresh per-episode state for the prompt record ``record`` (its ``prompt`` and other fields).

        Called once per episode, at reset; the env passes the state back to :meth:`turn` and :meth:`budget_end`.
        The default is a copy of the record.
        """
        return dict(record)

    def turn(self, state: Any, agent_text: str) -> Turn:
        """React to one finished agent turn.

        Args:
            state: this episode's state (from :meth:`start`; mutate it freely).
            agent_text: the agent's turn as text: everything it wrote since the env last spoke, stop sequence
                included, the EOS token left out.

        Returns:
            A :class:`Turn`: the env's text to append, the turn's reward and whether the episode ends.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement turn(state, agent_text) -> Turn.")

    def budget_end(self, state: Any, agent_text: str) -> float:
        """Reward when the token budget runs out before the task ended the episode (``truncated``).

        Args:
            state: this episode's state.
            agent_text: the unfinished agent turn (``""`` when the budget ran out inside the env's own text).

        The default is 0.
        """
        return 0.0


def check_multi_turn(task: Any) -> Any:
    """Validate a multi-turn task object at construction (errors name the missing piece and the fix)."""
    missing = [name for name in ("start", "turn") if not callable(getattr(task, name, None))]
    if missing:
        raise TypeError(
            f"multi_turn must be a MultiTurnTask (textgym.envs.multi_turn): an object with start(record) -> state and "
            f"turn(state, agent_text) -> Turn; {type(task).__name__} lacks {', '.join(missing)}."
        )
    stops = getattr(task, "stop_sequences", ())
    if isinstance(stops, str) or not all(isinstance(s, str) and s for s in stops):
        raise TypeError(
            f"{type(task).__name__}.stop_sequences must be a tuple of non-empty strings (e.g. ('</calc>',)), got {stops!r}."
        )
    return task


def check_turn(task: Any, result: Any) -> Turn:
    """``result`` of ``task.turn(...)`` as a :class:`Turn`, or a clear error."""
    if isinstance(result, Turn):
        turn = result
    elif isinstance(result, tuple) and len(result) == 3:  # (env_text, reward, done), the short form
        turn = Turn(*result)
    else:
        raise TypeError(
            f"{type(task).__name__}.turn must return a textgym Turn(env_text, reward, done) or a tuple "
            f"(env_text, reward, done); got {result!r:.100}."
        )
    if not isinstance(turn.env_text, str):
        raise TypeError(f"{type(task).__name__}.turn returned env_text={turn.env_text!r:.60}; it must be a str.")
    try:
        reward = float(turn.reward)
    except (TypeError, ValueError):
        reward = float("nan")
    if reward != reward or reward in (float("inf"), float("-inf")):
        raise ValueError(f"{type(task).__name__}.turn returned reward={turn.reward!r}; it must be a finite number.")
    if not isinstance(turn.info, dict) or not all(isinstance(k, str) for k in turn.info):
        raise TypeError(f"{type(task).__name__}.turn returned info={turn.info!r:.60}; it must be a dict with str keys.")
    return Turn(turn.env_text, reward, bool(turn.done), turn.info)
