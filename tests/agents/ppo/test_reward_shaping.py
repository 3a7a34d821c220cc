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


def test_overlong_penalty_ramps_over_the_last_tokens_before_the_limit():
    # T = 3, buffer 2: the ramp starts after 1 token. A (2 tokens) is 1 into it: -0.5 x 1 / 2 = -0.25;
    # B (3 tokens, the limit) is 2 into it: the whole -0.5, on top of the missing-EOS penalty.
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(overlong_buffer=2, overlong_penalty=0.5).config)
    expected = torch.tensor([[-0.05, 1.0 - 0.25, 0.0], [0.1, 0.0, 0.5 + 0.02 - EOS_PENALTY - 0.5]])
    torch.testing.assert_close(buf.token_rewards, expected)


def test_overlong_filter_leaves_truncated_episodes_out_of_the_loss_and_the_whitening():
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(overlong_filter=True, normalize_advantage=True).config)
    # B was truncated: no token of it is in the loss, and A's two advantages are whitened among themselves.
    assert torch.equal(buf.loss_mask, torch.tensor([[True, True, False], [False, False, False]]))
    assert (buf.advantages[1] == 0).all()
    torch.testing.assert_close(buf.advantages[0, :2], torch.tensor([1.0, -1.0]) / 2 ** 0.5, atol=1e-4, rtol=0)
    batch = buf.get(torch.tensor([0, 1]))
    assert torch.equal(batch.loss_mask, buf.loss_mask) and torch.equal(batch.response_mask, MASK)
    unfiltered, _ = rewards_and_advantages(episodes(), BETA, algo().config)
    assert torch.equal(unfiltered.loss_mask, MASK)


def test_reinforce_pp_gives_each_token_its_return_to_go():
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(baseline="reinforce++").config)
    # Token rewards A [-0.05, 1.0], B [0.1, 0.0, 0.32] (as above), summed from each token to the end.
    torch.testing.assert_close(buf.advantages, torch.tensor([[0.95, 1.0, 0.0], [0.42, 0.32, 0.32]]))
    assert torch.count_nonzero(buf.returns) == 0  # no critic
    whitened, _ = rewards_and_advantages(episodes(), BETA, algo(baseline="reinforce++", normalize_advantage=True).config)
    valid = whitened.advantages[MASK]
    assert valid.mean().abs() < 1e-6 and valid.std().item() == pytest.approx(1.0, abs=1e-4)


def test_reinforce_pp_baseline_subtracts_the_groups_mean_task_reward():
    buf, _ = rewards_and_advantages(episodes(), BETA, algo(baseline="reinforce++_baseline", group_size=2).config)
    # Task returns (env reward + missing-EOS penalty): A 1.0, B 0.5 - 0.2 = 0.3; their mean 0.65 comes off
    # each last token, the KL shaping stays per token: A [-0.05, 0.35], B [0.1, 0.0, 0.32 - 0.65 = -0.33].
    torch.testing.assert_close(buf.advantages, torch.tensor([[0.30, 0.35, 0.0], [-0.23, -0.33, -0.33]]))
