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


@pytest.mark.parametrize("env_id", ["textgym/Arithmetic-v0", "textgym/ArithmeticFlat-v0"])
def test_zoo_hyperparameters_build_a_ppo_that_trains(env_id):
    """What rl-zoo3 does with an entry (minus its bookkeeping), shrunk to a few steps."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    hp = dict(zoo_hyperparams()[env_id])
    module, _, name = hp.pop("policy").rpartition(".")
    policy = getattr(importlib.import_module(module), name)
    policy_kwargs = {**eval(hp.pop("policy_kwargs")), "size": "tiny"}  # rl-zoo3 evals string kwargs
    for key in ("n_envs", "n_timesteps"):
        hp.pop(key)
    hp.update(n_steps=8, batch_size=16, n_epochs=1)
    model = PPO(policy, make_vec_env(env_id, n_envs=2), policy_kwargs=policy_kwargs, device="cpu", seed=0, **hp)
    model.learn(16)
    assert model.num_timesteps >= 16


def test_rl_zoo3_train_runs_on_a_textgym_id(tmp_path):
    pytest.importorskip("rl_zoo3")
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "textgym/Arithmetic-v0",
           "--gym-packages", "textgym", "-conf", str(ZOO_FILE), "-n", "32", "-f", str(tmp_path / "logs"),
           "--eval-freq", "-1", "--device", "cpu",
           "-params", "n_envs:2", "n_steps:16", "batch_size:16", "policy_kwargs:dict(size='tiny')"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list((tmp_path / "logs" / "ppo").glob("textgym-Arithmetic-v0_*/textgym-Arithmetic-v0.zip"))
