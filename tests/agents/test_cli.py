"""The textgym console script (agents.cli): help, train/eval/generate/sft at tiny sizes, bad input.

The environment commands alone (envs, tokenizer) are tested in tests/textgym/test_cli.py."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from agents.cli import build_parser, main
from textgym.tokenizers import load_tokenizer

TINY = ["model_size=tiny", "num_envs=8", "total_timesteps=200", "eval_episodes=8", "sft.steps=3", "sft.batch_size=8",
        "checkpoint_every=1"]


@pytest.mark.parametrize("command", [[], ["train"], ["sft"], ["eval"], ["generate"], ["envs"], ["tokenizer", "train"]])
def test_every_help_lists_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: textgym" in out
    if command == ["train"]:
        for option in ("--config", "--resume", "--seed", "--output-dir", "key=value"):
            assert option in out


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("cli")
    os.environ["TEXTGYM_CACHE"] = str(root / "cache")
    run_dir = root / "run"
    main(["train", *TINY, "--output-dir", str(run_dir), "--no-progress"])
    return run_dir


def test_train_leaves_a_complete_run_directory(trained_run, capsys):
    for name in ("config.yaml", "progress.csv", "curves.png", "samples.json", "final/policy/config.json",
                 "final/policy/model.safetensors", "reference/config.json", "checkpoints/last/token_ppo.json"):
        assert (trained_run / name).exists(), name
    samples = json.loads((trained_run / "samples.json").read_text())
    assert len(samples["before"]) == len(samples["after"]) > 0
    assert samples["summary"]["timesteps"] >= 200


def test_second_run_reuses_the_cached_warm_start(trained_run, tmp_path, capsys):
    main(["train", *TINY, "--output-dir", str(tmp_path / "again"), "--no-progress"])
    assert "Supervised warm start: cached" in capsys.readouterr().out


def test_resume_continues_a_run(trained_run, capsys):
    before = json.loads((trained_run / "checkpoints/last/token_ppo.json").read_text())
    main(["train", "--resume", str(trained_run), "total_timesteps=400", "--no-progress"])
    assert "Resuming from" in capsys.readouterr().out
    after = json.loads((trained_run / "checkpoints/last/token_ppo.json").read_text())
    assert after["num_timesteps"] > before["num_timesteps"]


def test_eval_reports_reward_diversity_and_perplexity(trained_run, capsys):
    main(["eval", str(trained_run), "--episodes", "8"])
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{") :])
    for key in ("reward_mean", "distinct_1", "distinct_2", "self_bleu", "length_mean", "perplexity_under_reference",
                "distinct_completions", "kl_to_reference", "warnings", "collapsed", "reference"):
        assert key in result, key
    assert result["num_episodes"] == 8 and result["perplexity_under_reference"] > 1.0


def test_generate_from_a_run(trained_run, capsys):
    main(["generate", str(trained_run), "The movie was", "--max-new-tokens", "5", "--seed", "1"])
    assert "The movie was[" in capsys.readouterr().out


def _generated(capsys, *argv) -> list[str]:
    """The completions `textgym generate` printed (one `prompt[completion]` per line)."""
    main(["generate", *argv])
    return [line[line.index("[") + 1 : line.rindex("]")] for line in capsys.readouterr().out.splitlines() if "[" in line]


def test_generate_honours_max_new_tokens(trained_run, capsys):
    long = _generated(capsys, str(trained_run), "--num", "4", "--max-new-tokens", "20", "--seed", "0")
    short = _generated(capsys, str(trained_run), "--num", "4", "--max-new-tokens", "3", "--seed", "0")
    assert len(long) == len(short) == 4
    # A token starts at most one new word, so 3 tokens make at most 3 words (re-encoding the text would not
    # give the generated ids back); 20 tokens make more, so the flag is what limits the short ones.
    assert max(len(c.split()) for c in long) > 3
    assert all(len(c.split()) <= 3 for c in short), short


def test_generate_flags_change_what_is_generated(trained_run, capsys):
    run = str(trained_run)
    base = _generated(capsys, run, "--num", "4", "--seed", "0")
    assert _generated(capsys, run, "--num", "4", "--seed", "0") == base  # --seed makes it reproducible
    assert _generated(capsys, run, "--num", "4", "--seed", "1") != base
    assert len(_generated(capsys, run, "--num", "2", "--seed", "0")) == 2
    greedy = _generated(capsys, run, "--num", "4", "--greedy", "--seed", "0")
    assert _generated(capsys, run, "--num", "4", "--greedy", "--seed", "5") == greedy  # greedy ignores the seed
    # top-p -> 0 keeps only the most likely token: greedy decoding again, whatever the temperature.
    assert _generated(capsys, run, "--num", "4", "--top-p", "1e-6", "--temperature", "2.0", "--seed", "3") == greedy
    assert _generated(capsys, run, "--num", "4", "--temperature", "1e-4", "--seed", "4") == greedy
    main(["generate", run, "--num", "2", "--env", "textgym/Arithmetic-v0", "--seed", "0"])
    assert "Q: " in capsys.readouterr().out  # --env picks that env's test prompts


def test_train_summary_shows_greedy_and_sampled_reward_with_diversity(trained_run, tmp_path, capfd):
    main(["train", *TINY, "--output-dir", str(tmp_path / "run"), "--no-progress"])  # (trained_run gets resumed)
    out = capfd.readouterr().out  # rich writes the table to the file descriptor
    assert "Held-out test prompts (8), before and after RL" in out and "distinct completions" in out
    summary = json.loads((tmp_path / "run" / "samples.json").read_text())["summary"]
    for side in ("before", "after"):
        for mode in ("greedy", "sampled"):
            metrics = summary[side][mode]
            for key in ("reward_mean", "distinct_2", "self_bleu", "distinct_completions", "eos_rate",
                        "perplexity_under_reference", "kl_to_reference"):
                assert key in metrics, (side, mode, key)
            assert metrics["num_episodes"] == 8
    assert summary["before"]["sampled"]["kl_to_reference"] == pytest.approx(0.0, abs=1e-4)  # the policy is the reference
    assert summary["greedy_reward_before"] == summary["before"]["greedy"]["reward_mean"]
    assert isinstance(summary["warnings"], list) and isinstance(summary["collapsed"], bool)


def test_eval_names_a_collapsed_policy(trained_run, tmp_path, capsys):
    """A policy whose logits are all equal writes token 0 for every prompt: eval must say it collapsed."""
    import shutil

    import torch

    from agents.models import ActorCriticLM

    run = tmp_path / "collapsed"
    shutil.copytree(trained_run, run)
    model = ActorCriticLM.from_pretrained(run / "final" / "policy")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "ln_f" in name:
                param.zero_()  # hidden state 0 -> every logit 0 -> greedy always picks the same token
    model.save_pretrained(run / "final" / "policy")
    main(["eval", str(run), "--episodes", "8", "--greedy"])
    captured = capsys.readouterr()
    result = json.loads(captured.out[captured.out.index("{") :])
    assert result["collapsed"] is True and result["distinct_completions"] == 1
    assert "greedy: collapsed: 1 distinct completion for 8 prompts" in captured.err
    assert result["reference"]["num_episodes"] == 8  # the warm start, scored the same way
    main(["eval", str(trained_run), "--episodes", "8", "--no-compare"])  # sampled: 8 different texts
    healthy = json.loads((out := capsys.readouterr().out)[out.index("{") :])
    assert healthy["collapsed"] is False and "reference" not in healthy


def _eval(capsys, *argv) -> dict:
    main(["eval", *argv])
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_eval_flags_change_what_is_measured(trained_run, capsys):
    run = str(trained_run)
    base = _eval(capsys, run, "--episodes", "8", "--no-compare", "--seed", "0")
    assert _eval(capsys, run, "--episodes", "8", "--no-compare", "--seed", "0") == base  # --seed: reproducible
    assert _eval(capsys, run, "--episodes", "8", "--no-compare", "--seed", "1") != base
    assert _eval(capsys, run, "--episodes", "4", "--no-compare")["num_episodes"] == 4
    train_split = _eval(capsys, run, "--episodes", "8", "--no-compare", "--split", "train")
    assert train_split != base and train_split["num_episodes"] == 8
    # --reference: the policy itself as the reference makes the KL exactly 0 (the run's warm start does not).
    own = _eval(capsys, run, "--episodes", "8", "--no-compare", "--reference", str(trained_run / "final" / "policy"))
    assert own["kl_to_reference"] == pytest.approx(0.0, abs=1e-5) and abs(base["kl_to_reference"]) > 1e-4
    # --env: the same model scored by another task's reward (arithmetic's numeric match: nothing right).
    assert _eval(capsys, run, "--episodes", "8", "--no-compare", "--env", "textgym/Arithmetic-v0")["reward_mean"] == 0.0


def test_sft_flags_change_the_trained_model(tmp_path):
    from safetensors.torch import load_file

    text = tmp_path / "lines.txt"
    text.write_text("\n".join(["the film was great fun", "a lovely and warm story", "I liked it a lot"] * 5))

    def weights(name, *flags):
        main(["sft", "--text-file", str(text), "--output-dir", str(tmp_path / name), "--steps", "2", *flags])
        return load_file(str(tmp_path / name / "model.safetensors"))

    def same(a, b):
        return all((a[k] == b[k]).all() for k in a)

    base = weights("base")
    assert same(weights("again"), base)
    for name, flags in (("steps", ["--steps", "3"]), ("lr", ["--learning-rate", "1e-2"]),
                        ("batch", ["--batch-size", "2"]), ("seed", ["--seed", "1"])):
        assert not same(weights(name, *flags), base), flags


def test_sft_on_a_text_file_saves_a_model_dir(tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("\n".join(["the film was great fun", "a lovely and warm story", "I liked it a lot"] * 5))
    main(["sft", "--text-file", str(text), "--output-dir", str(tmp_path / "sft"), "--steps", "3", "--batch-size", "4"])
    assert (tmp_path / "sft" / "config.json").is_file()


def test_bad_config_input_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "ppo.learning_rat=1e-4", "--output-dir", str(tmp_path / "bad")])
    assert e.value.code == 2 and "Did you mean 'learning_rate'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", "no-such-config"])
    assert "No config named" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "num_envs=many"])
    assert "num_envs must be a int" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--seed", "x"])


def test_train_under_torchrun_two_ranks_one_run_directory(tmp_path):
    """`torchrun --nproc_per_node 2 -m agents.cli train` (CPU, gloo): rank 0 alone prints and writes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root), "TEXTGYM_CACHE": str(tmp_path / "cache")}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "agents.cli",
           "train", *TINY, "--output-dir", str(run_dir), "--no-progress"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count('"reward_after"') == 1 and proc.stdout.count("Before RL") == 1
    summary = json.loads((run_dir / "samples.json").read_text())["summary"]
    # num_envs=8 is per rank: one iteration generates up to 2 x 8 x max_new_tokens tokens, counted globally.
    assert summary["timesteps"] >= 200
    last = run_dir / "checkpoints/last"
    assert (last / "token_ppo.json").is_file() and (last / "training_state.json").is_file()
    assert not (run_dir / "checkpoints/last.tmp").exists()
    assert len(list((run_dir / "tb").glob("events.out.tfevents*"))) == 1  # one logger, rank 0's


