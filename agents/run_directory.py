"""``textgym train``'s run directory: is the run finished, who holds it, may it be written.

A run directory holds one run. These helpers decide, before anything is written into it, whether a command
may go on: a finished run is left as it is (:func:`finished_message`).
"""

from __future__ import annotations

import json
from pathlib import Path


def saved_timesteps(directory: Path) -> int | None:
    """``num_timesteps`` of a ``TokenPPO.save`` / checkpoint directory (``None`` if it has no readable
    ``token_ppo.json``: missing, or written in part)."""
    try:
        value = json.loads((Path(directory) / "token_ppo.json").read_text())["num_timesteps"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def finished_message(run_dir: Path, total_timesteps: int) -> str | None:
    """What to tell the user when ``run_dir`` already trained for ``total_timesteps`` and wrote ``final/``;
    ``None`` when there is something left to do (training, or writing ``final/``)."""
    done = saved_timesteps(Path(run_dir) / "final")
    if done is None or done < total_timesteps:
        return None
    return (
        f"{run_dir} is finished: {done} of {total_timesteps} timesteps trained and final/ written; nothing to do "
        f"(final/ is left as it is). To train it longer, pass a bigger total: "
        f"textgym train --resume {run_dir} --total-timesteps {max(2 * total_timesteps, done + 1)}"
    )
