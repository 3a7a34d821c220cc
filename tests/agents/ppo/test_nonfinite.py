"""NaN / inf in a reward, the advantages, a loss or a gradient: the update is skipped and reported with the
offending rows; a run of them stops with NonFiniteError. Reward errors name the reward and the sample."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from gymnasium.vector import AutoresetMode

import agents.ppo.update as update_module  # the module whose loss the tests replace
from agents.ppo.nonfinite import NonFiniteError, NonFiniteGuard, NonFiniteWarning, nonfinite_rows
from tests.agents.ppo.conftest import ToyVectorEnv, count_target
from tests.agents.ppo.test_checkpoint import make

pytestmark = pytest.mark.usefixtures("single_thread")


def weights(algo):
    return [p.detach().clone() for p in algo.policy.parameters()]


def unchanged(before, algo):
    return all(torch.equal(p, q) for p, q in zip(before, algo.policy.parameters()))


class NaNReward:
    """count_target, but NaN for the given calls' completions that hold an odd token (a few rows, not all)."""

    def __init__(self, nan_calls):
        self.nan_calls, self.calls = set(nan_calls), 0

    def __call__(self, prompts, completions, **fields):
        self.calls += 1
        values = count_target(prompts, completions)
        if self.calls in self.nan_calls:
            values[0] = float("nan")
        return values


def test_nan_reward_skips_the_update_names_the_rows_and_training_goes_on():
    # The toy env scores every finished episode on the step it ends; the first reward call of the first rollout
    # gets a NaN for its first completion.
    algo = make(env=ToyVectorEnv(num_envs=8, reward=NaNReward({1})))
    algo.collect_rollout()
    bad_rows = nonfinite_rows(algo.buffer.env_rewards, algo.buffer.response_mask)
    assert len(bad_rows) == 1
    row = bad_rows[0]
    before = weights(algo)
    with pytest.warns(NonFiniteWarning) as record:
        metrics = algo.train()
    message = str(record[0].message)
    prompt = algo.env.prompt_source[int(algo.buffer.prompt_indices[row])]["prompt"]
    assert f"rows [{row}]" in message and "rollout env_rewards" in message and "downstream also non-finite: " in message
    assert repr(prompt) in message and repr(algo.last_rollout["completions"][row]) in message
    assert unchanged(before, algo) and metrics["train/nonfinite_skipped"] == 1.0
    assert algo.nonfinite_guard.events[-1]["rows"] == [row] and algo.nonfinite_guard.consecutive == 1
    algo.collect_rollout()  # the next rollout is clean: the update happens and the streak resets
    metrics = algo.train()
    assert not unchanged(before, algo) and metrics["train/nonfinite_skipped"] == 0.0
    assert algo.nonfinite_guard.consecutive == 0


def test_a_run_of_nonfinite_updates_stops_with_a_clear_error():
    algo = make(env=ToyVectorEnv(num_envs=8, reward=lambda p, c, **k: [float("inf")] * len(c)), max_consecutive_nonfinite=2)
    before = weights(algo)
    with pytest.warns(NonFiniteWarning), pytest.raises(NonFiniteError, match=r"2 in a row; max_consecutive_nonfinite=2.*Stopping rather than training on garbage"):
        algo.learn(1000)
    assert algo.iteration == 2 and unchanged(before, algo)


def test_nonfinite_loss_skips_the_step_and_names_the_quantity(monkeypatch):
    calls = {"n": 0}
    original = update_module.clipped_policy_loss

    def nan_once(*args, **kwargs):
        loss, stats = original(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan"), stats) if calls["n"] == 1 else (loss, stats)

    monkeypatch.setattr(update_module, "clipped_policy_loss", nan_once)
    algo = make()
    algo.collect_rollout()
    before = weights(algo)
    with pytest.warns(NonFiniteWarning, match=r"non-finite loss policy_loss/loss in rows \[.*the loss itself overflowed"):
        algo.train()
    assert unchanged(before, algo) and all(p.grad is None for p in algo.policy.parameters())


def test_nonfinite_gradient_is_never_applied(monkeypatch):
    algo = make()
    algo.collect_rollout()
    before = weights(algo)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, max_norm: torch.tensor(float("nan")))
    with pytest.warns(NonFiniteWarning, match=r"non-finite gradient norm \(nan\)"):
        algo.train()
    assert unchanged(before, algo)


