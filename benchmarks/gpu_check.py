"""GPU check (issue 18): TokenPPO on one H100 / H200 at GPT-2 small's shape, in one script, in under 8 minutes.

NOT YET RUN ON A GPU. It was written, and its ``--dry-run`` run, on a CPU-only machine (no GPU was lent to the
session that wrote it); its GPU figures do not exist yet, and the first GPU run may need fixes.

What it measures, on a randomly initialised GPT-2-shaped model (124M parameters: 12 layers, 12 heads, width 768,
vocabulary 50257, built with ``save_pretrained`` into a temp directory and loaded from there as TokenPPO's
``policy``; the env's tokenizer has 4096 ids, the rest are masked, as a padded vocabulary is), bf16 autocast:

* **matmul peak**: the chip's dense bf16 peak from a table keyed by the device name (H100 SXM / H200: 989
  TFLOP/s, H100 PCIe: 756, H100 NVL: 835, A100: 312), and a measured ``torch.mm`` rate (8192^3, bf16).
* **rollout**: ``TokenPPO.collect_rollout`` generated tokens/s (its KV-cached generation with env steps, and
  the whole rollout with the scoring passes) against Hugging Face ``generate`` on the same model, prompts,
  batch and sampling settings (temperature 1, top-k 0, top-p 1, exactly ``--new-tokens`` tokens), LoRA off
  and on.
* **update**: one ``TokenPPO.train()`` (one epoch, one minibatch of every sequence, optimiser step) with LoRA
  off / on and gradient checkpointing off / on: seconds, model FLOP/s and MFU against both peaks. Model FLOPs
  per sequence: forward ``2 N S + 2 d V T + 2 L d S^2`` (``N`` the non-embedding weights, ``S = P + T`` columns,
  the output head on the ``T`` response tokens only, causal attention), training 3x that (LoRA: 2x, frozen
  weights get no gradient). Recomputation (gradient checkpointing, the chunked head) is not counted: MFU
  drops by what it costs.
* **peak memory**: ``torch.cuda.max_memory_allocated`` per configuration (rollout + update).
* **torchrun**: ``torchrun --standalone --nproc_per_node 1`` running TokenPPO (``distributed=True``: DDP over a
  one-process NCCL group) for two iterations: the data-parallel code path on one GPU.

It needs only the repository and its dependencies (torch, transformers, gymnasium, stable-baselines3): no
download, no install. ``peft`` is optional: without it the LoRA rows say "skipped". Every stage watches a time
budget (``--budget-s``, default 420 s) and is skipped, with a note, once the budget is spent.

Run::

    python -m benchmarks.gpu_check --out gpu_check/            # one GPU: gpu_check/gpu_check.{json,md}
    python -m benchmarks.gpu_check --dry-run --out /tmp/gc      # CPU, tiny shapes, the same code paths: CI

``--dry-run`` runs every stage on CPU (float32: bf16 autocast is CUDA-only in TokenPPO) with a 2-layer, width-32
model (vocabulary still 50257), 4 slots, 8 prompt and 4 new tokens; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]

#: Dense bf16 tensor-core peaks (FLOP/s, no sparsity) by a substring of ``torch.cuda.get_device_name()``; the
#: first match wins, so the specific names come before "H100".
BF16_PEAK = (
    ("H200", 989e12),
    ("GH200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("A100", 312e12),
)

GPU_SHAPE = {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024, "vocab": 50257,
             "batch": 64, "prompt": 64, "new_tokens": 128, "repeats": 3, "mm_size": 8192}
DRY_SHAPE = {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64, "vocab": 50257,
             "batch": 4, "prompt": 8, "new_tokens": 4, "repeats": 1, "mm_size": 256}


class Budget:
    """The wall-clock budget of the whole check: stages ask before they start."""

    def __init__(self, seconds: float):
        self.start, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


def peak_for(device_name: str) -> float | None:
    """The table's dense bf16 peak for this device name, ``None`` if it is not in the table."""
    return next((peak for key, peak in BF16_PEAK if key in device_name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured_matmul_rate(device: torch.device, n: int, repeats: int = 20) -> float:
    """FLOP/s of ``torch.mm`` on two ``n x n`` matrices (bf16 on CUDA, float32 on CPU), median of ``repeats``."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    sync(device)
    times = []
    for _ in range(repeats if device.type == "cuda" else 2):
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / sorted(times)[len(times) // 2]


def build_model_dir(shape: dict, directory: Path) -> Path:
    """A randomly initialised GPT-2-shaped ActorCriticLM written with save_pretrained (as a user's model would be)."""
    from agents.models import ActorCriticLM, default_model_config
    from textgym.tokenizers import default_tokenizer

    tok = default_tokenizer()
    config = default_model_config(shape["vocab"], tok.pad_token_id, tok.eos_token_id, getattr(tok, "bos_token_id", None))
    for key in ("n_embd", "n_layer", "n_head", "n_positions"):
        setattr(config, key, shape[key])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ActorCriticLM.from_config(config)
    model.save_pretrained(directory)
    return directory


def model_flops(policy: Any, sequences: int, columns: int, response_tokens: int) -> float:
    """Forward model FLOPs of the teacher-forced pass (see the module docstring)."""
    lm = policy.lm
    config = lm.config
    embedding_ids = {id(lm.get_input_embeddings().weight)}
    wpe = getattr(getattr(lm, "transformer", None), "wpe", None)
    if wpe is not None:
        embedding_ids.add(id(wpe.weight))
    trunk = sum(p.numel() for p in lm.parameters() if id(p) not in embedding_ids)
    d, vocab, layers = config.n_embd, config.vocab_size, config.n_layer
    return 2 * trunk * sequences * columns + 2 * d * vocab * response_tokens + 2 * layers * d * columns**2 * sequences


def make_algo(model_dir: Path, shape: dict, device: torch.device, lora: bool, checkpointing: bool, **kwargs: Any):
    from agents.ppo import TokenPPO
    from benchmarks.common import make_vec_env

    env = make_vec_env(shape["batch"], prompt_tokens=shape["prompt"], new_tokens=shape["new_tokens"])
    return TokenPPO(str(model_dir), env, n_epochs=1, batch_size=shape["batch"], kl_coef=0.05, seed=0,
                    device=str(device), bf16=device.type == "cuda", lora=True if lora else None,
                    gradient_checkpointing=checkpointing, **kwargs)


def run_configuration(model_dir: Path, shape: dict, device: torch.device, lora: bool, checkpointing: bool,
                      peaks: dict[str, float | None]) -> dict:
    """Rollout (unless ``checkpointing``: it does not change generation) and update of one configuration."""
    if device.type == "cuda":
        gc.collect()  # the previous configuration's model and optimizer: not in this one's peak
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    algo = make_algo(model_dir, shape, device, lora, checkpointing)
    result: dict[str, Any] = {"lora": lora, "gradient_checkpointing": checkpointing}
    algo.collect_rollout()  # warm-up: kernels, allocator, KV-cache shapes
    rollouts = []
    for _ in range(shape["repeats"] if not checkpointing else 0):
        start = time.perf_counter()
        algo.collect_rollout()
        sync(device)
        rollouts.append((algo.buffer.num_tokens, algo.last_rollout["generate_s"], time.perf_counter() - start))
    if rollouts:
        tokens, generate_s, rollout_s = sorted(rollouts, key=lambda r: r[2])[len(rollouts) // 2]
        result.update(generated_tokens=int(tokens), generate_tokens_per_s=tokens / generate_s,
                      rollout_tokens_per_s=tokens / rollout_s)
    algo.train()  # warm-up
    times = []
    for _ in range(shape["repeats"]):
        sync(device)
        start = time.perf_counter()
        algo.train()
        sync(device)
        times.append(time.perf_counter() - start)
    train_s = sorted(times)[len(times) // 2]
    buf = algo.buffer
    columns = int(buf.prompt_ids.shape[1] + buf.response_ids.shape[1])
    forward = model_flops(algo.policy, buf.num_sequences, columns, int(buf.response_mask.sum()))
    flops = (2 if lora else 3) * forward
    result.update(train_s=train_s, train_tokens=int(buf.num_tokens), train_flops_per_s=flops / train_s,
                  **{f"mfu_vs_{name}": (flops / train_s / peak if peak else None) for name, peak in peaks.items()})
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    del algo
    return result


def hf_generate_rate(model_dir: Path, shape: dict, device: torch.device, repeats: int) -> dict:
    """Hugging Face ``generate`` on the same model, prompts, batch and sampling settings as TokenPPO's rollout."""
    from agents.models import ActorCriticLM
    from benchmarks.common import prompts
    from textgym.tokenizers import default_tokenizer

    model = ActorCriticLM.from_pretrained(model_dir).to(device).eval()
    tok = default_tokenizer()
    ids = [tok.encode(p["prompt"])[-shape["prompt"]:] for p in prompts(shape["batch"])]
    width = max(len(i) for i in ids)
    input_ids = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids], device=device)  # left padding
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    new = shape["new_tokens"]

    def run() -> int:
        with torch.no_grad(), autocast:
            out = model.lm.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                    top_p=1.0, max_new_tokens=new, min_new_tokens=new, use_cache=True,
                                    pad_token_id=tok.pad_token_id)
        sync(device)
        return (out.shape[1] - width) * shape["batch"]

    run()
    times, tokens = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = run()
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    del model
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


# ---------------------------------------------------------------------------------------------- torchrun
def torchrun_worker(model_dir: Path, out: Path, dry_run: bool) -> None:
    """Inside ``torchrun --nproc_per_node 1``: TokenPPO over a one-process group (NCCL on CUDA, gloo on CPU)."""
    import torch.distributed as dist

    shape = DRY_SHAPE if dry_run else GPU_SHAPE
    device = torch.device("cuda" if torch.cuda.is_available() and not dry_run else "cpu")
    algo = make_algo(model_dir, shape, device, lora=False, checkpointing=False, distributed=True)
    start = time.perf_counter()
    algo.learn(2 * shape["batch"] * shape["new_tokens"])  # two iterations (one if no slot ends early)
    seconds = time.perf_counter() - start
    result = {"backend": dist.get_backend(), "world_size": dist.get_world_size(), "distributed": algo.dist.enabled,
              "train_policy": type(algo.train_policy).__name__, "iterations": algo.iteration,
              "timesteps": algo.num_timesteps, "seconds": seconds, "tokens_per_s": algo.num_timesteps / seconds}
    if algo.dist.is_main:
        out.write_text(json.dumps(result))
    dist.barrier()
    # No teardown: destroying a gloo group under a live DDP model can deadlock at exit (seen in this repo's
    # tests); the result is written, so leave at once.
    sys.stdout.flush()
    os._exit(0)


def run_torchrun(model_dir: Path, work: Path, dry_run: bool, timeout: float) -> dict:
    out = work / "torchrun.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m",
           "benchmarks.gpu_check", "--torchrun-worker", str(model_dir), "--worker-out", str(out)]
    if dry_run:
        cmd.append("--dry-run")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):  # a fresh job, not ours
        env.pop(var, None)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(timeout, 30))
    except subprocess.TimeoutExpired as e:
        return {"ok": False, "stderr_tail": f"timed out after {e.timeout:.0f} s: {str(e.stderr or '')[-2000:]}"}
    if proc.returncode != 0 or not out.is_file():
        return {"ok": False, "returncode": proc.returncode, "stderr_tail": proc.stderr[-3000:]}
    return {"ok": True, "wall_s_with_startup": time.perf_counter() - start, **json.loads(out.read_text())}


