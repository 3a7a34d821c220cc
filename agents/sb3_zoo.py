"""Stock SB3 PPO built from textgym's rl-zoo3 hyperparameter file (``textgym/configs/rl_zoo3/ppo.yml``).

rl-zoo3 reads that file itself (``python -m rl_zoo3.train --algo ppo --env textgym/Sentiment-v0 -conf ...``);
:func:`make_zoo_ppo` does the same without rl-zoo3 installed, for scripts (``examples/sb3_ppo.py``,
``benchmarks/sb3_table.py``): the entry's policy and ``policy_kwargs``, its ``vec_env_wrapper`` list (the
KL-to-reference shaping, :class:`agents.sb3_reference.ReferenceKLReward`), ``n_envs`` and the PPO arguments.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import yaml

ZOO_FILE = Path(__file__).resolve().parents[1] / "textgym" / "configs" / "rl_zoo3" / "ppo.yml"
#: rl-zoo3 keys that are not PPO arguments
_ZOO_ONLY = ("policy", "policy_kwargs", "n_envs", "n_timesteps", "vec_env_wrapper", "env_wrapper", "normalize",
             "frame_stack", "callback")


def zoo_hyperparams(env_id: str, path: str | Path = ZOO_FILE) -> dict[str, Any]:
    """A copy of ``env_id``'s entry in the rl-zoo3 file (read with ``yaml.safe_load``, as rl-zoo3 reads it)."""
    with open(path) as f:
        table = yaml.safe_load(f)
    if env_id not in table:
        raise KeyError(f"{path} has no entry for {env_id!r}; it has {', '.join(table)}.")
    return copy.deepcopy(table[env_id])


def _import(qualified_name: str) -> Any:
    module, _, name = qualified_name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def policy_kwargs_of(hp: dict[str, Any]) -> dict[str, Any]:
    """The entry's ``policy_kwargs``: rl-zoo3 writes them as a ``"dict(...)"`` string and evals it."""
    kwargs = hp.get("policy_kwargs", {})
    if isinstance(kwargs, str):
        kwargs = eval(kwargs, {"__builtins__": {}, "dict": dict})  # the shipped file's own text, as rl-zoo3 does
    return dict(kwargs)


def wrappers_of(hp: dict[str, Any]) -> list[tuple[type, dict[str, Any]]]:
    """The entry's ``vec_env_wrapper`` (rl-zoo3's format: a name, or a list of names / ``{name: kwargs}``)."""
    spec = hp.get("vec_env_wrapper") or []
    if isinstance(spec, (str, dict)):
        spec = [spec]
    out = []
    for item in spec:
        if isinstance(item, str):
            out.append((_import(item), {}))
        else:
            ((name, kwargs),) = item.items()
            out.append((_import(name), dict(kwargs or {})))
    return out


def make_zoo_ppo(env_id: str, seed: int = 0, pretrained: Any = None, reference: Any = None,
                 n_envs: int | None = None, overrides: dict[str, Any] | None = None, path: str | Path = ZOO_FILE,
                 **ppo_kwargs: Any) -> tuple[Any, int]:
    """``(PPO model, n_timesteps)`` from ``env_id``'s rl-zoo3 entry.

    Args:
        env_id: a textgym id with an entry in the file.
        seed: PPO's and the vector env's seed.
        pretrained: replaces the entry's ``policy_kwargs["pretrained"]`` (e.g. an ``ActorCriticLM``, a run or
            model directory); also the KL reference unless ``reference`` is given.
        reference: replaces the ``reference`` of the entry's ``ReferenceKLReward``.
        n_envs: replaces the entry's ``n_envs``.
        overrides: replace entry keys (PPO arguments, ``policy_kwargs`` keys under ``"policy_kwargs"``).
        path: the rl-zoo3 file.
        ppo_kwargs: passed to ``PPO`` (``device``, ``verbose``, ...).
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecEnvWrapper

    from agents.sb3_reference import ReferenceKLReward

    hp = zoo_hyperparams(env_id, path)
    overrides = dict(overrides or {})
    policy_kwargs = {**policy_kwargs_of(hp), **overrides.pop("policy_kwargs", {})}
    hp.update(overrides)
    if pretrained is not None:
        policy_kwargs.pop("model", None)
        policy_kwargs["pretrained"] = pretrained
    venv = make_vec_env(env_id, n_envs=n_envs or int(hp.get("n_envs", 1)), seed=seed)
    for wrapper, kwargs in wrappers_of(hp):
        if wrapper is ReferenceKLReward and (reference is not None or pretrained is not None):
            kwargs["reference"] = reference if reference is not None else pretrained
        venv = wrapper(venv, **kwargs)
    policy = _import(hp["policy"]) if isinstance(hp["policy"], str) else hp["policy"]
    n_timesteps = int(hp.get("n_timesteps", 0))
    ppo_args = {k: v for k, v in hp.items() if k not in _ZOO_ONLY}
    model = PPO(policy, venv, policy_kwargs=policy_kwargs, seed=seed, **{**ppo_args, **ppo_kwargs})
    env = venv
    while isinstance(env, VecEnvWrapper):  # what the entry's AttachPolicy callback does when rl-zoo3 runs it
        if isinstance(env, ReferenceKLReward):
            env.attach(model.policy)
        env = env.venv
    return model, n_timesteps


def evaluate_sb3(model: Any, eval_env: Any, episodes: int, reference: Any = None, seed: int = 0) -> dict[str, dict]:
    """``{"greedy": metrics, "sampled": metrics}`` of an SB3 model with ``TransformerPolicy`` on a textgym vector
    env (``agents.commands.make_train_env(config, split="test")``): the project's held-out metrics
    (:func:`agents.commands.evaluate_greedy_and_sampled`: reward, distinct-2, distinct completions, self-BLEU,
    and with ``reference`` perplexity and KL under it), drawn with the policy's own sampling controls."""
    import torch

    from agents.commands import evaluate_greedy_and_sampled
    from agents.ppo.rollout import LogitsProcessor

    policy = model.policy
    algo = _PolicyAgent(policy.model, LogitsProcessor(temperature=policy.temperature, top_k=policy.top_k,
                                                      top_p=policy.top_p), torch.Generator().manual_seed(seed))
    return evaluate_greedy_and_sampled(algo, eval_env, episodes, reference)


class _PolicyAgent:
    """An SB3 policy's LM as :class:`agents.evaluation.TextAgent`: batches of episodes drawn with the policy's own
    sampling controls (what the project's evaluations need)."""

    def __init__(self, policy: Any, sampler: Any, generator: Any):
        self.policy, self.sampler, self.generator = policy, sampler, generator

    def generate(self, env: Any, prompt_indices: Any, deterministic: bool = False) -> Any:
        from agents.ppo.rollout import generate_episodes

        return generate_episodes(self.policy, env, self.sampler, prompt_indices=prompt_indices,
                                 generator=self.generator, deterministic=deterministic)
