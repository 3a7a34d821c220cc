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


def text_metrics(texts: Sequence[str]) -> dict[str, float]:
    """All the text-only metrics at once: distinct-1, distinct-2, self-BLEU and length."""
    return {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts),
        **length_stats(texts),
    }
