"""textgym tasks for TRL: a task's prompts as a ``datasets.Dataset`` plus its reward functions, in one call.

::

    from trl import GRPOConfig, GRPOTrainer
    from textgym.integrations.trl import dataset_and_rewards

    train_dataset, reward_funcs = dataset_and_rewards("textgym/Arithmetic-v0", split="train")
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, train_dataset=train_dataset,
                          args=GRPOConfig(...), processing_class=tokenizer)

Needs ``pip install datasets`` (TRL brings it). Nothing here imports TRL itself: the reward functions only
follow TRL's calling convention (``reward_func(prompts=..., completions=..., completion_ids=...,
trainer_state=..., **dataset_columns)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class TRLRewardFunction:
    """One textgym reward (or one weighted component of a task's reward) as a TRL reward function.

    TRL calls it by keyword with the batch's ``prompts``, ``completions`` and ``completion_ids``, every dataset
    column and ``trainer_state``; it calls the textgym reward the way the env does (by keyword, on its own
    copies) and returns ``weight * score`` per completion, or ``None`` where the reward returned None (TRL
    leaves such a sample out of that function's part of the sum). Conversational prompts and completions (message
    lists) reach the reward as they are; textgym's built-ins score their text.

    Attributes:
        __name__: what TRL logs the scores under (``rewards/<name>/mean``): the component's name, with its weight
            when it is not 1 (``repetition*0.5``): the logged values are the weighted ones.
        reward: the textgym reward called.
        weight: the factor applied to its scores (the component's weight in the task's combination).
        field_names: the dataset columns passed on to the reward (TRL's other keyword arguments, such as
            ``log_metric``, are not).
        fallback: the env's ``reward_fallback``: None raises on a failing reward, a float replaces failed scores.
    """

    def __init__(self, reward: Any, name: str, weight: float, field_names: list[str], fallback: float | None):
        self.reward, self.name, self.weight = reward, name, float(weight)
        self.field_names, self.fallback = list(field_names), fallback
        self.__name__ = name if self.weight == 1.0 else f"{name}*{self.weight:g}"

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        completion_ids: list[list[int]] | None = None,
        trainer_state: Any = None,
        **columns: Any,
    ) -> list[float | None]:
        from textgym.rewards.scoring import evaluate_all

        prompts, completions = list(prompts), list(completions)
        inputs: dict[str, Any] = {"prompts": prompts, "completions": completions}
        if completion_ids is not None:
            inputs["completion_ids"] = [[int(i) for i in ids] for ids in completion_ids]
        if trainer_state is not None:
            inputs["trainer_state"] = trainer_state
        # A column the reward needs but TRL did not pass is a RewardInputError naming it (from the keyword call).
        inputs.update({k: list(columns[k]) for k in self.field_names if k in columns})
        values = evaluate_all([(self.name, self.reward)], inputs, self.fallback, allow_none=True)[self.name]
        return [None if math.isnan(v) else self.weight * float(v) for v in np.asarray(values, dtype=np.float64)]

    def __repr__(self) -> str:
        return f"TRLRewardFunction({self.__name__!r}, {self.reward!r})"


def dataset_and_rewards(
    env_id: str, split: str = "train", *, conversational: bool = False, **env_kwargs: Any
) -> tuple[Any, list[TRLRewardFunction]]:
    """A textgym env id's prompts as a ``datasets.Dataset`` and its reward as TRL reward functions.

    Args:
        env_id: a registered textgym id (``"textgym/Arithmetic-v0"``, or one from ``register_reward_env``).
        split: ``"train"`` or ``"test"``: which half of a built-in task's data.
        conversational: give each prompt as ``[{"role": "user", "content": text}]`` (TRL then applies the
            tokenizer's chat template and passes completions as message lists) instead of plain text.
        **env_kwargs: what ``gym.make(env_id, ...)`` would accept to override the id's defaults (``prompts``,
            ``reward``, ``reward_fallback``...). Token-layout arguments (``max_new_tokens``...) have no effect
            here: TRL's ``GRPOConfig`` sets the lengths.

    Returns:
        ``(dataset, reward_funcs)``: the dataset has a ``prompt`` column plus one column per record field the
        reward reads (``answer``, ``references``...; a ``completion`` demonstration is left out); the reward
        functions are one :class:`TRLRewardFunction` per component of the id's reward, each scaled by its
        weight, so TRL's default ``reward_weights`` (all 1) sum to the env's reward. Pass both to
        ``GRPOTrainer(reward_funcs=..., train_dataset=...)``.

    Raises:
        ValueError: ``env_id`` is not a textgym id.
        ImportError: ``datasets`` is not installed (``pip install datasets``, or ``pip install trl``).
    """
    import gymnasium as gym

    import envs_registry
    from textgym.envs.core import CONFIG_ARGS, resolve_config
    from textgym.rewards.scoring import CombinedReward
    from textgym.rewards.registry import reward_name

    try:
        from datasets import Dataset
    except ImportError as e:
        raise ImportError(
            "textgym.integrations.trl needs the `datasets` package: pip install datasets (TRL installs it)."
        ) from e
    if env_id not in gym.registry or gym.registry[env_id].entry_point != envs_registry.ENTRY_POINT:
        import textgym

        raise ValueError(f"{env_id!r} is not a registered textgym id; textgym ids: {', '.join(textgym.env_ids())}.")
    kwargs = {**gym.registry[env_id].kwargs, **env_kwargs, "split": split}
    config = {k: v for k, v in kwargs.items() if k in CONFIG_ARGS}
    unknown = {k: v for k, v in kwargs.items() if k not in CONFIG_ARGS and k != "render_mode"}
    cfg = resolve_config(**config, unknown_kwargs=unknown, known_kwargs=CONFIG_ARGS)
    if cfg.multi_turn is not None:
        raise ValueError(
            f"{env_id!r} is a multi-turn env: its reward comes from the env's replies turn by turn, which a dataset of "
            "prompts and a completion-level reward function cannot reproduce. Drive it turn by turn instead: "
            f"gym.make({env_id.replace('-v0', 'Text-v0')!r}) takes one turn as a string per step."
        )
    fields = list(cfg.prompt_source.field_names)
    rows = []
    for record in cfg.prompt_source:
        prompt = record["prompt"]
        rows.append({"prompt": [{"role": "user", "content": prompt}] if conversational else prompt,
                     **{k: record[k] for k in fields}})
    dataset = Dataset.from_list(rows)
    reward = cfg.reward
    if isinstance(reward, CombinedReward):
        parts = [(name, part, weight) for (name, part), weight in zip(reward.named_rewards, reward.weights)]
    else:
        parts = [(reward_name(reward), reward, 1.0)]
    funcs = [TRLRewardFunction(part, name, weight, fields, cfg.reward_fallback) for name, part, weight in parts]
    return dataset, funcs
