"""The one list of textgym environment ids.

Importing :mod:`textgym` imports this module, which registers every id with Gymnasium (Gymnasium 1.x has no
plugin entry points: a package registers its ids when it is imported, and ``gym.make("textgym:textgym/...")``
imports ``textgym`` first). Each id maps to a built-in task in :mod:`textgym.envs.tasks`, which holds its
prompts, reward and lengths; ``textgym.register_reward_env`` adds ids of your own at run time.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENTRY_POINT = "textgym.envs.text_env:TextGenerationEnv"
VECTOR_ENTRY_POINT = "textgym.envs.vector_env:TextGenerationVectorEnv"

#: env id -> built-in task name. The table in the README lists the same ids with their rewards.
BUILTIN_ENVS: dict[str, str] = {
    "textgym/Arithmetic-v0": "arithmetic",
    "textgym/Sentiment-v0": "sentiment",
    "textgym/Keywords-v0": "keywords",
    "textgym/Summarize-v0": "summarize",
    "textgym/Translate-v0": "translate",
    "textgym/QA-v0": "qa",
    "textgym/Dialogue-v0": "dialogue",
    "textgym/Format-v0": "format",
    # Multi-turn (textgym.envs.multi_turn): the env appends a tool's, a game's or a user's text after each turn.
    "textgym/Calculator-v0": "calculator",
    "textgym/GuessNumber-v0": "guess_number",
    "textgym/MultiTurnDialogue-v0": "multi_turn_dialogue",
}


def register_env(env_id: str, kwargs: dict[str, Any]) -> None:
    """Register one id with both the single-env and the natively batched vector-env entry points."""
    gym.register(
        id=env_id,
        entry_point=ENTRY_POINT,
        vector_entry_point=VECTOR_ENTRY_POINT,
        kwargs=kwargs,
    )


#: flat-observation id -> built-in task name: ``textgym/<Task>Flat-v0`` is ``textgym/<Task>-v0`` with
#: ``observation="flat"`` (one Box of ids + mask), for scripts that build their env with ``gym.make(id)`` alone
#: and expect a flat observation (CleanRL's ``ppo.py``).
FLAT_ENVS: dict[str, str] = {env_id.replace("-v0", "Flat-v0"): task for env_id, task in BUILTIN_ENVS.items()}


#: text-action id -> built-in task name: ``textgym/<Task>Text-v0`` is ``textgym/<Task>-v0`` seen at the completion
#: level (one action = one turn as a string; ``textgym.envs.text_actions.TextActionEnv``), for text-level clients.
TEXT_ENVS: dict[str, str] = {env_id.replace("-v0", "Text-v0"): task for env_id, task in BUILTIN_ENVS.items()}
TEXT_ENTRY_POINT = "textgym.envs.text_actions:make_text_action_env"


def register_builtin_envs() -> None:
    for env_id, task in BUILTIN_ENVS.items():
        if env_id not in gym.registry:
            register_env(env_id, {"task": task})
    for env_id, task in FLAT_ENVS.items():
        if env_id not in gym.registry:
            register_env(env_id, {"task": task, "observation": "flat"})
    for env_id, task in TEXT_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=TEXT_ENTRY_POINT, kwargs={"task": task})


register_builtin_envs()
