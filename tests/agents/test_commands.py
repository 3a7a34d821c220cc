"""``textgym train``'s run directory: finished runs, interrupted ones, locks and existing directories."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main

TINY = ["model_size=tiny", "num_envs=8", "total_timesteps=200", "eval_episodes=8", "sft.steps=3", "sft.batch_size=8",
        "checkpoint_every=1"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TEXTGYM_CACHE", str(tmp_path_factory.getbasetemp() / "commands-cache"))


def digest(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (a run's final/ or checkpoint), by relative path."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def timesteps(directory: Path) -> int:
    return json.loads((directory / "token_ppo.json").read_text())["num_timesteps"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    import os

    # The same warm-start cache as the tests' runs (private_cache): they compare weights with this run's.
    before = os.environ.get("TEXTGYM_CACHE")
    os.environ["TEXTGYM_CACHE"] = str(tmp_path_factory.getbasetemp() / "commands-cache")
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    try:
        main(["train", *TINY, "--output-dir", str(run_dir), "--no-progress"])
    finally:
        if before is None:
            os.environ.pop("TEXTGYM_CACHE")
        else:
            os.environ["TEXTGYM_CACHE"] = before
    return run_dir


# ---------------------------------------------------------------------------------------------- item 1: finished runs
def test_resume_of_a_finished_run_says_so_and_touches_nothing(finished_run, capsys):
    final, checkpoint = digest(finished_run / "final"), digest(finished_run / "checkpoints" / "last")
    config = (finished_run / "config.yaml").read_text()
    capsys.readouterr()
    main(["train", "--resume", str(finished_run), "--no-progress"])
    out = capsys.readouterr().out
    done = timesteps(finished_run / "final")
    assert f"{finished_run} is finished: {done} of 200 timesteps" in out
    assert "--total-timesteps" in out and "Resuming from" not in out
    assert digest(finished_run / "final") == final and digest(finished_run / "checkpoints" / "last") == checkpoint
    assert (finished_run / "config.yaml").read_text() == config


def test_a_run_killed_before_final_completes_only_the_missing_steps(finished_run, tmp_path, monkeypatch, capsys):
    # Killed after the checkpoint at the end of training, before final/ was written: nothing is left to train.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "final")
    ckpt = timesteps(run / "checkpoints" / "last")
    main(["train", "--resume", str(run), "--no-progress"])
    assert timesteps(run / "final") == ckpt == timesteps(finished_run / "final")
    assert digest(run / "final" / "policy") == digest(finished_run / "final" / "policy")


def test_a_run_killed_while_writing_final_resumes_from_its_last_checkpoint(finished_run, tmp_path, monkeypatch, capsys):
    # Killed after learn() while final/ was written: the last checkpoint (written first) is complete.
    import agents.commands as commands

    run = tmp_path / "run"

    def killed(self, path):
        raise KeyboardInterrupt("killed while writing final/")

    with monkeypatch.context() as patch:
        patch.setattr(commands.TokenPPO, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            main(["train", *TINY, "--output-dir", str(run), "--no-progress"])
    assert not (run / "final").exists() and timesteps(run / "checkpoints" / "last") == timesteps(finished_run / "final")
    main(["train", "--resume", str(run), "--no-progress"])
    assert "no training left; writing final/" in capsys.readouterr().out
    assert timesteps(run / "final") == timesteps(finished_run / "final")
    assert digest(run / "final" / "policy") == digest(finished_run / "final" / "policy")


def test_a_finished_run_trains_longer_with_a_bigger_total(finished_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    longer = timesteps(finished_run / "final") + 1
    main(["train", "--resume", str(run), "--total-timesteps", str(longer), "--no-progress"])
    assert "Resuming from" in capsys.readouterr().out
    assert timesteps(run / "final") >= longer


# ---------------------------------------------------------------------------------------------- item 9: disk full
def no_space(path) -> None:
    """What a full disk does to a write: part of the file, then ENOSPC."""
    Path(path).write_bytes(b"\0" * 100)
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_a_checkpoint_ends_the_run_with_one_message_and_it_resumes(finished_run, tmp_path, capsys):
    import safetensors.torch

    run, written, real = tmp_path / "run", [], safetensors.torch.save_file

    def second_checkpoint_fails(tensors, filename, metadata=None):
        written.append(filename)
        return no_space(filename) if len(written) == 2 else real(tensors, filename, metadata=metadata)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(safetensors.torch, "save_file", second_checkpoint_fails)
        with pytest.raises(SystemExit) as stopped:
            main(["train", *TINY, "--output-dir", str(run), "--no-progress"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    last = run / "checkpoints" / "last"
    assert "textgym train: error: no space left on " in err
    assert (f"while writing {last}.tmp/training_state.safetensors; the last checkpoint (iteration 1, {last}) is "
            f"intact; free space and resume with `textgym train --resume {run}`") in err
    assert "Traceback" not in err and "SafetensorError" not in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last"] and not (run / "final").exists()
    main(["train", "--resume", str(run), "--no-progress"])  # space freed: the run completes as if never stopped
    assert digest(run / "final" / "policy") == digest(finished_run / "final" / "policy")


def test_a_full_disk_while_writing_final_leaves_no_partial_final(finished_run, tmp_path, capsys):
    import agents.commands as commands

    run = tmp_path / "run"

    def save_fails(self, path):
        Path(path, "policy").mkdir(parents=True)
        no_space(Path(path, "policy", "model.safetensors"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(commands.TokenPPO, "save", save_fails)
        with pytest.raises(SystemExit) as stopped:
            main(["train", *TINY, "--output-dir", str(run), "--no-progress"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert ("no space left on " in err and f"while writing {run}/final.tmp; the last checkpoint (iteration 2, "
            f"{run}/checkpoints/last) is intact; free space and resume with `textgym train --resume {run}`") in err
    assert not (run / "final").exists() and not (run / "final.tmp").exists()
    main(["train", "--resume", str(run), "--no-progress"])
    assert "no training left; writing final/" in capsys.readouterr().out
    assert digest(run / "final" / "policy") == digest(finished_run / "final" / "policy")


# ---------------------------------------------------------------------------------------------- item 3: the lock
HOLD_LOCK = """
import sys, time
from agents.run_directory import lock_run_directory
held = lock_run_directory(sys.argv[1])
held.__enter__()
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(run_dir: Path):
    """Another process holding ``run_dir``'s lock (as a running `textgym train` does)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_train_into_a_run_directory_in_use_is_refused_naming_the_holder(tmp_path, capsys):
    import socket

    run = tmp_path / "run"
    holder = hold_lock(run)
    try:
        with pytest.raises(SystemExit) as info:
            main(["train", *TINY, "--output-dir", str(run), "--no-progress"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"{run} is in use by another textgym train (pid {holder.pid} on {socket.gethostname()}, started " in err
        assert not (run / "config.yaml").exists()  # refused before anything was written
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    from agents.run_directory import LOCK_FILE, lock_run_directory

    run = tmp_path / "run"
    holder = hold_lock(run)
    holder.kill()  # SIGKILL: no cleanup, the lock file stays behind
    holder.wait()
    assert (run / LOCK_FILE).is_file()
    with lock_run_directory(run):
        import json as json_module
        import os

        assert json_module.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    with lock_run_directory(run):  # released on exit: the next command takes it
        pass


# ---------------------------------------------------------------------------------------------- item 4: existing runs
def test_plain_train_into_an_existing_run_is_refused(finished_run, capsys):
    final = digest(finished_run / "final")
    with pytest.raises(SystemExit) as info:
        main(["train", *TINY, "--output-dir", str(finished_run), "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{finished_run} already holds a run" in err
    assert f"textgym train --resume {finished_run}" in err and "--overwrite" in err
    assert digest(finished_run / "final") == final


def test_overwrite_replaces_the_previous_run_without_mixing_its_logs(finished_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "notes.txt").write_text("mine")  # not a run file: left alone
    main(["train", *TINY, "seed=1", "--output-dir", str(run), "--overwrite", "--no-progress"])
    assert "--overwrite: removed the previous run" in capsys.readouterr().out
    assert len(list(run.glob("tb/events.out.tfevents*"))) == 1  # the old run's events were removed
    assert "seed: 1" in (run / "config.yaml").read_text() and (run / "notes.txt").read_text() == "mine"
    assert digest(run / "final" / "policy") != digest(finished_run / "final" / "policy")


def test_overwrite_and_resume_together_are_refused(finished_run, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(finished_run), "--overwrite"])
    assert info.value.code == 2
    assert "--overwrite starts the run again; --resume continues it: pass one of them" in capsys.readouterr().err


def test_train_into_an_existing_empty_directory_is_fine(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    main(["train", *TINY, "--output-dir", str(run), "--no-progress"])
    assert (run / "final" / "token_ppo.json").is_file()


# ---------------------------------------------------------------------------------------------- item 5: tokenizer
@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory):
    """A 400-token sentencepiece tokenizer trained on the sentiment task's text (not the default one)."""
    from textgym.data import load_task_data
    from textgym.spm_training import train_sentencepiece

    directory = tmp_path_factory.mktemp("tokenizer")
    train_sentencepiece([r["prompt"] + r["completion"] for r in load_task_data("sentiment")], directory, vocab_size=400)
    return directory


