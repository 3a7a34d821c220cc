"""Memory (issue 8, item 5): peak memory of a TokenPPO iteration against one model's plain fine-tuning step.

torch's CPU allocations are invisible to ``tracemalloc``, so each configuration runs in a fresh Python
subprocess and reports its peak resident set size (``ru_maxrss``) minus its resident size just before the
model was built (imports, tokenizer and env already loaded). Configurations:

* ``finetune-full``: plain supervised fine-tuning of one model, one step: HF forward with the LM loss over the
  whole batch (full ``[B, L, V]`` logits, as ``model(labels=...)`` does), backward, Adam step. Params + grads +
  Adam states + activations: the footprint every trainer needs.
* ``finetune-lora``: the same with LoRA adapters (``agents.ppo.lora``, same defaults as TokenPPO's ``lora=True``).
* ``tokenppo-full``: ``TokenPPO`` (policy with value head + frozen reference copy): one rollout (KV-cached
  generation, scoring, reference pass) and one ``train()`` over it.
* ``tokenppo-lora``: the same with ``lora=True`` (the reference is the policy with its adapters disabled).

Run: ``python -m benchmarks.memory`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

CONFIGS = ("finetune-full", "finetune-lora", "tokenppo-full", "tokenppo-lora")


def rss_mb() -> float:
    """Current resident set size in MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_config(config: str, vocab: int, size: str, batch: int, prompt: int, new: int, threads: int = 2) -> dict:
    """Runs in the child process: build, measure the baseline, do one step, report the peak above baseline."""
    import torch

    from benchmarks.common import make_model, make_vec_env, num_params, setup_torch

    import peft  # noqa: F401  (every import happens before the baseline, in every configuration)
    import stable_baselines3  # noqa: F401

    from agents.ppo import TokenPPO
    from agents.ppo.lora import apply_lora

    setup_torch(threads)
    env = make_vec_env(batch, prompt_tokens=prompt, new_tokens=new)
    # Warm up torch's lazily created state (autograd engine, thread pools, kernel workspaces) on a toy model, so
    # the baseline holds it and the peak above the baseline is the configuration's own memory.
    toy = torch.nn.Linear(16, 16)
    toy_opt = torch.optim.AdamW(toy.parameters())
    torch.log_softmax(toy(torch.ones(4, 16)), -1).sum().backward()
    toy_opt.step()
    baseline = rss_mb()
    model = make_model(vocab, size=size)
    if config.startswith("finetune"):
        if config.endswith("lora"):
            apply_lora(model, True)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5)
        ids = torch.randint(5, min(vocab, 4096), (batch, prompt + new))
        loss = model.lm(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
        loss.backward()
        optimizer.step()
    else:
        ppo = TokenPPO(model, env, n_epochs=1, batch_size=batch, kl_coef=0.05, baseline="gae", seed=0,
                       device="cpu", lora=True if config.endswith("lora") else None)
        ppo.collect_rollout()
        ppo.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"config": config, "peak_mb": peak_rss_mb() - baseline, "params": num_params(model), "trainable": trainable}


def main() -> None:
    from benchmarks.common import BATCH, NEW_TOKENS, PROMPT_TOKENS, SYNTHETIC_VOCAB, parser, print_table, setup_torch

    p = parser(__doc__.splitlines()[0], shape=('batch', 'prompt', 'new_tokens', 'vocab'))
    p.add_argument("--size", default="medium", help="default model size (tiny/small/medium)")
    p.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)  # internal: one configuration
    args = p.parse_args()
    setup_torch(args.threads)
    batch, prompt, new, size = args.batch, args.prompt, args.new_tokens, args.size
    if args.quick:
        batch, prompt, new, size = 4, 8, 4, "tiny"
    if args.child:
        print(json.dumps(run_config(args.child, args.vocab, size, batch, prompt, new, args.threads)))
        return
    results = {}
    for config in CONFIGS:
        cmd = [sys.executable, "-m", "benchmarks.memory", "--child", config, "--vocab", str(args.vocab), "--size", size,
               "--batch", str(batch), "--prompt", str(prompt), "--new-tokens", str(new), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{config} failed:\n{out.stderr[-3000:]}")
        results[config] = json.loads(out.stdout.strip().splitlines()[-1])
    full, lora = results["finetune-full"]["peak_mb"], results["finetune-lora"]["peak_mb"]
    rows = [[c, f"{r['params'] / 1e6:.2f}M", f"{r['trainable'] / 1e6:.2f}M", r["peak_mb"], r["peak_mb"] / full,
             r["peak_mb"] / lora] for c, r in results.items()]
    print_table(
        f"Peak memory above baseline (RSS, MiB): vocab {args.vocab}, size {size}, batch {batch}, prompt {prompt}, "
        f"{new} new tokens",
        ["configuration", "params", "trainable", "peak MiB", "x finetune-full (goal: tokenppo-full <= 2.2)",
         "x finetune-lora (goal: tokenppo-lora <= 1.2)"], rows)


if __name__ == "__main__":
    main()
