"""textgym.cli, the environment commands (envs, tokenizer train): they run without the trainers or torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from textgym.cli import main
from textgym.tokenizers import load_tokenizer


def test_envs_lists_every_builtin_id(capsys):
    from envs_registry import BUILTIN_ENVS

    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in BUILTIN_ENVS:
        assert env_id in out


def test_tokenizer_train_on_a_user_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the quick brown fox number {i} jumps over the lazy dog" for i in range(300)))
    assert main(["tokenizer", "train", str(corpus), "--output-dir", str(tmp_path / "tok"), "--vocab-size", "300"]) == 0
    tok = load_tokenizer(str(tmp_path / "tok"))
    assert tok.vocab_size == 300
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert hf.encode("the lazy dog", add_special_tokens=False) == tok.encode("the lazy dog")
    with pytest.raises(SystemExit, match="does not exist"):
        main(["tokenizer", "train", str(tmp_path / "missing.txt"), "--output-dir", str(tmp_path / "x")])


def test_the_env_commands_import_neither_the_trainers_nor_torch():
    code = ("import sys, textgym.cli; textgym.cli.main(['envs']); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.split('.')[0] == 'agents'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_training_commands_are_not_here_and_the_error_says_where_they_are(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train"])
    assert exit_info.value.code == 2
    assert "python -m agents.cli train" in capsys.readouterr().err
