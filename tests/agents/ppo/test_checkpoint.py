"""Checkpoints: an interrupted-and-resumed run logs exactly the metrics of an uninterrupted one; a missing or
corrupt checkpoint is a clear error; no pickle."""

from __future__ import annotations

import json
import math
import os
import random

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import KVWriter, Logger

from agents.ppo import TokenPPO
from agents.ppo.checkpoint import CheckpointError
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")


class Rows(KVWriter):
    """An SB3 logger output that keeps every dumped row (one per iteration)."""

    def __init__(self):
        self.rows = []

    def write(self, key_values, key_excluded, step=0):
        self.rows.append({k: v for k, v in key_values.items() if "per_sec" not in k and k != "time/fps"})

    def close(self):
        pass


def attach(algo, rows):
    algo.set_logger(Logger(folder=None, output_formats=[rows]))
    return algo


def make(**kwargs):
    kwargs = {"learning_rate": 1e-3, "n_epochs": 2, "batch_size": 4, "seed": 0, "device": "cpu", **kwargs}
    env = kwargs.pop("env", None) or ToyVectorEnv(num_envs=8)
    return TokenPPO(kwargs.pop("policy", None) or tiny_model(0), env, **kwargs)


def assert_same_rows(a, b):
    assert len(a) == len(b) and len(a) > 0
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.keys() == y.keys(), i
        for key in x:
            same = x[key] == y[key] or (isinstance(x[key], float) and math.isnan(x[key]) and math.isnan(y[key]))
            assert same, f"iteration {i + 1}, {key}: {x[key]!r} != {y[key]!r}"


def scramble_global_rngs():
    """What a fresh process would have: other global random states than the ones the run left behind."""
    random.seed(12345)
    np.random.seed(12345)
    torch.manual_seed(12345)


CASES = {
    "gae": {},
    "adaptive-kl+nlpo+k3": {"kl_target": 0.5, "kl_estimator": "k3", "nlpo_top_p": 0.9, "nlpo_min_tokens": 2, "nlpo_update_interval": 1},
    "grpo": {"baseline": "grpo", "group_size": 2, "kl_coef": 0.0},
    "grpo+dapo-clip+dr-grpo": {"baseline": "grpo", "group_size": 2, "clip_range_high": 0.28, "scale_rewards": "none",
                               "normalize_advantage": False, "loss_aggregation": "constant"},
    "lora": {"lora": {"r": 4, "target_modules": ["c_attn"]}},
}


@pytest.mark.parametrize("case", CASES)
def test_resumed_run_logs_exactly_the_uninterrupted_metrics(case, tmp_path):
    kwargs, total = CASES[case], 120
    straight = Rows()
    algo = attach(make(**kwargs), straight)
    algo.learn(total)
    assert algo.iteration >= 4

    first = Rows()
    interrupted = attach(make(**kwargs), first)
    interrupted.learn(40)
    interrupted.save_checkpoint(str(tmp_path / "ckpt"))
    del interrupted
    scramble_global_rngs()
    resumed = TokenPPO.load_checkpoint(str(tmp_path / "ckpt"), env=ToyVectorEnv(num_envs=8), device="cpu")
    rest = Rows()
    attach(resumed, rest)
    resumed.learn(total - resumed.num_timesteps, reset_num_timesteps=False)

    assert 0 < len(first.rows) < len(straight.rows)
    assert_same_rows(straight.rows, first.rows + rest.rows)
    assert resumed.num_timesteps == algo.num_timesteps and resumed.iteration == algo.iteration
    for p, q in zip(algo.policy.state_dict().values(), resumed.policy.state_dict().values()):
        assert torch.equal(p, q)


def test_resume_on_a_textgym_env_id_restores_the_env(tmp_path):
    kwargs = {"policy": "default", "env": "textgym/Arithmetic-v0", "num_envs": 4, "batch_size": 4, "n_epochs": 1,
              "env_kwargs": {"max_new_tokens": 3}, "policy_kwargs": {"size": "tiny"}}
    straight = Rows()
    attach(make(**kwargs), straight).learn(30)
    first = Rows()
    interrupted = attach(make(**kwargs), first)
    interrupted.learn(10)
    interrupted.save_checkpoint(str(tmp_path / "ckpt"))
    scramble_global_rngs()
    resumed = TokenPPO.load_checkpoint(str(tmp_path / "ckpt"), device="cpu")  # env rebuilt from the saved id
    rest = Rows()
    attach(resumed, rest)
    resumed.learn(30 - resumed.num_timesteps, reset_num_timesteps=False)
    assert_same_rows(straight.rows, first.rows + rest.rows)


