"""SIGINT / SIGTERM during ``TokenPPO.learn``: finish the current iteration, write a checkpoint, stop.

The first signal only sets a flag: the iteration in progress (rollout + update) completes, so the checkpoint
is taken at an iteration boundary and a resumed run continues exactly (``agents.ppo.checkpoint``). A second
signal stops at once with ``KeyboardInterrupt`` (the last checkpoint written stays as it was: checkpoints are
replaced atomically). Handlers are installed only in the main thread (Python delivers signals there) and the
previous handlers are restored when ``learn`` returns.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class TrainingInterrupted(KeyboardInterrupt):
    """``learn`` stopped on SIGINT / SIGTERM after finishing an iteration.

    A ``KeyboardInterrupt`` (so ``except Exception`` does not swallow it), with:

    Attributes:
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
        checkpoint_path: where the checkpoint was written (``None`` if ``learn`` got no ``checkpoint_path``).
    """

    def __init__(self, message: str, signal_name: str, checkpoint_path: str | None):
        super().__init__(message)
        self.signal_name, self.checkpoint_path = signal_name, checkpoint_path

    def __str__(self) -> str:
        return str(self.args[0])


class GracefulInterrupt:
    """Context manager: while active, SIGINT / SIGTERM set :attr:`requested` (the signal's name) instead of
    raising; a second signal raises ``KeyboardInterrupt``. Outside the main thread it does nothing."""

    def __init__(self, signals: tuple = SIGNALS):
        self.signals = signals
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # the user (or a shell running us in the background) chose to ignore it: respect that
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            self._restore()
            raise KeyboardInterrupt(f"second signal ({name}): stopped at once, no checkpoint written for this iteration")
        self.requested = name
        # os.write: print() inside a signal handler can hit a reentrant write to the same stream.
        os.write(2, (
            f"\nTokenPPO: received {name}: finishing the current iteration, then saving a checkpoint and stopping "
            "(send it again to stop at once).\n"
        ).encode())


def stop_after_signal(signal_name: str, where: str, checkpoint_path: str | os.PathLike | None,
                      save_checkpoint: Callable[[str], str]) -> None:
    """Write the checkpoint (``save_checkpoint(checkpoint_path)``, if a path was given) and raise
    :class:`TrainingInterrupted` saying how to resume; ``where`` says when the run stopped."""
    if checkpoint_path is None:
        raise TrainingInterrupted(
            f"Training stopped by {signal_name} {where}. No checkpoint was written: pass "
            "learn(..., checkpoint_path=DIR) to have one, or call model.save_checkpoint(DIR) now (the model in "
            "memory is consistent).",
            signal_name, None,
        )
    path = str(save_checkpoint(str(checkpoint_path)))
    raise TrainingInterrupted(
        f"Training stopped by {signal_name} {where}; checkpoint saved to {path}. Resume with "
        f"TokenPPO.load_checkpoint({path!r}, env=...).learn(total_timesteps - model.num_timesteps, "
        "reset_num_timesteps=False).",
        signal_name, path,
    )