def test_guard_arguments_and_row_finder():
    with pytest.raises(ValueError, match="max_consecutive_nonfinite must be a positive integer"):
        NonFiniteGuard(0)
    with pytest.raises(ValueError, match="max_consecutive_nonfinite"):
        make(max_consecutive_nonfinite=1.5)
    values = torch.tensor([[0.0, float("nan")], [1.0, 2.0], [float("inf"), 0.0]])
    assert nonfinite_rows(values) == [0, 2]
    assert nonfinite_rows(values, torch.tensor([[True, False], [True, True], [True, True]])) == [2]


# ---------------------------------------------------------------------------------------------- reward errors
def textgym_env(reward, **kwargs):
    return gym.make_vec("textgym/Arithmetic-v0", num_envs=4, autoreset_mode=AutoresetMode.DISABLED, reward=reward,
                        max_new_tokens=3, **kwargs)


def broken_reward(prompts, completions, **fields):
    raise ZeroDivisionError("the reward divided by zero")


def test_a_reward_that_raises_names_the_reward_the_sample_and_chains_the_error():
    from textgym.rewards.base import RewardError

    algo = make(policy="default", env=textgym_env(broken_reward), policy_kwargs={"size": "tiny"}, num_envs=4)
    with pytest.raises(RewardError) as info:
        algo.learn(20)
    message = str(info.value)
    assert "Reward 'broken_reward' raised ZeroDivisionError: the reward divided by zero" in message
    assert "first sample: prompt " in message and "completion " in message and "reward_fallback" in message
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_reward_fallback_keeps_training_going_with_a_warning():
    from textgym.rewards.base import RewardWarning

    algo = make(policy="default", env=textgym_env(broken_reward, reward_fallback=-1.0), policy_kwargs={"size": "tiny"}, num_envs=4)
    with pytest.warns(RewardWarning, match=r"Reward 'broken_reward' raised ZeroDivisionError.*Used fallback -1.0"):
        algo.learn(20)
    assert algo.iteration >= 1
    scores = algo.buffer.scores.float()
    assert torch.all(scores == -1.0), scores


# ---------------------------------------------------------------------------------------------- non-finite weights
def test_an_update_that_breaks_the_weights_stops_before_a_checkpoint_is_written_over(tmp_path):
    # learning_rate=1e6: the first optimiser step is finite, but the weights it leaves produce non-finite
    # outputs. The run must stop there, naming the last good checkpoint, and leave that checkpoint as it was.
    from agents.ppo.checkpoint import STATE_TENSORS

    algo = make(learning_rate=1e6, n_epochs=4)
    checkpoint = tmp_path / "last"
    algo.save_checkpoint(str(checkpoint))
    saved = (checkpoint / STATE_TENSORS).read_bytes()

    from stable_baselines3.common.callbacks import BaseCallback

    class EveryIteration(BaseCallback):
        def _on_step(self):
            return True

        def _on_rollout_start(self):
            if self.model.iteration:
                self.model.save_checkpoint(str(checkpoint))

    with pytest.raises(NonFiniteError) as info:
        algo.learn(10_000, callback=EveryIteration())
    message = str(info.value)
    assert f"last good checkpoint is {str(checkpoint)!r} (iteration 0)" in message
    assert "learning rate" in message
    assert (checkpoint / STATE_TENSORS).read_bytes() == saved


def test_nonfinite_weights_stop_the_run_with_the_parameter_name(monkeypatch):
    algo = make(n_epochs=1, batch_size=8)  # one optimiser step: the weights check, not a later loss, finds it
    algo.collect_rollout()
    first = next(name for name, _ in algo.policy.named_parameters())
    original = algo.optimizer.step

    def poisoned_step(*args, **kwargs):
        original(*args, **kwargs)
        with torch.no_grad():
            next(algo.policy.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(algo.optimizer, "step", poisoned_step)
    with pytest.raises(NonFiniteError, match=r"non-finite weights.*no checkpoint was written") as info:
        algo.train()
    assert first in str(info.value)


def test_nonfinite_logits_in_a_rollout_stop_the_run_with_nonfinite_error():
    algo = make()
    with torch.no_grad():
        for p in algo.policy.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"policy's logits"):
        algo.learn(100)
