"""Text-quality metrics for generated completions: diversity (distinct-n, self-BLEU) and length.

These catch what a reward alone hides: a policy that reward-hacks into one repeated phrase has a high reward,
low distinct-n and a self-BLEU near 1. Model-based metrics (mean reward on a task, perplexity under the
reference model) live in :mod:`agents.evaluation`, next to the models.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al., 2016): unique word n-grams over all word n-grams in ``texts`` (0 if there are none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    total, unique = 0, set()
    for text in texts:
        words = text.split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def self_bleu(texts: Sequence[str], max_samples: int = 200) -> float:
    """Self-BLEU (Zhu et al., 2018) in [0, 1]: each text's sentence BLEU against all the others, averaged.

    High means the texts are alike (low diversity). Uses sacrebleu; at most ``max_samples`` texts are scored
    (self-BLEU is quadratic in their number).
    """
    from sacrebleu.metrics import BLEU

    texts = [t for t in texts if t.strip()][:max_samples]
    if len(texts) < 2:
        return 0.0
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score / 100.0 for i, t in enumerate(texts)]
    return float(np.mean(scores))


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Mean and standard deviation of the length in words."""
    lengths = np.array([len(t.split()) for t in texts], dtype=np.float64)
    if lengths.size == 0:
        return {"length_mean": 0.0, "length_std": 0.0}
    return {"length_mean": float(lengths.mean()), "length_std": float(lengths.std())}


def distinct_completions(texts: Sequence[str]) -> int:
    """How many different completions there are (whitespace at the ends ignored): 1 means every prompt got the
    same text, the plainest sign of a collapsed policy."""
    return len({t.strip() for t in texts})


def text_metrics(texts: Sequence[str]) -> dict[str, float]:
    """All the text-only metrics at once: distinct-1, distinct-2, self-BLEU, distinct completions and length."""
    return {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts),
        "distinct_completions": distinct_completions(texts),
        **length_stats(texts),
    }


# Thresholds of :func:`diversity_warnings`. The relative ones are the bar the built-in recipes are held to
# (issue 13): after RL, sampled distinct-2 at least 0.6x and distinct greedy completions at least half of the
# warm start's.
COLLAPSED_FRACTION = 0.1  # at most this share of distinct completions (for the prompts scored): collapsed
DISTINCT_2_KEPT = 0.6  # sampled distinct-2 after / before below this: diversity fell
DISTINCT_COMPLETIONS_KEPT = 0.5  # distinct completions after / before below this: diversity fell
PERPLEXITY_RUNAWAY = 3.0  # perplexity under the reference after / before above this: the text drifted away
KL_RUNAWAY = 10.0  # nats per completion: far from the reference (typical healthy runs stay below a few nats)
EOS_DROP = 0.25  # EOS rate fell by more than this: completions now run into the length limit


def is_collapsed(metrics: dict) -> bool:
    """Whether ``metrics`` (of :func:`text_metrics` plus ``num_episodes``) describe a collapsed policy: at most
    :data:`COLLAPSED_FRACTION` of the completions are different (always true for 1 distinct completion of many)."""
    n = int(metrics.get("num_episodes", 0))
    k = int(metrics.get("distinct_completions", n))
    return n > 1 and k <= max(1, COLLAPSED_FRACTION * n)


def diversity_warnings(after: dict, before: dict | None = None, label: str = "") -> list[str]:
    """Plain sentences for what a reward alone hides: collapse, lost diversity, drift from the reference.

    Args:
        after: metrics of the policy (``num_episodes``, ``distinct_completions``, ``distinct_2`` and, when known,
            ``perplexity_under_reference``, ``kl_to_reference``, ``eos_rate``).
        before: the same metrics of the starting policy (the warm start); enables the relative checks.
        label: prefixed to each sentence (``"greedy: "``).

    Returns:
        One sentence per problem found; empty when none is.
    """
    out = []
    n, k = int(after.get("num_episodes", 0)), int(after.get("distinct_completions", 0))
    if is_collapsed(after):
        inherited = f" (as was the warm start: {before['distinct_completions']})" if before and is_collapsed(before) else ""
        out.append(f"{label}collapsed: {k} distinct completion{'s' if k != 1 else ''} for {n} prompts{inherited}")
    if before:
        k0 = int(before.get("distinct_completions", 0))
        if k0 and k < DISTINCT_COMPLETIONS_KEPT * k0 and not is_collapsed(after):
            out.append(f"{label}diversity fell: {k0} -> {k} distinct completions for {n} prompts")
        d0, d1 = before.get("distinct_2", 0.0), after.get("distinct_2", 0.0)
        if d0 and d1 < DISTINCT_2_KEPT * d0:
            out.append(f"{label}diversity fell: distinct-2 {d0:.3f} -> {d1:.3f} (below {DISTINCT_2_KEPT}x)")
        p0, p1 = before.get("perplexity_under_reference"), after.get("perplexity_under_reference")
        if p0 and p1 and p1 > PERPLEXITY_RUNAWAY * p0:
            out.append(f"{label}drifted from the reference: perplexity under it {p0:.1f} -> {p1:.1f}")
        e0, e1 = before.get("eos_rate"), after.get("eos_rate")
        if e0 is not None and e1 is not None and e0 - e1 > EOS_DROP:
            out.append(f"{label}EOS rate fell {e0:.2f} -> {e1:.2f}: completions now run to the length limit")
    kl = after.get("kl_to_reference")
    if kl is not None and kl > KL_RUNAWAY:
        out.append(f"{label}KL to the reference ran away: {kl:.1f} nats per completion (> {KL_RUNAWAY:g})")
    return out
