"""Smoke test of the benchmark scripts: each runs end to end at a tiny size (``--quick``) and prints its table.

Nothing here is timed: the numbers live in BENCHMARKS.md. The scripts set torch's thread count; the fixture
restores it for the rest of the suite.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
import torch


@pytest.fixture
def run_script(monkeypatch, capsys):
    threads = torch.get_num_threads()

    def run(module, *argv: str) -> str:
        monkeypatch.setattr(sys, "argv", [module.__name__, "--quick", "--threads", "1", *argv])
        module.main()
        return capsys.readouterr().out

    yield run
    torch.set_num_threads(threads)


def table_rows(out: str) -> list[list[str]]:
    """The data rows of the markdown tables in ``out``, split into cells."""
    lines = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    rows = [line for line in lines[1:] if not line.startswith("| method")]  # header rows of later tables
    # Numbers >= 1000 print with thousands separators ("1,003"): drop them so cells parse as floats.
    return [[cell.strip().replace(",", "") for cell in line.strip("|").split("|")] for line in rows]


def test_rollout_throughput_compares_every_method(run_script):
    from benchmarks import rollout_throughput

    out = run_script(rollout_throughput, "--vocabs", "4096")
    rows = table_rows(out)
    names = [row[0] for row in rows]
    assert any(n.startswith("TokenPPO collect_rollout") for n in names)
    assert any(n.startswith("HF lm.generate") for n in names)
    assert sum(n.startswith("stock SB3") for n in names) == 2
    assert any(n.startswith("naive re-encoding") for n in names)
    token_ppo = rows[0]
    assert token_ppo[1] == "16"  # 4 slots x 4 tokens (a random tiny model may end a slot early with EOS)
    assert float(token_ppo[3]) > 0 and float(token_ppo[4]) == 1.0


def test_length_scaling_reports_each_length(run_script):
    from benchmarks import length_scaling

    rows = table_rows(run_script(length_scaling))
    assert [row[0] for row in rows] == ["4", "8"]
    assert float(rows[0][3]) == 1.0  # the first length is the reference


def test_update_cost_compares_sequence_level_and_per_transition(run_script):
    from benchmarks import update_cost

    rows = table_rows(run_script(update_cost, "--vocab", "4096"))
    assert len(rows) == 4
    assert rows[0][0].startswith("TokenPPO evaluate_sequences")
    # Every method differentiates the same transitions.
    assert len({row[1] for row in rows}) == 1


def test_memory_child_reports_a_positive_peak(run_script):
    from benchmarks import memory

    for config in ("finetune-full", "tokenppo-lora"):
        result = json.loads(run_script(memory, "--child", config).strip().splitlines()[-1])
        assert result["config"] == config and result["peak_mb"] >= 0
    assert result["trainable"] < result["params"]  # LoRA trains only adapters and the value head


def test_trl_grpo_runs_both_trainers(run_script):
    pytest.importorskip("trl")
    from benchmarks import trl_grpo

    out = run_script(trl_grpo)
    rows = table_rows(out)
    assert [row[0] for row in rows] == ["TokenPPO (baseline='grpo')", "TRL GRPOTrainer"]
    assert all(re.fullmatch(r"\d+", row[1]) and int(row[1]) == 2 for row in rows)  # --quick: 2 iterations each
    assert "interleaved; load average" in out and "* TRL GRPOTrainer, seed 0" in out


def test_trl_grpo_summary_pairs_the_time_ratios_by_seed():
    from benchmarks.trl_grpo import TOKEN_PPO, TRL, summary_rows

    # TokenPPO reaches 0.5 at 1 s and 4 s, TRL at 4 s and 5 s: per-seed ratios 0.25 and 0.8, median 0.53.
    curves = {TOKEN_PPO: [[(1.0, 0.5), (2.0, 0.6)], [(2.0, 0.1), (4.0, 0.5)]],
              TRL: [[(4.0, 0.5), (8.0, 0.7)], [(5.0, 0.5), (9.0, 0.4)]]}
    ours, theirs = summary_rows(curves, threshold=0.5)
    assert ours[2] == "2/2" and ours[5].startswith("1.00")
    assert theirs[3] == "4.5 +- 0.71" and theirs[5] == "0.53 (0.25, 0.80)"
    assert theirs[4] == f"{(0.6 + 0.45) / 2:.3g} +- {__import__('statistics').stdev([0.6, 0.45]):.2g}"


def test_vowel_reward_scores_letters_only():
    from benchmarks.trl_grpo import vowel_reward

    assert vowel_reward(["p"] * 3, ["aei", "bcd", "12 !"]) == [1.0, 0.0, 0.0]


def test_task_table_scores_the_warm_start_and_each_method(run_script, tmp_path):
    from benchmarks import task_table

    out = run_script(task_table, "--tasks", "arithmetic", "--json", str(tmp_path / "table.json"))
    rows = [r for r in table_rows(out) if r[0] == "arithmetic"]
    runs = json.loads((tmp_path / "table.json").read_text())
    top = runs[0]["top_greedy_completions"]
    assert sum(t["count"] for t in top) <= 8 and top == sorted(top, key=lambda t: -t["count"])
    assert [r[1] for r in rows] == ["warm start", "gae", "grpo"]
    for r in rows:
        assert 0.0 <= float(r[2]) <= 1.0 and 0.0 <= float(r[3]) <= 1.0  # greedy / sampled accuracy
        assert r[6].endswith("/ 8")  # distinct greedy completions out of the 8 test prompts
    assert rows[0][4] == "-" and re.fullmatch(r"[01]/1", rows[1][4])
    assert float(rows[0][9]) == pytest.approx(0.0, abs=1e-3)  # the warm start is its own reference: KL 0
    # --from-json: the same table again from the saved results, here split over two files (one per method)
    for method in ("gae", "grpo"):
        (tmp_path / f"{method}.json").write_text(json.dumps([r for r in runs if r["method"] == method]))
    again = run_script(task_table, "--from-json", str(tmp_path / "gae.json"), str(tmp_path / "grpo.json"))
    assert [r for r in table_rows(again) if r[0] == "arithmetic"] == rows
    (tmp_path / "bad.json").write_text(json.dumps({"not": "results"}))
    with pytest.raises(SystemExit, match="not a task-table result list"):
        run_script(task_table, "--from-json", str(tmp_path / "bad.json"))


def test_task_table_config_method_is_the_shipped_recipe_unchanged():
    from benchmarks.task_table import method_options
    from textgym.config import load_config

    config = load_config("arithmetic", [])
    assert method_options(config, "config") == config["ppo"]
    assert method_options(config, "gae")["baseline"] == "gae" and "group_size" not in method_options(config, "gae")


def test_task_table_methods_are_valid_token_ppo_configs():
    """Every method row is a TokenPPOConfig on every shipped task (group methods keep the config's group size)."""
    from agents.ppo.config import check_ppo_section
    from benchmarks.task_table import ALL_TASKS, METHODS, method_options
    from textgym.config import load_config

    for task in ALL_TASKS:
        config = load_config(task, [])
        for method in METHODS:
            ppo = check_ppo_section(method_options(config, method), seed=0, num_envs=config["num_envs"])
            assert ppo.group_size == (1 if ppo.baseline in ("gae", "reinforce++") else
                                      int(config["ppo"].get("group_size", 4))), (task, method)
    dapo = method_options(load_config("arithmetic", []), "dapo")
    assert dapo["dynamic_sampling"] and dapo["overlong_filter"] and dapo["clip_range_high"] == 0.28
    # Format ships Dr. GRPO: its grpo row is plain GRPO (the config's scaling and aggregation do not leak in)
    grpo = method_options(load_config("format", []), "grpo")
    assert "scale_rewards" not in grpo and "loss_aggregation" not in grpo and "normalize_advantage" not in grpo
    assert grpo["learning_rate"] == load_config("format", [])["ppo"]["learning_rate"]


def test_gpu_check_dry_run_runs_every_stage_on_cpu(tmp_path):
    # The GPU check's code paths at tiny shapes on CPU (its numbers mean nothing): model directory, HF generate,
    # four TokenPPO configurations, the one-process torchrun (gloo here, NCCL on a GPU), the JSON and the table.
    from benchmarks import gpu_check

    threads = torch.get_num_threads()
    try:
        results = gpu_check.main(["--dry-run", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["dry_run"] and saved["shape"]["vocab"] == 50257 and saved["params"] > 0
    assert saved["hf_generate"]["tokens"] == 4 * 4
    rows = saved["configurations"]
    assert [(r["lora"], r["gradient_checkpointing"]) for r in rows] == [(False, False), (False, True), (True, False), (True, True)]
    for row in rows:
        if "skipped" in row:  # only LoRA, only without peft
            assert row["lora"] and row["skipped"] == "peft not installed"
        else:
            assert row["train_s"] > 0 and row["mfu_vs_measured"] > 0 and row["mfu_vs_table"] is None  # no GPU, no table peak
    assert rows[0]["generated_tokens"] > 0 and "generate_tokens_per_s" not in rows[1]
    run = saved["torchrun"]
    assert run["ok"], run.get("stderr_tail")
    assert (run["backend"], run["world_size"], run["distributed"]) == ("gloo", 1, True) and run["iterations"] >= 1
    table = (tmp_path / "gpu_check.md").read_text()
    assert "DRY RUN" in table and "| LoRA off, grad ckpt off |" in table and "torchrun --nproc_per_node 1: backend gloo" in table
    assert results["total_s"] > 0


def test_gpu_check_peak_table_matches_specific_names_first():
    from benchmarks.gpu_check import peak_for

    assert peak_for("NVIDIA H100 PCIe") == 756e12 and peak_for("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_for("NVIDIA H200") == 989e12 and peak_for("NVIDIA H100 NVL") == 835e12
    assert peak_for("NVIDIA GeForce RTX 4090") is None


def test_sb3_table_prints_the_task_tables_columns_with_an_sb3_row(run_script):
    from benchmarks import sb3_table
    from benchmarks.task_table import HEADERS

    out = run_script(sb3_table, "--tasks", "sentiment")
    rows = [r for r in table_rows(out) if r[0] == "sentiment"]
    assert [r[1] for r in rows] == ["warm start", "sb3"] and all(len(r) == len(HEADERS) for r in rows)
    assert rows[1][6].endswith("/ 8") and re.fullmatch(r"[01]/1", rows[1][4])
    assert float(rows[0][9]) == pytest.approx(0.0, abs=1e-3)  # the warm start is its own reference: KL 0
