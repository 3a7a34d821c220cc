"""Training curves as a PNG: reward, KL to the reference and entropy, read from a run's ``progress.csv``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

#: (CSV columns, panel title). The first column found in the CSV for each panel is drawn; a leading "-" draws
#: the column negated (SB3's ``train/entropy_loss`` is minus the entropy). The later names are those of runs
#: logged before textgym used SB3's tags.
PANELS: Sequence[tuple[Sequence[str], str]] = (
    (("rollout/ep_rew_mean", "rollout/reward_mean"), "Task reward (mean per episode)"),
    (("train/kl", "rollout/kl"), "KL to the reference (per sequence)"),
    (("-train/entropy_loss", "train/entropy"), "Entropy (per token, nats)"),
)
X_COLUMNS = ("time/total_timesteps", "time/iterations")


def read_progress(path: str | Path) -> dict[str, list[float]]:
    """SB3's ``progress.csv`` as column -> floats (rows missing a column are skipped for that column)."""
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value not in ("", None):
                    try:
                        columns.setdefault(key, []).append(float(value))
                    except ValueError:
                        pass
    return columns


def panel_values(data: dict[str, list[float]], columns: Sequence[str]) -> list[float] | None:
    """The values of the first of ``columns`` in ``data`` (negated for a ``"-"``-prefixed name), or ``None``."""
    for column in columns:
        name = column.lstrip("-")
        if name in data:
            return [-v for v in data[name]] if column.startswith("-") else data[name]
    return None


def plot_training_curves(progress_csv: str | Path, output_png: str | Path, title: str | None = None) -> Path:
    """Draw the panels above side by side against timesteps and save a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # headless: runs on CI and servers
    import matplotlib.pyplot as plt

    data = read_progress(progress_csv)
    x_key = next((k for k in X_COLUMNS if k in data), None)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.8), constrained_layout=True)
    for ax, (keys, panel_title) in zip(axes, PANELS):
        y = panel_values(data, keys)
        ax.set_title(panel_title, fontsize=11)
        ax.grid(alpha=0.3)
        if y is None:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
            continue
        x = data[x_key][: len(y)] if x_key else list(range(1, len(y) + 1))
        ax.plot(x[: len(y)], y[: len(x)], marker="o", markersize=3, linewidth=1.5, color="tab:blue")
        ax.set_xlabel("environment steps (tokens)" if x_key == "time/total_timesteps" else "iteration")
    if title:
        fig.suptitle(title, fontsize=12)
    output_png = Path(output_png)
    fig.savefig(output_png, dpi=110)
    plt.close(fig)
    return output_png
