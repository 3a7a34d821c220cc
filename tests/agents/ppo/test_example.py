"""The arithmetic example runs end to end in its --quick mode (the real figures: see the example's docstring)."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "arithmetic_tokenppo.py"


def test_arithmetic_example_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("arithmetic_tokenppo", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--model-size", "tiny", "--output", str(tmp_path / "run")])
    assert 0.0 <= result["before"] <= 1.0 and 0.0 <= result["after"] <= 1.0
    out = capsys.readouterr().out
    assert "test accuracy: before PPO" in out and (tmp_path / "run" / "token_ppo.json").exists()


def test_example_rejects_unknown_arguments():
    spec = importlib.util.spec_from_file_location("arithmetic_tokenppo", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.parse_args(["--iterations", "x"])
