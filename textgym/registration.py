"""Turn a reward function (plus prompts) into a new Gymnasium id in one call."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

import envs_registry


def register_reward_env(
    env_id: str,
    reward: Any,
    prompts: Any = None,
    *,
    task: str | None = None,
    conversational: bool = False,
    overwrite: bool = False,
    **env_kwargs: Any,
) -> str:
    """Register ``env_id`` as a text-generation env scored by ``reward``; ``gym.make`` and ``gym.make_vec`` accept it.

    Args:
        env_id: a Gymnasium id such as ``"mytasks/Polite-v0"``.
        reward: a reward function, called by keyword as TRL calls it, so TRL reward functions plug in unchanged:
            ``reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **record_fields)``
            (``def f(completions, **kwargs)`` is enough; a parameter named after a record key gets that key's
            values; ``trainer_state`` is a :class:`~textgym.rewards.RewardState`); a registered reward name; or
            ``{reward: weight}``. See :mod:`textgym.rewards`.
        prompts: the prompts: a list of dicts with a ``"prompt"`` key, a ``.jsonl`` path, a ``datasets.Dataset``
            or a built-in task name. May be omitted when ``task`` gives them.
        task: a built-in task whose prompts and lengths are the defaults (e.g. reuse Sentiment's prompts
            with your own reward).
        conversational: pass the reward chat-shaped inputs, as TRL does for a conversational dataset: each
            prompt as ``[{"role": "user", "content": prompt}]`` and each completion as
            ``[{"role": "assistant", "content": text}]`` (see :func:`textgym.rewards.conversational`).
        overwrite: replace an id that is already registered (otherwise that is an error).
        **env_kwargs: any other :class:`~textgym.envs.text_env.TextGenerationEnv` argument
            (``max_new_tokens``, ``tokenizer``, ``step_reward``...).

    Returns:
        ``env_id``.

    The env is built once here so that a bad reward or bad prompts fail now, at the line that registered
    them, not later inside ``gym.make`` (a reward parameter that no record key provides, a record key that
    collides with ``prompts``/``completions``/``completion_ids``/``trainer_state``). Example::

        def brevity(completions, **kwargs):
            return [1.0 / (1 + len(c.split())) for c in completions]

        textgym.register_reward_env("mytasks/Brief-v0", brevity, prompts=[{"prompt": "Describe the sea:"}])
        env = gym.make("mytasks/Brief-v0")
    """
    from textgym.envs.text_env import TextGenerationEnv

    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id must be a non-empty string such as 'mytasks/Polite-v0', got {env_id!r}.")
    if env_id in gym.registry:
        if not overwrite:
            raise ValueError(f"{env_id!r} is already registered; pick another id or pass overwrite=True.")
        del gym.registry[env_id]
    if prompts is None and task is None:
        raise ValueError("register_reward_env needs prompts=... (or task=... to reuse a built-in task's prompts).")
    if not isinstance(conversational, bool):
        raise TypeError(f"conversational must be True or False, got {conversational!r}.")
    if conversational:
        from textgym.rewards import conversational as as_conversational

        reward = as_conversational(reward)
    kwargs = dict(env_kwargs, reward=reward)
    if prompts is not None:
        kwargs["prompts"] = prompts
    if task is not None:
        kwargs["task"] = task
    TextGenerationEnv(**kwargs).close()  # validate now; raises with the cause and the fix
    envs_registry.register_env(env_id, kwargs)
    return env_id
