"""score(): one batched call, strict validation, errors that name the reward, and the fallback path."""

import warnings

import numpy as np
import pytest

from textgym import rewards
from textgym.rewards import RewardError, RewardWarning, score

PROMPTS = ["p0", "p1", "p2", "p3"]
COMPLETIONS = ["zero", "one", "two", "three"]


def constant(values):
    def reward(prompts, completions, **kwargs):
        return values

    return reward


def test_valid_results_of_every_container_type():
    for result in ([1, 2, 3, 4], (1.0, 2.0, 3.0, 4.0), np.arange(1, 5, dtype=np.float32), [True, 2, 3.0, np.int64(4)]):
        total, components = score(constant(result), PROMPTS, COMPLETIONS)
        assert total.dtype == np.float64 and total.shape == (4,)
        assert total.tolist() == [1.0, 2.0, 3.0, 4.0]
        assert list(components.values())[0].tolist() == total.tolist()


def test_torch_tensor_result_is_accepted():
    torch = pytest.importorskip("torch")
    total, _ = score(constant(torch.tensor([0.5, 1.0, 1.5, 2.0])), PROMPTS, COMPLETIONS)
    assert total.tolist() == [0.5, 1.0, 1.5, 2.0]


def test_reward_is_called_once_with_the_fields():
    calls = []

    def reward(prompts, completions, answer, **kwargs):
        calls.append((prompts, completions, answer, kwargs))
        return [float(a == c) for a, c in zip(answer, completions)]

    total, _ = score(reward, PROMPTS, COMPLETIONS, {"answer": ["zero", "x", "two", "y"], "extra": [1, 2, 3, 4]})
    assert total.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert len(calls) == 1 and calls[0][3] == {"extra": [1, 2, 3, 4]}


def my_short_reward(prompts, completions, **kwargs):
    return [1.0] * 3


@pytest.mark.parametrize(
    "result, match",
    [
        ([1.0] * 3, r"returned 3 values for 4 completions"),
        ([1.0] * 5, r"returned 5 values for 4 completions"),
        ([1.0, 2.0, float("nan"), 4.0], r"returned NaN at index 2 for completion 'two'"),
        ([1.0, float("inf"), 3.0, 4.0], r"returned inf at index 1 for completion 'one'"),
        (np.array([1.0, 2.0, 3.0, -np.inf]), r"returned -inf at index 3 for completion 'three'"),
        ([None, 1.0, 2.0, 3.0], r"returned None .*at index 0"),
        ([1.0, "0.5", 2.0, 3.0], r"returned a str \('0.5'\), not a number at index 1"),
        ([1.0, 2.0, 3.0, 1j], r"complex.*at index 3"),
        ([[1.0], 2.0, 3.0, 4.0], r"list.*at index 0"),
        (None, r"returned None instead of a list"),
        (0.5, r"returned a single number \(0.5\) for 4 completions; rewards are batched"),
        ("1.0", r"returned a str"),
        (np.ones((4, 1)), r"shape \(4, 1\).*1-D"),
        (object(), r"returned an object of type 'object' instead of a list"),
    ],
)
def test_invalid_results_raise_reward_error_naming_the_reward(result, match):
    reward = constant(result)
    with pytest.raises(RewardError, match=match) as err:
        score(reward, PROMPTS, COMPLETIONS)
    assert "constant.<locals>.reward" in str(err.value)


def test_error_uses_the_registered_name_and_counts_bad_values():
    rewards.register("half_nan", constant([float("nan"), 1.0, float("nan"), float("nan")]))
    with pytest.raises(RewardError, match=r"Reward 'half_nan' returned NaN at index 0 .*and 2 more invalid"):
        score(rewards.make("half_nan"), PROMPTS, COMPLETIONS)


def test_raising_reward_is_wrapped_with_the_first_sample_and_chained():
    def crashy(prompts, completions, **kwargs):
        raise KeyError("score")

    long_completion = "ünïcødé " * 30
    with pytest.raises(RewardError) as err:
        score(crashy, ["Prompt: café"], [long_completion])
    message = str(err.value)
    assert "crashy" in message and "KeyError" in message and "Prompt: café" in message
    assert "ünïcødé" in message and "..." in message and len(message) < 1000  # truncated completion
    assert isinstance(err.value.__cause__, KeyError)