def test_same_seed_same_config_gives_identical_learn_metrics():
    a, b, c = Rows(), Rows(), Rows()
    attach(make(kl_target=0.5), a).learn(60)
    attach(make(kl_target=0.5), b).learn(60)
    attach(make(kl_target=0.5, seed=1), c).learn(60)
    assert_same_rows(a.rows, b.rows)
    assert a.rows[0]["rollout/ep_rew_mean"] != c.rows[0]["rollout/ep_rew_mean"] or a.rows != c.rows


def test_checkpoint_is_safetensors_and_json_and_replaced_atomically(tmp_path):
    algo = make()
    algo.learn(20)
    path = tmp_path / "ckpt"
    algo.save_checkpoint(str(path))
    algo.learn(20, reset_num_timesteps=False)
    algo.save_checkpoint(str(path))  # replaces the previous one
    names = {os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path) for f in fs}
    assert {"training_state.json", "training_state.safetensors", "token_ppo.json", "policy/config.json"} <= names
    assert not any(n.endswith((".pkl", ".pt", ".bin", ".zip")) for n in names)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]  # no temp or old directory left behind
    assert json.loads((path / "training_state.json").read_text())["iteration"] == algo.iteration
    # The checkpoint is also a TokenPPO.save() directory (for inference).
    assert TokenPPO.load(str(path), env=ToyVectorEnv(num_envs=8), device="cpu").num_timesteps == algo.num_timesteps
    # A crash between the two renames of a replacement leaves only path.old: it is found, with a warning.
    path.rename(tmp_path / "ckpt.old")
    with pytest.warns(UserWarning, match="crash while replacing"):
        assert TokenPPO.load_checkpoint(str(path), env=ToyVectorEnv(num_envs=8), device="cpu").iteration == algo.iteration


def test_preserved_rng_leaves_the_run_unchanged():
    a, b = make(), make()
    with b.state.preserved_rng():
        b.evaluate(num_episodes=8, deterministic=False)
        random.random(), np.random.rand(), torch.rand(1)
    for algo in (a, b):
        algo.collect_rollout()
    assert torch.equal(a.buffer.response_ids, b.buffer.response_ids)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    algo = make()
    algo.learn(20)
    path = tmp_path_factory.mktemp("ckpt") / "last"
    algo.save_checkpoint(str(path))
    return path


def corrupt_copy(src, dst, how):
    import shutil

    shutil.copytree(src, dst)
    if how == "truncated weights":
        f = dst / "policy" / "model.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif how == "truncated training state":
        f = dst / "training_state.safetensors"
        f.write_bytes(f.read_bytes()[:100])
    elif how == "no config.json":
        (dst / "policy" / "config.json").unlink()
    elif how == "garbage token_ppo.json":
        (dst / "token_ppo.json").write_text("{not json")
    elif how == "garbage training_state.json":
        (dst / "training_state.json").write_text("[1, 2")
    elif how == "no training state":
        (dst / "training_state.json").unlink()
    elif how == "wrong format":
        state = json.loads((dst / "training_state.json").read_text())
        (dst / "training_state.json").write_text(json.dumps({**state, "format": "something/else"}))
    elif how == "weights of another model":
        from safetensors.torch import load_file, save_file

        tensors = load_file(dst / "training_state.safetensors")
        tensors = {k: v for k, v in tensors.items() if not (k.startswith("policy/") and ".h.1." in k)}
        assert len(tensors) < len(load_file(dst / "training_state.safetensors"))
        save_file(tensors, dst / "training_state.safetensors")
    return dst


