"""Masks that mean something: with ``restrict_actions=True`` neither sb3-contrib's MaskablePPO nor TokenPPO ever
samples a token outside the task's alphabet."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)
from agents.ppo import TokenPPO

ENV = "textgym/Arithmetic-v0"


@pytest.mark.parametrize("nlpo", [None, {"nlpo_top_p": 0.9, "nlpo_min_tokens": 4}], ids=["ppo", "nlpo"])
def test_tokenppo_samples_only_allowed_tokens(nlpo):
    env = gym.make_vec(ENV, num_envs=8, restrict_actions=True, autoreset_mode="Disabled")
    allowed = env.unwrapped.action_masks()[0]
    algo = TokenPPO("default", env, policy_kwargs={"size": "tiny"}, batch_size=8, n_epochs=1, seed=0, device="cpu",
                    **(nlpo or {}))
    algo.learn(100)
    ids, mask = algo.buffer.response_ids.cpu().numpy(), algo.buffer.response_mask.cpu().numpy().astype(bool)
    assert mask.sum() > 20 and allowed[ids[mask]].all()
    # The same untrained policy without the mask writes other tokens (so the assertion above means something).
    free = TokenPPO("default", ENV, num_envs=8, policy_kwargs={"size": "tiny"}, batch_size=8, seed=0, device="cpu")
    free.learn(100)
    ids, mask = free.buffer.response_ids.cpu().numpy(), free.buffer.response_mask.cpu().numpy().astype(bool)
    assert not allowed[ids[mask]].all()


def test_maskable_ppo_samples_only_allowed_tokens():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from stable_baselines3.common.callbacks import BaseCallback

    class Actions(BaseCallback):
        def __init__(self):
            super().__init__()
            self.taken = []

        def _on_step(self):
            self.taken.extend(np.asarray(self.locals["actions"]).ravel().tolist())
            return True

    env = gym.make(ENV, restrict_actions=True)
    allowed = env.unwrapped.action_masks()
    # MaskablePPO's own policy (an MLP over the ids): it reads env.action_masks() at every step.
    model = sb3_contrib.MaskablePPO("MultiInputPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0, device="cpu")
    record = Actions()
    model.learn(64, callback=record)
    assert len(record.taken) >= 64 and allowed[record.taken].all()