def test_interrupted_train_resumes_exactly_like_the_uninterrupted_run(trained_run, tmp_path, capsys, monkeypatch):
    import csv
    import signal

    from agents import commands

    def interrupt_once(self):
        if self.n_calls == 3:  # an env step of the first rollout
            signal.raise_signal(signal.SIGINT)
        return True

    run_dir = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        patch.setattr(commands.CheckpointCallback, "_on_step", interrupt_once)
        with pytest.raises(SystemExit) as e:
            main(["train", *TINY, "--output-dir", str(run_dir), "--no-progress"])
    assert e.value.code == 130
    err = capsys.readouterr().err
    assert "Training stopped by SIGINT" in err and f"Resume with: textgym train --resume {run_dir}" in err
    assert (run_dir / "checkpoints" / "last" / "training_state.json").is_file()
    main(["train", "--resume", str(run_dir), "--no-progress"])
    assert "Resuming from" in capsys.readouterr().out

    def rows(path):
        with open(path, newline="") as f:
            return [{k: v for k, v in r.items() if "per_sec" not in k and k != "time/fps"} for r in csv.DictReader(f)]

    resumed, uninterrupted = rows(run_dir / "progress.csv"), rows(trained_run / "progress.csv")
    assert [r["time/iterations"] for r in resumed] == [str(i) for i in range(1, len(resumed) + 1)]
    assert len(resumed) >= 2 and resumed == uninterrupted[: len(resumed)]


