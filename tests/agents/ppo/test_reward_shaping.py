"""TokenPPO's per-token rewards and advantages on hand-made episodes, checked against numbers worked out by hand.

Two episodes of an arithmetic-like task (T = 3 new tokens at most):

* A answers in one token then EOS (terminated): 2 tokens, task reward 1 on its EOS;
* B writes 3 tokens and hits the limit (truncated, no EOS): task reward 0.5 on its last token.

The shortest episodes are where an off-by-one in credit assignment hides (the task reward on the wrong token,
the missing-EOS penalty on a padded column, the KL of padding counted): these tests pin every entry.
"""

import pytest
import torch

from agents.ppo import TokenPPO
from agents.ppo.buffer import SequenceRolloutBuffer
from agents.ppo.scoring import rewards_and_advantages
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model

BETA, EOS_PENALTY = 0.1, 0.2
# log pi_old and log pi_ref of the sampled tokens; k1 KL = their difference.
OLD = torch.tensor([[-1.0, -0.1, 0.0], [-2.0, -1.5, -0.5]])
REF = torch.tensor([[-1.5, -0.1, 0.0], [-1.0, -1.5, -0.3]])
VALUES = torch.tensor([[0.4, 0.6, 0.0], [0.2, 0.3, 0.1]])
MASK = torch.tensor([[True, True, False], [True, True, True]])


def episodes() -> SequenceRolloutBuffer:
    env_rewards = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    return SequenceRolloutBuffer(
        prompt_ids=torch.ones(2, 2, dtype=torch.int32), prompt_mask=torch.ones(2, 2, dtype=torch.bool),
        response_ids=torch.tensor([[7, 1, 0], [5, 6, 7]], dtype=torch.int32), response_mask=MASK,
        env_rewards=env_rewards, old_logp=OLD.clone(), ref_logp=REF.clone(), values=VALUES.clone(),
        terminated=torch.tensor([True, False]), prompt_indices=torch.tensor([0, 0]),
    )


def algo(**kwargs) -> TokenPPO:
    kwargs = {"kl_coef": BETA, "kl_estimator": "k1", "missing_eos_penalty": EOS_PENALTY, "normalize_advantage": False,
              "seed": 0, **kwargs}
    return TokenPPO(tiny_model(0), ToyVectorEnv(num_envs=2), **kwargs)


def test_token_rewards_put_task_reward_and_eos_penalty_on_the_last_generated_token():
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(gamma=1.0, gae_lambda=0.5).config)
    # k1 KL per token: A [0.5, 0, -] ; B [-1.0, 0, -0.2].  r_t = env reward - beta * KL (- penalty at B's end).
    expected = torch.tensor([[-0.05, 1.0, 0.0], [0.1, 0.0, 0.5 + 0.02 - EOS_PENALTY]])
    torch.testing.assert_close(buf.token_rewards, expected)


def test_gae_on_a_two_token_episode_matches_the_hand_computation():
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(gamma=1.0, gae_lambda=0.5).config)
    # A: delta_1 = 1.0 + 0 - 0.6 = 0.4            -> A_1 = 0.4 (nothing after the EOS)
    #    delta_0 = -0.05 + 0.6 - 0.4 = 0.15      -> A_0 = 0.15 + 0.5 * 0.4 = 0.35
    # B: delta_2 = 0.32 + 0 - 0.1 = 0.22          -> A_2 = 0.22
    #    delta_1 = 0.0 + 0.1 - 0.3 = -0.2        -> A_1 = -0.2 + 0.5 * 0.22 = -0.09
    #    delta_0 = 0.1 + 0.3 - 0.2 = 0.2         -> A_0 = 0.2 + 0.5 * -0.09 = 0.155
    expected_adv = torch.tensor([[0.35, 0.4, 0.0], [0.155, -0.09, 0.22]])
    torch.testing.assert_close(buf.advantages, expected_adv)
    torch.testing.assert_close(buf.returns, (expected_adv + VALUES) * MASK)


def test_rloo_gives_every_token_its_sequence_advantage():
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(baseline="rloo", group_size=2).config)
    # Sequence returns (shaped rewards summed): A = 0.95, B = 0.42; leave-one-out with G = 2: A - B and B - A.
    expected = torch.tensor([[0.53, 0.53, 0.0], [-0.53, -0.53, -0.53]])
    torch.testing.assert_close(buf.advantages, expected)
    assert torch.count_nonzero(buf.returns) == 0  # no critic to fit


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_padding_carries_no_reward_and_no_kl(estimator):
    buf = episodes()
    buf.old_logp[0, 2], buf.ref_logp[0, 2] = -3.0, -0.1  # garbage in the padded column must not leak
    ppo = algo(kl_estimator=estimator)
    buf, rollout_kl = rewards_and_advantages(buf, ppo.kl_controller.value, ppo.config)
    assert buf.token_rewards[0, 2] == 0 and buf.advantages[0, 2] == 0
    per_sequence = torch.tensor([0.5, -1.2]) if estimator == "k1" else None
    if per_sequence is not None:
        assert rollout_kl == pytest.approx(float(per_sequence.mean()))
