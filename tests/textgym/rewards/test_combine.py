"""combine(): weighted sums, per-component scores, naming, and errors."""

import numpy as np
import pytest

from textgym import rewards
from textgym.rewards import CombinedReward, RewardError, combine, score


def lengths(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


def ones(prompts, completions, **kwargs):
    return [1.0] * len(completions)


def test_weighted_sum_and_components():
    reward = combine({lengths: 0.5, ones: 2.0})
    assert isinstance(reward, CombinedReward)
    assert reward.names == ["lengths", "ones"]
    prompts, completions = ["a", "b"], ["xx", "xxxx"]
    assert reward(prompts, completions).tolist() == [3.0, 4.0]
    parts = reward.components(prompts, completions)
    assert set(parts) == {"lengths", "ones"}
    assert parts["lengths"].tolist() == [2.0, 4.0] and parts["ones"].tolist() == [1.0, 1.0]  # raw, unweighted


def test_score_of_a_combination_returns_each_component():
    reward = rewards.make({"sentiment": 1.0, "repetition": 0.5})
    completions = ["What a wonderful, lovely day", "bad bad bad bad"]
    total, components = score(reward, ["p", "q"], completions, {})
    assert set(components) == {"sentiment", "repetition"}
    expected = components["sentiment"] + 0.5 * components["repetition"]
    np.testing.assert_allclose(total, expected)
    assert components["repetition"][0] == 0.0 and components["repetition"][1] < 0.0


def test_list_of_pairs_and_bare_rewards():
    reward = combine([("repetition", 1.0), (lengths, -1.0), ones])
    assert reward.weights == [1.0, -1.0, 1.0]
    assert reward(["p"], ["abc"]).tolist() == [-2.0]


def test_each_reward_is_called_once_per_batch():
    calls = []

    def counted(prompts, completions, **kwargs):
        calls.append(len(completions))
        return [0.0] * len(completions)

    score(combine({counted: 1.0, ones: 1.0}), ["a", "b", "c"], ["x", "y", "z"])
    assert calls == [3]


def test_duplicate_names_get_a_suffix():
    reward = combine([(ones, 1.0), (ones, 2.0), (lambda p, c, **k: [0.0] * len(c), 1.0)])
    assert reward.names[:2] == ["ones", "ones#2"] and len(set(reward.names)) == 3
    assert reward(["p"], ["c"]).tolist() == [3.0]


def test_make_of_a_combination_returns_it_and_repr_reads_well():
    reward = rewards.make({"bleu": 0.5, "chrf": 0.5})
    assert rewards.make(reward) is reward
    assert repr(reward) == "CombinedReward(0.5 * bleu + 0.5 * chrf)"


def test_failing_component_is_named():
    def broken(prompts, completions, **kwargs):
        return [float("nan")] * len(completions)

    with pytest.raises(RewardError, match=r"Reward '.*broken' returned NaN"):
        score(combine({ones: 1.0, broken: 1.0}), ["p"], ["c"])


def test_fallback_applies_to_the_failing_component():
    def broken(prompts, completions, **kwargs):
        return [1.0, float("nan")]

    with pytest.warns(rewards.RewardWarning):
        total, components = score(combine({ones: 1.0, broken: 2.0}), ["p", "q"], ["c", "d"], fallback=0.0)
    assert components[rewards.reward_name(broken)].tolist() == [1.0, 0.0]
    assert total.tolist() == [3.0, 1.0]


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ({}, ValueError, "at least one"),
        ([], ValueError, "at least one"),
        ({"bleu": float("nan")}, ValueError, "finite number"),
        ({"bleu": "1"}, ValueError, "finite number"),
        ({"bleu": True}, ValueError, "finite number"),
        ([("bleu", 1.0, 2.0)], TypeError, r"\(reward, weight\) pairs"),
        ([3], TypeError, "expects rewards"),
        ("bleu", TypeError, "combine\\(\\) takes"),
        ({"blue": 1.0}, ValueError, "Did you mean 'bleu'"),
    ],
)
def test_bad_combinations_are_rejected(spec, error, match):
    with pytest.raises(error, match=match):
        combine(spec)


def test_make_rejects_options_for_a_combination():
    with pytest.raises(TypeError, match="only apply"):
        rewards.make({"bleu": 1.0}, tokenize="char")
