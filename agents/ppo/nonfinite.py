"""The non-finite guard: a NaN or inf in a reward, the rollout's log-probs / values / advantages, a loss or the
gradient never reaches the weights.

The update (``agents.ppo.update.ppo_update``) asks the guard before it starts (is the rollout finite?), for
each micro-batch (is the loss finite?) and once per optimiser step (is the gradient norm finite?); after it,
``TokenPPO.train`` checks the weights the steps left (:meth:`NonFiniteGuard.check_weights`). On the first problem the rest of
that iteration's update is skipped (optimiser steps already taken in it were finite and stay), the problem is
reported with the offending rows (buffer row, prompt, completion, which quantity) as a
:class:`NonFiniteWarning` and in :attr:`NonFiniteGuard.events`, and training goes on with the next rollout.
``max_consecutive_nonfinite`` skipped iterations in a row raise :class:`NonFiniteError`: at that point the run
is not recovering by itself and continuing would only burn compute.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import torch

#: The rollout quantities in pipeline order: the first bad one is the likely origin of the others.
ROLLOUT_QUANTITIES = ("env_rewards", "old_logp", "ref_logp", "values", "token_rewards", "advantages", "returns")
MAX_EVENTS = 100  # events kept in NonFiniteGuard.events (the oldest are dropped)


class NonFiniteError(FloatingPointError):
    """The run cannot go on: too many consecutive updates were skipped for NaN / inf values, an update left
    non-finite weights (or weights whose outputs are non-finite), or the policy's logits are non-finite. The
    message names the cause and the last good checkpoint (never written over afterwards)."""


class NonFiniteWarning(RuntimeWarning):
    """An update was skipped because of a NaN / inf value; the message names the rows and the quantity."""


def nonfinite_rows(values: torch.Tensor, mask: torch.Tensor | None = None) -> list[int]:
    """Indices of the rows (first dimension) of ``values`` holding a NaN or inf where ``mask`` is True."""
    bad = ~torch.isfinite(values)
    if mask is not None:
        bad = bad & mask.bool()
    if bad.ndim == 0:
        return [0] if bool(bad) else []
    return bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist()


class NonFiniteGuard:
    """Detects, reports and counts non-finite values in ``TokenPPO``'s update.

    Args:
        max_consecutive: this many skipped iterations in a row raise :class:`NonFiniteError` (>= 1).
        describe_row: buffer row -> ``{"row", "prompt", "completion"}`` of the current rollout, for the
            messages (``None``: rows are reported by number only).

    Attributes:
        consecutive: skipped iterations in a row so far (0 after a clean one); saved in checkpoints.
        events: the last :data:`MAX_EVENTS` problems as dicts (``iteration``, ``quantity``, ``rows``,
            ``samples``: ``[{row, prompt, completion}]``, ``message``).
    """

    def __init__(self, max_consecutive: int = 3, describe_row: Callable[[int], dict[str, Any]] | None = None):
        if isinstance(max_consecutive, bool) or not isinstance(max_consecutive, int) or max_consecutive < 1:
            raise ValueError(f"max_consecutive_nonfinite must be a positive integer, got {max_consecutive!r}.")
        self.max_consecutive = max_consecutive
        self.describe_row = describe_row
        self.consecutive = 0
        self.events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ checks (return a problem or None)
    def check_rollout(self, buf: Any) -> dict[str, Any] | None:
        """The rollout's rewards, log-probs, values and advantages, on generated tokens only."""
        mask = buf.response_mask
        found = {}
        for name in ROLLOUT_QUANTITIES:
            value = getattr(buf, name, None)
            if value is not None and (rows := nonfinite_rows(value, mask if value.shape == mask.shape else None)):
                found[name] = rows
        if not found:
            return None
        origin = next(iter(found))
        downstream = [f"{k} (rows {_rows(v)})" for k, v in found.items() if k != origin]
        detail = f"; downstream also non-finite: {', '.join(downstream)}" if downstream else ""
        return self._problem(f"rollout {origin}", found[origin], detail)

    def check_loss(self, rows: torch.Tensor, losses: dict[str, torch.Tensor], per_row: dict[str, torch.Tensor]) -> dict[str, Any] | None:
        """A micro-batch's losses; ``per_row`` (``logp``, ``entropy``, ``values`` ``[B, T]``) locates the rows."""
        bad = [name for name, value in losses.items() if not bool(torch.isfinite(value.detach()).all())]
        if not bad:
            return None
        global_rows = rows.tolist()
        located = sorted({global_rows[i] for t in per_row.values() for i in nonfinite_rows(t.detach())})
        where = located or global_rows
        detail = "" if located else " (every row's values are finite: the loss itself overflowed)"
        return self._problem("loss " + "/".join(bad), where, detail)

    def check_grad_norm(self, norm: torch.Tensor, rows: torch.Tensor) -> dict[str, Any] | None:
        if math.isfinite(float(norm)):
            return None
        return self._problem(f"gradient norm ({float(norm)})", rows.tolist(), "")

    # ------------------------------------------------------------------ bookkeeping
    def end_iteration(self, iteration: int, problem: dict[str, Any] | None, last_checkpoint: tuple[str, int] | None) -> None:
        """Reset the streak after a clean iteration; warn, record and maybe raise after a skipped one.

        Args:
            iteration: the iteration that just ended (named in the messages).
            problem: what made it skip its update, or ``None``.
            last_checkpoint: ``(path, iteration)`` of the run's last checkpoint, named where the run must stop.
        """
        if problem is None:
            self.consecutive = 0
            return
        self.consecutive += 1
        message = (
            f"TokenPPO iteration {iteration}: skipped the update: non-finite {problem['quantity']} in "
            f"{problem['text']} ({self.consecutive} in a row; max_consecutive_nonfinite={self.max_consecutive})."
        )
        problem = {**problem, "iteration": iteration, "message": message}
        self.events = [*self.events[-(MAX_EVENTS - 1) :], problem]
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(
                f"{message} Stopping rather than training on garbage. Usual causes: a reward that returns NaN/inf "
                "(textgym envs reject those unless reward_fallback is set), a learning rate so high that the losses "
                f"diverge, bf16 overflow. {last_good_checkpoint(last_checkpoint)}"
            )
        warnings.warn(message, NonFiniteWarning, stacklevel=3)

    def fatal(self, iteration: int, cause: str, last_checkpoint: tuple[str, int] | None) -> NonFiniteError:
        """The error that stops the run at once: the weights (or what they compute) are no longer finite, so no
        later iteration could recover and no checkpoint may be written from them."""
        return NonFiniteError(
            f"TokenPPO iteration {iteration}: {cause}. Stopping before anything is saved from these weights. "
            "Usual causes: a learning rate so high that one step diverges (lower ppo.learning_rate), bf16 overflow, "
            f"a corrupt model. {last_good_checkpoint(last_checkpoint)}"
        )

    def check_weights(self, iteration: int, problem: dict[str, Any] | None, steps: int, policy: torch.nn.Module,
                      any_true: Callable[[bool], bool], last_checkpoint: tuple[str, int] | None) -> None:
        """After an update that took ``steps`` optimiser steps: raise :meth:`fatal` if it found a ``problem`` after
        a step, or if the policy's weights are non-finite on any rank (``any_true`` combines the ranks). The
        rollout's own log-probs and values were finite under the weights it started from, so a problem now means
        the steps broke the weights; skipping would sample (and checkpoint) from them next."""
        if problem is not None and steps:
            raise self.fatal(iteration, f"after {steps} optimiser step(s) of this update, non-finite "
                             f"{problem['quantity']} in {problem['text']}: the update made the policy's outputs "
                             "non-finite", last_checkpoint)
        if steps and any_true(bool(bad := nonfinite_parameters(policy))):
            names = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "") if bad else "on another rank"
            raise self.fatal(iteration, f"non-finite weights after the update's optimiser steps ({names})", last_checkpoint)

    def state_dict(self) -> dict[str, Any]:
        return {"consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.consecutive = int(state["consecutive"])

    def on_another_rank(self) -> dict[str, Any]:
        """The problem as seen by a rank whose own rows were finite (distributed runs skip together)."""
        return self._problem("loss on another rank", [], " (that rank's warning names the rows)")

    # ------------------------------------------------------------------ helpers
    def _problem(self, quantity: str, rows: list[int], detail: str) -> dict[str, Any]:
        describe = self.describe_row or (lambda row: {"row": row, "prompt": None, "completion": None})
        samples = [describe(r) for r in rows]
        shown = "; ".join(f"row {s['row']}: prompt {s['prompt']!r:.80} -> completion {s['completion']!r:.80}" for s in samples[:3])
        more = f"; and {len(rows) - 3} more row(s)" if len(rows) > 3 else ""
        return {"quantity": quantity, "rows": rows, "samples": samples, "text": f"rows {_rows(rows)} ({shown}{more}){detail}"}


def last_good_checkpoint(last: tuple[str, int] | None) -> str:
    """Where to resume from: the run's last checkpoint (``TokenPPO.last_checkpoint``: ``(path, iteration)``),
    written from finite weights."""
    if last is None:
        return "In this process no checkpoint was written (nor loaded) yet: fix the cause and start again."
    path, iteration = last
    return (
        f"The last good checkpoint is {str(path)!r} (iteration {iteration}): fix the cause and resume from it "
        "(TokenPPO.load_checkpoint / `textgym train --resume RUN_DIR`)."
    )


def nonfinite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of ``module``'s trainable parameters holding a NaN or inf in this process's part (FSDP: the local
    shard; combine ranks with ``any_true``). One fused max-norm over all of them first: the names are only
    looked up when it is non-finite."""
    local = {name: _local(p) for name, p in module.named_parameters() if p.requires_grad}
    local = {name: t for name, t in local.items() if t.numel()}  # the inf-norm of an empty tensor is an error
    if not local or math.isfinite(float(torch.nn.utils.get_total_norm(list(local.values()), float("inf")))):
        return []
    return [name for name, t in local.items() if not bool(torch.isfinite(t).all())]


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor  # an FSDP DTensor's own shard


def _rows(rows: list[int]) -> str:
    return str(rows if len(rows) <= 10 else [*rows[:10], "..."])
