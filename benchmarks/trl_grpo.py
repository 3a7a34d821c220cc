"""TokenPPO (``baseline="grpo"``) against TRL's ``GRPOTrainer`` (issue 8, item 4): wall time to a reward threshold.

Same task, model, reward and number of generated tokens on both sides:

* task: the benchmark prompts, ``--new-tokens`` new tokens per completion, ``--group-size`` completions per
  prompt, ``--batch`` completions (one optimiser step) per iteration, no KL penalty (TRL's default ``beta=0``),
  one update per batch (TRL's ``num_iterations=1``; TokenPPO's ``n_epochs=1``), the same learning rate;
* model: the default GPT-2-shaped "small" model, the same random initialisation for both;
* reward: the fraction of the completion's letters that are vowels (cheap, dense, learnable from scratch).

Each side trains for ``--seconds`` of wall time (after its set-up); the table shows the time its batch-mean
reward first reaches ``--threshold`` and its mean reward over the last 5 iterations. Needs ``pip install trl``
(which also brings ``datasets`` and ``accelerate``); nothing is downloaded: the model and tokenizer come from
configs and textgym's bundled tokenizer.

Run: ``python -m benchmarks.trl_grpo`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from benchmarks.common import make_model, make_vec_env, parser, print_table, setup_torch

_VOWELS = set("aeiouAEIOU")


def vowel_reward(prompts: list, completions: list, **fields) -> list[float]:
    """Fraction of the completion's letters that are vowels (0 without letters)."""
    scores = []
    for text in completions:
        text = text if isinstance(text, str) else str(text)
        letters = [c for c in text if c.isalpha()]
        scores.append(sum(c in _VOWELS for c in letters) / len(letters) if letters else 0.0)
    return scores


def first_time_at(curve: list[tuple[float, float]], threshold: float) -> float | None:
    """The first time at which the reward reaches ``threshold`` (``None`` if it never does)."""
    return next((t for t, r in curve if r >= threshold), None)


def run_token_ppo(args) -> list[tuple[float, float]]:
    from agents.ppo import TokenPPO

    env = make_vec_env(args.batch, prompt_tokens=args.prompt, new_tokens=args.new_tokens, reward=vowel_reward)
    ppo = TokenPPO(make_model(size=args.size), env, baseline="grpo", group_size=args.group_size, n_epochs=1,
                   batch_size=args.batch, learning_rate=args.lr, kl_coef=0.0, seed=0, device="cpu")
    curve, start = [], time.perf_counter()
    while time.perf_counter() - start < args.seconds and len(curve) < args.max_iterations:
        ppo.collect_rollout()
        reward = float(ppo.buffer.scores.float().mean())
        ppo.train()
        curve.append((time.perf_counter() - start, reward))
    return curve


def run_trl(args) -> list[tuple[float, float]]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from benchmarks.common import prompts
    from textgym.tokenizers import default_tokenizer

    tok = default_tokenizer()
    hf_tok = tok.to_hf()
    hf_tok.padding_side = "left"
    # The same prompt text both sides see: textgym keeps the last ``prompt`` tokens of each prompt.
    texts = [tok.decode(tok.encode(p["prompt"])[-args.prompt:]) for p in prompts()]
    dataset = Dataset.from_list([{"prompt": t} for t in texts] * 100)
    curve: list[tuple[float, float]] = []

    class Recorder(TrainerCallback):
        start = None

        def on_train_begin(self, *a, **k):
            Recorder.start = time.perf_counter()

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "reward" in logs:
                curve.append((time.perf_counter() - Recorder.start, float(logs["reward"])))
            if time.perf_counter() - Recorder.start > args.seconds:
                control.should_training_stop = True

    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=args.batch, num_generations=args.group_size,
            max_completion_length=args.new_tokens, learning_rate=args.lr, beta=0.0, num_iterations=1,
            max_steps=args.max_iterations, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no",
            temperature=1.0, top_p=1.0, top_k=0, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0,
            seed=0, disable_tqdm=True, dataloader_num_workers=0, gradient_checkpointing=False,
            bf16=False,  # TRL defaults to bf16 autocast, 14x slower here (CPU without bf16 units); TokenPPO runs fp32
        )
        trainer = GRPOTrainer(model=make_model(size=args.size).lm, reward_funcs=vowel_reward, args=config,
                              train_dataset=dataset, processing_class=hf_tok, callbacks=[Recorder()])
        trainer.remove_callback(PrinterCallback)  # its per-step dict would bury the table
        trainer.train()
    return curve


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32, help="completions per iteration (one optimiser step)")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--size", default="small")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seconds", type=float, default=150.0, help="wall-time budget of each side")
    p.add_argument("--max-iterations", type=int, default=1000)
    p.add_argument("--threshold", type=float, default=0.45, help="batch-mean reward to reach")
    args = p.parse_args()
    if args.quick:
        args.batch, args.group_size, args.prompt, args.new_tokens, args.size = 4, 2, 8, 4, "tiny"
        args.seconds, args.max_iterations = 5.0, 2
    setup_torch(args.threads)
    curves = {"TokenPPO (baseline='grpo')": run_token_ppo(args)}
    setup_torch(args.threads)
    try:
        curves["TRL GRPOTrainer"] = run_trl(args)
    except ImportError as e:
        print(f"TRL side skipped: {e}. Install it with `pip install trl` (brings datasets and accelerate).")
    rows = []
    # Sample efficiency: both trainers' reward after the same number of iterations (the slower one's count).
    common = min(len(c) for c in curves.values())
    ref = first_time_at(curves["TokenPPO (baseline='grpo')"], args.threshold)
    for name, curve in curves.items():
        reached = first_time_at(curve, args.threshold)
        final = float(np.mean([r for _, r in curve[-5:]])) if curve else float("nan")
        rows.append([name, len(curve), curve[-1][0] if curve else float("nan"), curve[0][1] if curve else float("nan"),
                     final, reached if reached is not None else "not reached",
                     (ref / reached) if ref is not None and reached else "-",
                     len(curve) / curve[-1][0] if curve else float("nan"),
                     float(np.mean([r for _, r in curve[max(0, common - 5):common]])) if common else float("nan")])
    for name, curve in curves.items():  # ~10 points of each curve, to read other thresholds off
        points = curve[:: max(1, len(curve) // 10)] + curve[-1:]
        print(f"{name} reward curve (s: reward): " + ", ".join(f"{t:.0f}: {r:.3f}" for t, r in points))
    print_table(
        f"Time to reward >= {args.threshold} (vowel fraction): batch {args.batch} = {args.batch // args.group_size} "
        f"prompts x {args.group_size}, prompt {args.prompt}, {args.new_tokens} new tokens, lr {args.lr}, "
        f"{args.size} model, budget {args.seconds:.0f} s each",
        ["trainer", "iterations", "seconds", "first reward", "final reward (last 5)", "seconds to threshold",
         "TokenPPO time ratio (x, goal <= 0.5)", "iterations/s",
         f"reward at iteration {common} (mean of 5)"], rows)


if __name__ == "__main__":
    main()
