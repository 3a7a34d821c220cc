"""textgym/configs/rl_zoo3/ppo.yml: rl-zoo3 hyperparameters for every id, with TransformerPolicy as the policy."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

import textgym
from envs_registry import BUILTIN_ENVS, FLAT_ENVS

ROOT = Path(__file__).resolve().parents[2]
ZOO_FILE = ROOT / "textgym" / "configs" / "rl_zoo3" / "ppo.yml"


def zoo_hyperparams() -> dict:
    with open(ZOO_FILE) as f:
        return yaml.safe_load(f)  # rl-zoo3 reads it with safe_load too


def test_every_id_has_hyperparameters_with_transformer_policy():
    from agents.policies import TransformerPolicy

    table = zoo_hyperparams()
    assert set(table) == set(BUILTIN_ENVS) | set(FLAT_ENVS) and set(table) <= set(textgym.env_ids())
    for env_id, hp in table.items():
        module, _, name = hp["policy"].rpartition(".")
        assert getattr(importlib.import_module(module), name) is TransformerPolicy, env_id
        assert hp["batch_size"] <= hp["n_envs"] * hp["n_steps"] and hp["n_timesteps"] > 0


@pytest.mark.parametrize("env_id", ["textgym/Arithmetic-v0", "textgym/ArithmeticFlat-v0", "textgym/Keywords-v0"])
def test_zoo_hyperparameters_build_a_ppo_that_trains(env_id):
    """What rl-zoo3 does with an entry (agents.sb3_zoo.make_zoo_ppo), shrunk to a few steps; the tuned entries'
    warm start (a 3000-step supervised run) is replaced by a fresh tiny model, the untuned ones' size by tiny."""
    from agents.models import build_default_model
    from agents.sb3_reference import ReferenceKLReward
    from agents.sb3_zoo import make_zoo_ppo, zoo_hyperparams

    tuned = "pretrained" in zoo_hyperparams(env_id)["policy_kwargs"]
    model, n_timesteps = make_zoo_ppo(
        env_id, pretrained=build_default_model(size="tiny") if tuned else None, n_envs=2, device="cpu",
        overrides={"n_steps": 8, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {} if tuned else {"size": "tiny"}},
    )
    assert isinstance(model.env, ReferenceKLReward) == tuned and n_timesteps > 0
    if tuned:
        assert model.env.policy is model.policy
    model.learn(16)
    assert model.num_timesteps >= 16


def test_rl_zoo3_train_runs_on_a_textgym_id(tmp_path):
    pytest.importorskip("rl_zoo3")
    # Keywords: an untuned entry (the tuned ones start from a supervised warm start, minutes of CPU).
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "textgym/Keywords-v0",
           "--gym-packages", "textgym", "-conf", str(ZOO_FILE), "-n", "32", "-f", str(tmp_path / "logs"),
           "--eval-freq", "-1", "--device", "cpu",
           "-params", "n_envs:2", "n_steps:16", "batch_size:16", "policy_kwargs:dict(size='tiny')"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list((tmp_path / "logs" / "ppo").glob("textgym-Keywords-v0_*/textgym-Keywords-v0.zip"))