def test_the_tokenizer_config_key_is_used_for_training(small_tokenizer, tmp_path):
    run = tmp_path / "run"
    main(["train", *TINY, f"tokenizer={small_tokenizer}", "--output-dir", str(run), "--no-progress"])
    policy_config = json.loads((run / "final" / "policy" / "config.json").read_text())
    assert policy_config["vocab_size"] == 400
    assert json.loads((run / "checkpoints" / "last" / "policy" / "config.json").read_text())["vocab_size"] == 400
    assert main(["eval", str(run), "--episodes", "8"]) == 0  # eval rebuilds the env with the run's tokenizer


def test_a_missing_tokenizer_path_is_a_clear_config_error(tmp_path, capsys):
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(SystemExit) as info:
        main(["train", *TINY, f"tokenizer={missing}", "--output-dir", str(tmp_path / "run"), "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"tokenizer: {str(missing)!r} does not exist" in err and "sentencepiece" in err
    assert not (tmp_path / "run").exists()


from agents.commands import _records_fingerprint  # noqa: E402



def test_the_warm_start_cache_key_changes_with_the_demonstrations():
    records = [{"prompt": "Q: 1 + 1 = ? A:", "completion": " 2", "answer": "2"}]
    same = [dict(records[0])]
    new_demo = [{**records[0], "completion": " two"}]
    new_prompt = [{**records[0], "prompt": "Q: 1 + 2 = ? A:"}]
    assert _records_fingerprint(records) == _records_fingerprint(same)
    assert len({_records_fingerprint(r) for r in (records, new_demo, new_prompt)}) == 3


def test_train_eval_and_sft_run_on_a_multi_turn_id(tmp_path, capsys):
    """The commands take a multi-turn id: the warm start replays its demonstrations through the env, TokenPPO
    trains, and ``textgym eval`` scores the agent's turns (the calculator's results are the env's text)."""
    run = tmp_path / "calc"
    main(["train", *TINY, "env=textgym/Calculator-v0", "--output-dir", str(run), "--no-progress"])
    summary = json.loads((run / "samples.json").read_text())["summary"]
    assert summary["timesteps"] >= 200 and (run / "final/policy/config.json").is_file()
    assert "Test reward" in capsys.readouterr().out
    main(["eval", str(run), "--episodes", "8", "--greedy"])
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{") :])
    assert np.isfinite(result["perplexity_under_reference"]) and result["num_episodes"] == 8
    assert result["agent_turns_mean"] >= 1
    main(["generate", str(run), "--num", "2"])  # the env's test prompts: "Q: ... A:[<the conversation>]"
    assert capsys.readouterr().out.count("[") >= 2
    with pytest.raises(SystemExit) as refused:  # a bare prompt has no answer for the calculator task to check
        main(["generate", str(run), "Q: 3 * 4 = ? A:"])
    assert refused.value.code == 2 and "multi-turn env" in capsys.readouterr().err
    main(["sft", "--env", "textgym/GuessNumber-v0", "--output-dir", str(tmp_path / "sft"), "--steps", "2",
          "--batch-size", "4"])
    assert (tmp_path / "sft" / "config.json").is_file()
