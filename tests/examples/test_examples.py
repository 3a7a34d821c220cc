"""Every example runs as written, shortened by its own arguments (not by a copy)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sb3_ppo_example_trains_saves_and_reloads(tmp_path):
    from agents.models import build_default_model

    build_default_model(size="tiny").save_pretrained(tmp_path / "warm")  # stands in for the 300-step warm start
    result = load("sb3_ppo").main(["--pretrained", str(tmp_path / "warm"), "--timesteps", "64", "--n-envs", "2",
                                   "--eval-episodes", "4"])
    assert result["reload_matches"] and result["timesteps"] >= 64
    assert set(result["after"]) == {"greedy", "sampled"} and "distinct_2" in result["after"]["sampled"]


def test_custom_reward_example_registers_and_trains():
    result = load("custom_reward").main(["--iterations", "1", "--num-envs", "8"])
    assert 0.0 <= result["after"] <= 1.0


def test_local_hf_model_example_loads_trains_and_exports():
    result = load("local_hf_model").main(["--iterations", "1", "--num-envs", "4"])
    assert result["timesteps"] > 0 and result["text"].startswith("Review: The film was")


def test_evaluate_run_example(tmp_path, monkeypatch):
    from agents.cli import main

    monkeypatch.setenv("TEXTGYM_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    main(["train", "model_size=tiny", "num_envs=4", "total_timesteps=40", "eval_episodes=4", "sft.steps=1",
          "sft.batch_size=4", "--output-dir", str(run), "--no-progress"])
    result = load("evaluate_run").main([str(run), "--episodes", "4"])
    assert "perplexity_under_reference" in result and result["num_episodes"] == 4