@pytest.mark.parametrize("argv, message", [
    (["train", "ppo.learning_rate"], "must look like key=value"),
    (["train", "--total-timesteps", "-5"], "argument --total-timesteps: must be a positive integer, got -5"),
    (["train", "total_timesteps=0"], "total_timesteps must be a positive integer, got 0"),
    (["train", "num_envs=true"], "num_envs must be an int, got True"),
    (["train", "--resume", "/no/such/run"], "--resume /no/such/run: does not exist"),
    (["eval", "/no/such/run"], "/no/such/run does not exist"),
    (["eval", ".", "--episodes", "0"], "argument --episodes: must be a positive integer"),
    (["generate", ".", "--num", "x"], "argument --num: invalid int value: 'x'"),
])
def test_bad_command_lines_are_argparse_style_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err, err


def test_resume_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: textgym train" in err and "is not a run directory (it has no config.yaml)" in err


def test_corrupt_checkpoint_on_resume_is_a_clear_error(trained_run, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "corrupt"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "checkpoints" / "last" / "training_state.json").write_text("{")
    with pytest.raises(SystemExit) as e:  # a longer total: the finished run must read its checkpoint to go on
        main(["train", "--resume", str(run_dir), "total_timesteps=100000", "--no-progress"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "training_state.json" in err and "corrupt" in err and "Traceback" not in err