# ---------------------------------------------------------------------------------------------- report
def markdown(results: dict) -> str:
    def num(value: Any, fmt: str = "{:,.0f}") -> str:
        return "-" if value is None else fmt.format(value)

    pct = "{:.1%}"
    lines = [f"### GPU check: {results['device_name']}{' (DRY RUN, CPU: numbers mean nothing)' if results['dry_run'] else ''}",
             "", f"{results['machine']}", "",
             f"Model: GPT-2 shape, {results['params'] / 1e6:.1f}M parameters, vocab {results['shape']['vocab']}; "
             f"{results['shape']['batch']} slots, prompt {results['shape']['prompt']}, {results['shape']['new_tokens']} new "
             f"tokens; bf16 autocast: {results['bf16']}. Matmul peak: table {num(results['peak_table'], '{:.3g}')} FLOP/s, "
             f"measured torch.mm {num(results['peak_measured'], '{:.3g}')} FLOP/s.", "",
             "| configuration | generate tok/s | rollout tok/s | HF generate tok/s | TokenPPO / HF | train s | "
             "MFU (table peak) | MFU (measured mm) | peak GiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    hf = results.get("hf_generate", {}).get("tokens_per_s")
    for row in results["configurations"]:
        name = f"LoRA {'on' if row['lora'] else 'off'}, grad ckpt {'on' if row['gradient_checkpointing'] else 'off'}"
        if row.get("skipped"):
            lines.append(f"| {name} | skipped: {row['skipped']} |  |  |  |  |  |  |  |")
            continue
        gen = row.get("generate_tokens_per_s")
        lines.append(" | ".join([
            f"| {name}", num(gen), num(row.get("rollout_tokens_per_s")), num(hf if gen else None),
            num(gen / hf if gen and hf else None, "{:.2f}x"), num(row["train_s"], "{:.3f}"),
            num(row.get("mfu_vs_table"), pct), num(row.get("mfu_vs_measured"), pct),
            num(row.get("peak_memory_gib"), "{:.2f}"),
        ]) + " |")
    tr = results.get("torchrun", {})
    if tr.get("ok"):
        lines += ["", f"torchrun --nproc_per_node 1: backend {tr['backend']}, world size {tr['world_size']}, "
                      f"{tr['train_policy']}, {tr['iterations']} iterations, {tr['timesteps']} tokens in "
                      f"{tr['seconds']:.1f} s ({tr['tokens_per_s']:,.0f} tok/s; {tr['wall_s_with_startup']:.0f} s with "
                      "start-up)."]
    else:
        lines += ["", f"torchrun --nproc_per_node 1: FAILED or skipped: {tr.get('skipped') or tr.get('stderr_tail', '')[-500:]}"]
    for note in results["notes"]:
        lines.append(f"\nNote: {note}")
    lines.append(f"\nTotal {results['total_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, the same code paths (seconds; CI)")
    p.add_argument("--out", default="gpu_check", help="directory for gpu_check.json and gpu_check.md")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting new stages after this many seconds")
    p.add_argument("--torchrun-worker", metavar="MODEL_DIR", help=argparse.SUPPRESS)  # internal: inside torchrun
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    # The model's vocabulary (GPT-2's 50257) is larger than the env tokenizer's on purpose: the extra ids are masked.
    warnings.filterwarnings("ignore", message=".*much larger than the tokenizer's.*")
    warnings.filterwarnings("ignore", message=".*max_prompt_tokens.*")  # the prompts are cut to P on purpose
    warnings.filterwarnings("ignore", message=".*bf16=True is used on CUDA only.*")
    warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")  # peft on GPT-2's Conv1D: it handles it
    if args.torchrun_worker:
        torchrun_worker(Path(args.torchrun_worker), Path(args.worker_out), args.dry_run)
        return {}
    from benchmarks.common import machine, num_params

    budget = Budget(args.budget_s)
    shape = DRY_SHAPE if args.dry_run else GPU_SHAPE
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        raise SystemExit("gpu_check: no CUDA device; run it on a GPU, or pass --dry-run for the CPU smoke run.")
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)
    try:
        import peft  # noqa: F401

        lora_options, notes = (False, True), []
    except ImportError:
        lora_options, notes = (False,), ["peft is not importable here: the LoRA rows are skipped."]
    device_name = torch.cuda.get_device_name(device) if cuda else "CPU (dry run)"
    table_peak = peak_for(device_name) if cuda else None
    if cuda and table_peak is None:
        notes.append(f"{device_name!r} is not in the bf16 peak table: MFU against the measured torch.mm rate only.")
    results: dict[str, Any] = {"dry_run": args.dry_run, "device_name": device_name, "machine": machine(),
                               "shape": shape, "bf16": cuda, "notes": notes, "configurations": []}
    results["peak_table"] = table_peak
    results["peak_measured"] = measured_matmul_rate(device, shape["mm_size"])
    peaks = {"table": table_peak, "measured": results["peak_measured"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        model_dir = build_model_dir(shape, Path(tmp) / "gpt2-124m-random")
        from agents.models import ActorCriticLM

        results["params"] = num_params(ActorCriticLM.from_pretrained(model_dir).lm)
        try:
            results["hf_generate"] = hf_generate_rate(model_dir, shape, device, shape["repeats"])
        except Exception as e:
            traceback.print_exc()
            notes.append(f"HF generate failed: {type(e).__name__}: {str(e)[:200]}")
        for lora in (False, True):
            for checkpointing in (False, True):
                row: dict[str, Any] = {"lora": lora, "gradient_checkpointing": checkpointing}
                if lora not in lora_options:
                    row["skipped"] = "peft not installed"
                elif budget.left() < 60 and not args.dry_run:
                    row["skipped"] = "time budget spent"
                else:
                    try:
                        row = run_configuration(model_dir, shape, device, lora, checkpointing, peaks)
                    except Exception as e:  # one broken stage must not lose the others' figures (a GPU hour)
                        traceback.print_exc()
                        row["skipped"] = f"{type(e).__name__}: {str(e)[:200]}"
                results["configurations"].append(row)
        if budget.left() > 30 or args.dry_run:
            results["torchrun"] = run_torchrun(model_dir, Path(tmp), args.dry_run, timeout=max(budget.left(), 120))
        else:
            results["torchrun"] = {"ok": False, "skipped": "time budget spent"}
    results["total_s"] = budget.seconds - budget.left()
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out / "gpu_check.md").write_text(table)
    print(table, flush=True)
    return results


if __name__ == "__main__":
    main()
