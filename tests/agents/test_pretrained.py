"""A warm-started TransformerPolicy in one argument: a model directory, a run directory, or a shipped warm start."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401  (registers the ids)
from agents.models import build_default_model
from agents.policies import TransformerPolicy
from agents.pretrained import resolve_model
from textgym.config import CONFIG_DIR

pytestmark = pytest.mark.usefixtures("single_thread")

ENV_ID = "textgym/Arithmetic-v0"


def same_weights(a, b) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def saved(tmp_path, name, seed):
    model = build_default_model(size="tiny", seed=seed)
    model.save_pretrained(tmp_path / name)
    return model


def test_policy_kwargs_pretrained_loads_a_model_directory_into_stock_ppo(tmp_path):
    warm = saved(tmp_path, "warm", seed=5)
    model = PPO(TransformerPolicy, make_vec_env(ENV_ID, n_envs=2), n_steps=8, batch_size=16, device="cpu",
                policy_kwargs={"pretrained": str(tmp_path / "warm")})
    assert same_weights(model.policy.model, warm)
    assert not same_weights(build_default_model(size="tiny", seed=6), warm)  # the comparison can fail


def test_a_run_directory_gives_its_final_policy_and_its_reference(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("env: textgym/Arithmetic-v0\n")
    (run / "final").mkdir()
    reference = saved(run, "reference", seed=1)
    assert same_weights(resolve_model(run), reference)  # not finished yet: the warm start
    final = saved(run / "final", "policy", seed=2)
    assert same_weights(resolve_model(run), final)
    assert same_weights(resolve_model(run, role="reference"), reference)
    env = gym.make(ENV_ID)
    policy = TransformerPolicy(env.observation_space, env.action_space, lambda _: 1e-4, model=str(run))
    assert same_weights(policy.model, final)


def test_a_shipped_config_warm_start_is_computed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTGYM_CACHE", str(tmp_path / "cache"))
    config = yaml.safe_load(open(CONFIG_DIR / "arithmetic.yaml"))
    config["sft"]["steps"] = 2
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(config))
    first = resolve_model(f"warm-start:{path}")
    assert any((tmp_path / "cache" / "warm_start").iterdir())
    assert same_weights(resolve_model(f"warm-start:{path}"), first)
    assert not same_weights(build_default_model(size="tiny", seed=0), first)  # it did train


def test_reference_role_copies_a_model_object():
    model = build_default_model(size="tiny")
    assert resolve_model(model) is model and resolve_model(model, role="reference") is not model


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pretrained": "/no/such/dir"}, FileNotFoundError, "not a local directory"),
        ({"pretrained": "warm-start:"}, ValueError, "needs a config"),
        ({"pretrained": "x", "model": "y"}, ValueError, "not both"),
        ({"pretrainde": "x"}, TypeError, "did you mean 'pretrained'"),
    ],
)
def test_bad_pretrained_arguments_raise(kwargs, error, match):
    env = gym.make(ENV_ID)
    with pytest.raises(error, match=match):
        TransformerPolicy(env.observation_space, env.action_space, lambda _: 1e-4, **kwargs)


def test_a_run_directory_without_a_model_says_why(tmp_path):
    (tmp_path / "config.yaml").write_text("env: textgym/Arithmetic-v0\n")
    with pytest.raises(FileNotFoundError, match="reference/"):
        resolve_model(tmp_path)
