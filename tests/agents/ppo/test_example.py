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


MULTI_TURN_EXAMPLE = EXAMPLE.with_name("multi_turn_tokenppo.py")


@pytest.mark.parametrize("env_id", ["textgym/Calculator-v0", "textgym/GuessNumber-v0"])
def test_multi_turn_example_quick(env_id, capsys):
    spec = importlib.util.spec_from_file_location("multi_turn_tokenppo", MULTI_TURN_EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--env", env_id, "--threads", "1"])
    assert all(0.0 <= result[k] <= 1.0 or k == "ppo_s" for k in result)
    assert f"{env_id} test reward: greedy" in capsys.readouterr().out
