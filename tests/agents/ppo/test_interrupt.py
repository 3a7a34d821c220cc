"""SIGINT / SIGTERM during learn: the iteration finishes, a checkpoint is written, the run resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from agents.ppo import TokenPPO
from agents.ppo.interrupt import TrainingInterrupted
from tests.agents.ppo.conftest import ToyVectorEnv
from tests.agents.ppo.test_checkpoint import Rows, assert_same_rows, attach, make

pytestmark = pytest.mark.usefixtures("single_thread")


class SignalAt(BaseCallback):
    """Sends ``signum`` to this process at the given env steps (counted over the whole run)."""

    def __init__(self, signum, at_steps):
        super().__init__()
        self.signum, self.at_steps = signum, set(at_steps)

    def _on_step(self):
        if self.n_calls in self.at_steps:
            signal.raise_signal(self.signum)
        return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_finishes_the_iteration_checkpoints_and_resumes_exactly(signum, tmp_path):
    straight = Rows()
    attach(make(), straight).learn(100)

    first = Rows()
    algo = attach(make(), first)
    previous = signal.getsignal(signum)
    with pytest.raises(TrainingInterrupted) as info:
        algo.learn(100, callback=SignalAt(signum, [6]), checkpoint_path=str(tmp_path / "ckpt"))  # mid iteration 2
    assert signal.getsignal(signum) is previous  # handlers restored
    assert info.value.signal_name == signal.Signals(signum).name
    assert info.value.checkpoint_path == str(tmp_path / "ckpt")
    message = str(info.value)
    assert "checkpoint saved to" in message and "load_checkpoint" in message and "reset_num_timesteps=False" in message
    assert algo.iteration == len(first.rows) == 2  # the interrupted iteration completed (rollout + update + log)

    resumed = TokenPPO.load_checkpoint(str(tmp_path / "ckpt"), env=ToyVectorEnv(num_envs=8), device="cpu")
    rest = Rows()
    attach(resumed, rest).learn(100 - resumed.num_timesteps, reset_num_timesteps=False)
    assert_same_rows(straight.rows, first.rows + rest.rows)


def test_second_signal_stops_at_once_and_without_a_path_nothing_is_written(tmp_path):
    algo = make()
    with pytest.raises(KeyboardInterrupt) as info:
        algo.learn(100, callback=SignalAt(signal.SIGINT, [2, 3]), checkpoint_path=str(tmp_path / "ckpt"))
    assert not isinstance(info.value, TrainingInterrupted) and "second signal" in str(info.value)
    assert algo.iteration == 0 and not (tmp_path / "ckpt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(TrainingInterrupted, match="No checkpoint was written.*save_checkpoint"):
        make().learn(100, callback=SignalAt(signal.SIGINT, [2]))


CHILD = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the parent's shell did with SIGINT
    import torch
    torch.set_num_threads(1)
    from stable_baselines3.common.callbacks import BaseCallback
    from tests.agents.ppo.test_checkpoint import make

    class Announce(BaseCallback):
        def _on_step(self):
            return True

        def _on_rollout_start(self):
            if self.model.iteration >= 1:
                print("ITERATION", self.model.iteration, flush=True)

    make().learn(10**9, callback=Announce(), checkpoint_path=sys.argv[1])
""")


def test_sigint_to_a_training_process_leaves_a_checkpoint_that_resumes_exactly(tmp_path):
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ckpt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=os.getcwd())
    try:
        line = child.stdout.readline()
        assert line.startswith("ITERATION"), (line, child.stderr.read() if child.poll() is not None else "")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode != 0
    assert "received SIGINT" in err and "checkpoint saved to" in err and "load_checkpoint" in err, err[-2000:]

    resumed = TokenPPO.load_checkpoint(str(ckpt), env=ToyVectorEnv(num_envs=8), device="cpu")
    done = resumed.iteration
    assert done >= 1
    rest = Rows()
    attach(resumed, rest).learn(30, reset_num_timesteps=False)
    straight = Rows()
    attach(make(), straight).learn(resumed.num_timesteps)
    assert_same_rows(straight.rows[done:], rest.rows)
