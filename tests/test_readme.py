"""The README's Python snippets run as written, with training lengths shortened so the suite stays fast."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def shorten(code: str) -> str:
    code = re.sub(r"\.learn\((total_timesteps=)?[\d_]+", r".learn(\g<1>64", code)
    code = code.replace("num_envs=64", "num_envs=4").replace('"runs/sentiment"', 'str(tmp_dir / "sentiment")')
    return code.replace("n_steps=64, batch_size=128", "n_steps=8, batch_size=16")


def test_readme_has_python_snippets():
    assert len(python_blocks()) >= 4


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = shorten(python_blocks()[index])
    exec(compile(code, f"README.md python block {index}", "exec"), {"tmp_dir": tmp_path, "__name__": "readme"})
