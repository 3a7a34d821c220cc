"""TrainingState (agents/ppo/state.py): the whole training state as JSON + tensors and back."""

import json
import random

import numpy as np
import torch

from agents.ppo import TokenPPO
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model


def make() -> TokenPPO:
    return TokenPPO(tiny_model(), ToyVectorEnv(), kl_coef=0.1, kl_target=0.5, batch_size=4, n_epochs=1, seed=0,
                    device="cpu")


def test_state_dict_is_json_plus_tensors_and_loads_into_a_fresh_run():
    algo = make()
    algo.learn(40)
    state, tensors = algo.state.state_dict()
    json.dumps(state)
    assert set(state["modules"]) == {"policy", "reference"} and all(torch.is_tensor(t) for t in tensors.values())
    fresh = make()
    fresh.state.load_state_dict(json.loads(json.dumps(state)), tensors)
    assert (fresh.num_timesteps, fresh.iteration, fresh._first_reset) == (algo.num_timesteps, algo.iteration, False)
    assert fresh.kl_controller.state_dict() == algo.kl_controller.state_dict()
    for p, q in zip(algo.policy.parameters(), fresh.policy.parameters()):
        assert torch.equal(p, q)
    # The random streams continue identically: the next draws agree.
    assert fresh.np_random.integers(1 << 30) == algo.np_random.integers(1 << 30)
    assert torch.equal(torch.rand(3, generator=fresh.generator), torch.rand(3, generator=algo.generator))


def test_preserved_rng_restores_every_stream():
    algo = make()
    with algo.state.preserved_rng():
        before = (random.random(), np.random.rand(), torch.rand(1).item(), algo.np_random.random(),
                  torch.rand(1, generator=algo.generator).item())
    after = (random.random(), np.random.rand(), torch.rand(1).item(), algo.np_random.random(),
             torch.rand(1, generator=algo.generator).item())
    assert before == after


def test_token_ppo_attributes_read_and_write_the_state():
    algo = make()
    algo.num_timesteps = 7
    assert algo.state.num_timesteps == 7 and algo.ref_policy is algo.state.reference and algo.policy is algo.state.policy