@pytest.mark.parametrize("how, match", [
    ("truncated weights", r"policy.*weights are corrupt or truncated"),
    ("truncated training state", r"training_state.safetensors.*corrupt or truncated"),
    ("no config.json", r"no config.json"),
    ("garbage token_ppo.json", r"token_ppo.json.*JSONDecodeError.*corrupt"),
    ("garbage training_state.json", r"training_state.json.*corrupt"),
    ("no training state", r"not a complete TokenPPO checkpoint.*training_state.json.*TokenPPO.load"),
    ("wrong format", r"format 'something/else'"),
    ("weights of another model", r"(?s)does not match.*Missing key"),
])
def test_corrupt_checkpoint_is_a_clear_error(checkpoint_dir, tmp_path, how, match):
    bad = corrupt_copy(checkpoint_dir, tmp_path / "bad", how)
    with pytest.raises((CheckpointError, OSError), match=match) as info:
        TokenPPO.load_checkpoint(str(bad), env=ToyVectorEnv(num_envs=8), device="cpu")
    assert str(bad) in str(info.value)


def test_missing_checkpoint_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(CheckpointError, match=r"No checkpoint at .*missing.*save_checkpoint"):
        TokenPPO.load_checkpoint(str(tmp_path / "missing"), env=ToyVectorEnv())


# ---------------------------------------------------------------------------------------------- checksums
def flip_bytes(path, count=500):
    """Invert ``count`` bytes in the middle of ``path``: the file still parses (tensor data, not the header)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["policy/model.safetensors", "training_state.safetensors", "token_ppo.json"])
def test_a_checkpoint_file_changed_on_disk_fails_its_checksum(checkpoint_dir, tmp_path, name):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint_dir, bad)
    if name.endswith(".json"):  # a hand edit that keeps valid JSON
        state = json.loads((bad / name).read_text())
        (bad / name).write_text(json.dumps({**state, "num_timesteps": state["num_timesteps"] + 1}))
    else:
        flip_bytes(bad / name)
    with pytest.raises(CheckpointError, match=rf"{name}.*sha256.*corrupt") as info:
        TokenPPO.load_checkpoint(str(bad), env=ToyVectorEnv(num_envs=8), device="cpu")
    assert str(bad) in str(info.value)
    assert "sha256" in json.loads((checkpoint_dir / "training_state.json").read_text())


def test_an_export_changed_on_disk_fails_its_checksum(tmp_path):
    algo = make()
    algo.save(str(tmp_path / "final"))
    TokenPPO.load(str(tmp_path / "final"), env=ToyVectorEnv(num_envs=8), device="cpu")  # intact: loads
    flip_bytes(tmp_path / "final" / "policy" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"policy/model.safetensors.*sha256"):
        TokenPPO.load(str(tmp_path / "final"), env=ToyVectorEnv(num_envs=8), device="cpu")


# ---------------------------------------------------------------------------------------------- hand-edited JSON
@pytest.mark.parametrize("name, key, value", [
    ("training_state.json", "num_timesteps", "12"),  # int("12") used to load it silently
    ("training_state.json", "first_reset", "yes"),
    ("training_state.json", "kl_controller", [1]),  # used to be a raw AttributeError
    ("training_state.json", "kl_controller.value", "x"),
    ("training_state.json", "sampler.top_k", "5"),  # used to load, then fail at the first sample
    ("training_state.json", "optimizer.param_groups", {"a": 1}),
    ("training_state.json", "rng.python", 3),
    ("token_ppo.json", "hyperparams", [1]),  # used to be a raw TypeError
    ("token_ppo.json", "kl_coef_now", None),  # used to be a raw TypeError
    ("token_ppo.json", "iteration", [1]),
    ("token_ppo.json", "hyperparams.n_epochs", "2"),
])
def test_a_hand_edited_json_value_of_the_wrong_type_names_the_file_and_the_key(checkpoint_dir, tmp_path, name, key, value):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint_dir, bad)
    state = json.loads((bad / name).read_text())
    *parents, last = key.split(".")
    node = state
    for parent in parents:
        node = node[parent]
    node[last] = value
    (bad / name).write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=rf"{name}': '{key}' must be .*, got") as info:
        TokenPPO.load_checkpoint(str(bad), env=ToyVectorEnv(num_envs=8), device="cpu")
    assert str(bad / name) in str(info.value)
    if name == "token_ppo.json":  # the same check guards an export's TokenPPO.load
        with pytest.raises(CheckpointError, match=rf"'{key}' must be"):
            TokenPPO.load(str(bad), env=ToyVectorEnv(num_envs=8), device="cpu")
