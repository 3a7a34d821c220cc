"""The part of ``TokenPPO``'s interface that is SB3's: the logger, ``get_env``, ``predict``, the progress bar.

Callbacks, ``EvalCallback`` and scripts written for SB3's algorithms read these names; TokenPPO inherits them
from :class:`SB3Methods` (which reads the host's ``env``, ``config``, ``rollout``, ``policy``, ``sampler``...).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agents.ppo.rollout import next_tokens


class SB3Methods:
    """SB3's ``BaseAlgorithm`` surface, for ``TokenPPO``."""

    _logger: Any = None

    @property
    def logger(self):
        """SB3 ``Logger`` (configured by ``learn`` from ``verbose`` / ``tensorboard_log``, or ``set_logger``)."""
        if self._logger is None:
            from stable_baselines3.common.utils import configure_logger

            self._logger = configure_logger(self.config.verbose, self.config.tensorboard_log, "TokenPPO", True)
        return self._logger

    def set_logger(self, logger) -> None:
        """Use ``logger`` (e.g. ``stable_baselines3.common.logger.configure(dir, ["stdout", "csv", "tensorboard"])``)."""
        self._logger = logger

    def get_env(self):
        """The vector env (SB3 callbacks read it as ``training_env``)."""
        return self.env

    def get_vec_normalize_env(self) -> None:
        """SB3 API (``EvalCallback`` asks): TokenPPO never wraps its env in ``VecNormalize``."""
        return None

    @property
    def n_envs(self) -> int:
        return self.num_envs

    def predict(self, observation: dict, state=None, episode_start=None, deterministic: bool = False):
        """Next token for each observation (SB3's shape): ``(actions [N] int64, None)``.

        Args:
            observation: textgym's dict of ``input_ids`` / ``attention_mask``, ``[L]`` or ``[N, L]`` (floats from
                SB3 wrappers are accepted: ids are exact below 2**24).
            state, episode_start: unused (SB3 signature).
            deterministic: greedy instead of sampling.
        """
        return next_tokens(self.policy, self.sampler, observation, self.generator, deterministic, self._autocast), None

    def _record_iteration(self, metrics: dict[str, float], train_s: float, learn_start: tuple[float, int], log_interval: int) -> None:
        """Log an iteration's metrics with the throughput (``time/...``) and SB3's counters; dump every
        ``log_interval`` iterations."""
        rollout = self.rollout
        metrics["time/tokens_per_sec"] = rollout.buffer.num_tokens / max(rollout.rollout_s + train_s, 1e-9)
        # SB3's fps: env steps (tokens) per second since this learn() started.
        metrics["time/fps"] = float(int((self.num_timesteps - learn_start[1]) / max(time.perf_counter() - learn_start[0], 1e-9)))
        metrics["time/generate_tokens_per_sec"] = rollout.buffer.num_tokens / max(rollout.generate_s, 1e-9)
        for key, value in metrics.items():
            self.logger.record(key, value)
        self.logger.record("time/iterations", self.iteration, exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        if log_interval and self.iteration % log_interval == 0:
            self.logger.dump(step=self.num_timesteps)


def token_progress_bar():
    """SB3's progress bar, advanced by the tokens generated each step instead of ``num_envs``."""
    from stable_baselines3.common.callbacks import ProgressBarCallback

    class TokenProgressBar(ProgressBarCallback):
        def _on_step(self) -> bool:
            self.pbar.update(int(self.locals.get("active", np.ones(1)).sum()))
            return True

    return TokenProgressBar()


def callback_list(model: Any, callback: Any, progress_bar: bool):
    """SB3's ``CallbackList`` over ``callback`` (one, a list, or ``None``) plus the token progress bar, initialised
    on ``model`` as SB3's ``_setup_learn`` does."""
    from stable_baselines3.common.callbacks import CallbackList

    callbacks = list(callback) if isinstance(callback, (list, tuple)) else ([callback] if callback is not None else [])
    if progress_bar:
        callbacks.append(token_progress_bar())
    callback = CallbackList(callbacks)
    callback.init_callback(model)
    return callback
