"""What ``textgym train`` shows and records about a run: the before / after generations and held-out metrics,
and the warnings (collapse, lost diversity, drift) in plain words."""

from __future__ import annotations

from typing import Any

from agents.evaluation import evaluate_policy_text
from textgym.evaluation import diversity_warnings


def evaluate_greedy_and_sampled(algo: Any, env: Any, episodes: int, reference: Any = None) -> dict[str, dict]:
    """``{"greedy": metrics, "sampled": metrics}`` of :func:`agents.evaluation.evaluate_policy_text` on ``env``:
    the reward next to its diversity (and, with ``reference``, perplexity and KL under it)."""
    return {
        mode: evaluate_policy_text(algo, env, episodes, deterministic=mode == "greedy", reference=reference)
        for mode in ("greedy", "sampled")
    }


def print_samples(before: list[dict], after: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Generations before and after RL (same prompts)", show_lines=True)
    for column in ("prompt", "before RL", "reward", "after RL", "reward"):
        table.add_column(column, overflow="fold")
    for b, a in zip(before, after):
        table.add_row(b["prompt"], b["completion"], f"{b['reward']:.2f}", a["completion"], f"{a['reward']:.2f}")
    Console().print(table)


def before_after_warnings(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """Collapse, lost diversity and drift, greedy and sampled (:func:`textgym.evaluation.diversity_warnings`)."""
    return [w for mode in after for w in diversity_warnings(after[mode], before.get(mode), label=f"{mode}: ")]


#: rows of the before/after table: (metrics key, label, format)
SUMMARY_ROWS = (
    ("reward_mean", "test reward", "{:.3f}"),
    ("distinct_completions", "distinct completions", "{:d}"),
    ("distinct_2", "distinct-2", "{:.3f}"),
    ("self_bleu", "self-BLEU", "{:.3f}"),
    ("eos_rate", "EOS rate", "{:.2f}"),
    ("perplexity_under_reference", "perplexity under the reference", "{:.2f}"),
    ("kl_to_reference", "KL to the reference (nats/completion)", "{:.2f}"),
    ("agent_turns_mean", "agent turns per episode", "{:.2f}"),  # multi-turn envs only
)


def print_before_after(before: dict[str, dict], after: dict[str, dict], warnings: list[str], title: str | None = None) -> None:
    """One table of the held-out metrics before and after RL, greedy and sampled, then the warnings in plain words."""
    from rich.console import Console
    from rich.table import Table

    n = next(iter(after.values()))["num_episodes"]
    table = Table(title=title or f"Held-out test prompts ({n}), before and after RL")
    table.add_column("", no_wrap=True)
    for column in ("greedy before", "greedy after", "sampled before", "sampled after"):
        table.add_column(column, justify="right")

    def cell(metrics: dict | None, key: str, fmt: str) -> str:
        value = (metrics or {}).get(key)
        return "-" if value is None else fmt.format(int(value) if fmt == "{:d}" else value)

    for key, label, fmt in SUMMARY_ROWS:
        if all(key not in (side.get(mode) or {}) for mode in ("greedy", "sampled") for side in (before, after)):
            continue  # a figure this env does not have (agent turns on a single-turn env)
        table.add_row(label, *(cell(side.get(mode), key, fmt) for mode in ("greedy", "sampled") for side in (before, after)))
    console = Console()
    console.print(table)
    for warning in warnings:
        console.print(f"[bold red]WARNING[/] {warning}", highlight=False)
