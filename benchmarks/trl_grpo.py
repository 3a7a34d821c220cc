"""TokenPPO (``baseline="grpo"``) against TRL's ``GRPOTrainer``: wall time to a reward threshold, seeded and
interleaved.

The same task, model, reward, loss and token budget on both sides:

* task: the benchmark prompts, ``--new-tokens`` new tokens per completion, ``--group-size`` completions per
  prompt, ``--batch`` completions (one optimiser step) per iteration, ``--iterations`` iterations each (the same
  number of sampled completions), one update per batch (TRL's ``num_iterations=1``; TokenPPO's ``n_epochs=1``),
  the same constant learning rate, temperature 1 and no truncation of the sampling distribution;
* loss: TRL's default, ``loss_type="dapo"`` (a token mean over the batch) with group-std scaling
  (``scale_rewards="group"``), clip 0.2 and no KL (``beta=0``); TokenPPO the same: ``loss_aggregation="token_mean"``,
  GRPO's group scaling, ``clip_range=0.2``, ``kl_coef=0`` and no second whitening (``normalize_advantage=False``,
  which TRL does not do);
* model: the default GPT-2-shaped "small" model, initialised from the seed (the same weights on both sides);
* reward: the fraction of the completion's letters that are vowels (cheap, dense, learnable from scratch).

Runs interleave (TokenPPO seed 0, TRL seed 0, TokenPPO seed 1, ...) so both sides share the machine's load; the
load average is printed at the start and the end. The table gives, per side, the time its batch-mean reward first
reaches ``--threshold`` and its mean reward over the last 5 iterations (mean +- std over seeds), and the median
per-seed ratio of the times. Needs ``pip install trl`` (which also brings ``datasets`` and ``accelerate``);
nothing is downloaded: the model and tokenizer come from configs and textgym's bundled tokenizer.

Run: ``python -m benchmarks.trl_grpo`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks.common import make_model, make_vec_env, parser, print_table, setup_torch

_VOWELS = set("aeiouAEIOU")
TOKEN_PPO, TRL = "TokenPPO (baseline='grpo')", "TRL GRPOTrainer"


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


def run_token_ppo(args, seed: int) -> list[tuple[float, float]]:
    """``args.iterations`` TokenPPO iterations: ``(seconds since the first rollout, batch-mean reward)`` each."""
    from agents.ppo import TokenPPO

    env = make_vec_env(args.batch, prompt_tokens=args.prompt, new_tokens=args.new_tokens, reward=vowel_reward)
    ppo = TokenPPO(make_model(size=args.size, seed=seed), env, baseline="grpo", group_size=args.group_size,
                   n_epochs=1, batch_size=args.batch, learning_rate=args.lr, kl_coef=0.0, clip_range=0.2,
                   loss_aggregation="token_mean", normalize_advantage=False, seed=seed, device="cpu")
    curve, start = [], time.perf_counter()
    for _ in range(args.iterations):
        ppo.collect_rollout()
        reward = float(ppo.buffer.scores.float().mean())
        ppo.train()
        curve.append((time.perf_counter() - start, reward))
    return curve


def run_trl(args, seed: int) -> list[tuple[float, float]]:
    """``args.iterations`` GRPOTrainer steps: ``(seconds since training began, batch-mean reward)`` each."""
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

    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=args.batch, num_generations=args.group_size,
            max_completion_length=args.new_tokens, learning_rate=args.lr, beta=0.0, num_iterations=1,
            loss_type="dapo", scale_rewards="group", epsilon=0.2,
            max_steps=args.iterations, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no",
            temperature=1.0, top_p=1.0, top_k=0, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0,
            seed=seed, disable_tqdm=True, dataloader_num_workers=0, gradient_checkpointing=False,
            bf16=False,  # TRL defaults to bf16 autocast, 14x slower here (CPU without bf16 units); TokenPPO runs fp32
        )
        trainer = GRPOTrainer(model=make_model(size=args.size, seed=seed).lm, reward_funcs=vowel_reward, args=config,
                              train_dataset=dataset, processing_class=hf_tok, callbacks=[Recorder()])
        trainer.remove_callback(PrinterCallback)  # its per-step dict would bury the table
        trainer.train()
    return curve


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} +- {statistics.stdev(values):.2g}"


def summary_rows(curves: dict[str, list[list[tuple[float, float]]]], threshold: float) -> list[list]:
    """One row per trainer: iterations, time to threshold and final reward over seeds, the per-seed time ratio
    (TokenPPO's over this trainer's, paired by seed), iterations per second."""
    rows = []
    ours = [first_time_at(c, threshold) for c in curves[TOKEN_PPO]]
    for name, runs in curves.items():
        reached = [first_time_at(c, threshold) for c in runs]
        ratios = [a / b for a, b in zip(ours, reached) if a is not None and b]
        rows.append([
            name, statistics.median(len(c) for c in runs),
            f"{sum(r is not None for r in reached)}/{len(runs)}",
            _mean_std([r for r in reached if r is not None]),
            _mean_std([float(np.mean([r for _, r in c[-5:]])) for c in runs if c]),
            f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})" if ratios else "-",
            _mean_std([len(c) / c[-1][0] for c in runs if c]),
        ])
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32, help="completions per iteration (one optimiser step)")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--size", default="small")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--iterations", type=int, default=120, help="iterations (batches) per run, the same both sides")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds, one run per side each")
    p.add_argument("--threshold", type=float, default=0.45, help="batch-mean reward to reach")
    args = p.parse_args()
    if args.quick:
        args.batch, args.group_size, args.prompt, args.new_tokens, args.size = 4, 2, 8, 4, "tiny"
        args.iterations, args.seeds = 2, args.seeds[:1]
    setup_torch(args.threads)
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    curves: dict[str, list] = {TOKEN_PPO: [], TRL: []}
    for seed in args.seeds:  # interleaved: A, B, A, B...
        setup_torch(args.threads)
        curves[TOKEN_PPO].append(run_token_ppo(args, seed))
        setup_torch(args.threads)
        try:
            curves[TRL].append(run_trl(args, seed))
        except ImportError as e:
            print(f"TRL side skipped: {e}. Install it with `pip install trl` (brings datasets and accelerate).")
            del curves[TRL]
            break
    for name, runs in curves.items():
        for seed, curve in zip(args.seeds, runs):  # ~10 points of each curve, to read other thresholds off
            points = curve[:: max(1, len(curve) // 10)] + curve[-1:]
            print(f"* {name}, seed {seed} (s: reward): " + ", ".join(f"{t:.0f}: {r:.3f}" for t, r in points))
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print_table(
        f"Time to reward >= {args.threshold} (vowel fraction): batch {args.batch} = {args.batch // args.group_size} "
        f"prompts x {args.group_size}, prompt {args.prompt}, {args.new_tokens} new tokens, lr {args.lr}, "
        f"{args.size} model, {args.iterations} iterations each, seeds {' '.join(map(str, args.seeds))}, "
        f"interleaved; load average {load_start} at the start, {load_end} at the end",
        ["trainer", "iterations", "reached", "seconds to threshold", "final reward (last 5)",
         "TokenPPO time ratio, median (per seed) (goal <= 0.5)", "iterations/s"],
        summary_rows(curves, args.threshold))


if __name__ == "__main__":
    main()