def test_a_reward_without_var_kwargs_receives_only_what_it_names():
    def no_kwargs(prompts, completions):
        return [float(len(c)) for c in completions]

    total, _ = score(no_kwargs, ["p"], ["abc"], {"answer": ["1"]})
    assert total.tolist() == [3.0]


def test_non_ascii_completions_are_scored_and_reported():
    def length(prompts, completions, **kwargs):
        return [float(len(c)) for c in completions]

    total, _ = score(length, ["日本", "x"], ["こんにちは", "naïve 🙂"])
    assert total.tolist() == [5.0, 7.0]
    with pytest.raises(RewardError, match="こんにちは"):
        score(constant([float("nan"), 1.0]), ["日本", "x"], ["こんにちは", "naïve 🙂"])


def test_fallback_replaces_bad_indices_with_a_warning():
    reward = constant([1.0, float("nan"), 3.0, None])
    with pytest.warns(RewardWarning, match=r"constant.<locals>.reward.*NaN at index 1.*fallback -1.0 for 2 of 4"):
        total, components = score(reward, PROMPTS, COMPLETIONS, fallback=-1.0)
    assert total.tolist() == [1.0, -1.0, 3.0, -1.0]


def test_fallback_replaces_the_whole_batch_when_the_reward_raises_or_has_the_wrong_length():
    def crashy(prompts, completions, **kwargs):
        raise RuntimeError("judge server down")

    with pytest.warns(RewardWarning, match=r"crashy.*judge server down.*all 4 samples"):
        total, _ = score(crashy, PROMPTS, COMPLETIONS, fallback=0.0)
    assert total.tolist() == [0.0] * 4
    with pytest.warns(RewardWarning, match="returned 2 values for 4"):
        total, _ = score(constant([1.0, 2.0]), PROMPTS, COMPLETIONS, fallback=0.5)
    assert total.tolist() == [0.5] * 4


def test_fallback_never_hides_a_missing_field():
    with pytest.raises(rewards.RewardInputError, match="'references'"):
        score(rewards.make("bleu"), ["p"], ["c"], {}, fallback=0.0)


def test_no_warning_without_problems():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total, _ = score(constant([1, 2, 3, 4]), PROMPTS, COMPLETIONS, fallback=0.0)
    assert total.tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "prompts, completions, fields, match",
    [
        (["a"], ["x", "y"], {}, "1 prompts for 2 completions"),
        (["a", "b"], ["x", "y"], {"answer": ["1"]}, "Field 'answer' has 1 values for 2"),
        (["a", "b"], ["x", "y"], {"answer": 3}, "Field 'answer' must be a sequence"),
    ],
)
def test_misaligned_batches_are_rejected(prompts, completions, fields, match):
    with pytest.raises(ValueError, match=match):
        score(constant([0.0, 0.0]), prompts, completions, fields)


@pytest.mark.parametrize("fallback", [float("nan"), "0", float("inf")])
def test_bad_fallback_is_rejected(fallback):
    with pytest.raises(ValueError, match="fallback must be None or a finite float"):
        score(constant([0.0]), ["a"], ["b"], fallback=fallback)


def test_empty_batch_does_not_call_the_reward():
    def never(prompts, completions, **kwargs):
        raise AssertionError("called")

    total, components = score(never, [], [])
    assert total.shape == (0,) and components[rewards.reward_name(never)].shape == (0,)


def test_score_accepts_a_spec():
    total, components = score({"exact_match": 1.0, "token_f1": 1.0}, ["q"], ["Paris"], {"answer": [["paris"]]})
    assert total.tolist() == [2.0] and set(components) == {"exact_match", "token_f1"}
    total, components = score("numeric_match", ["q"], [" 4"], {"answer": ["4"]})
    assert total.tolist() == [1.0] and list(components) == ["numeric_match"]
