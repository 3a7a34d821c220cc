"""Text-quality metrics: hand-checked values."""

import pytest

from textgym.evaluation import (
    diversity_warnings,
    distinct_completions,
    distinct_n,
    is_collapsed,
    length_stats,
    self_bleu,
    text_metrics,
)


def test_distinct_n_counts_unique_ngrams():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n([], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)


def test_self_bleu_is_high_for_copies_and_low_for_different_texts():
    same = ["the cat sat on the mat today"] * 5
    varied = ["the cat sat on the mat", "dogs run fast in parks", "rain falls over grey hills", "we ate soup"]
    assert self_bleu(same) == pytest.approx(1.0)
    assert self_bleu(varied) < 0.2
    assert self_bleu(["only one"]) == 0.0


def test_text_metrics_has_every_key():
    m = text_metrics(["one two three", "four five"])
    assert set(m) == {"distinct_1", "distinct_2", "self_bleu", "distinct_completions", "length_mean", "length_std"}
    assert length_stats(["a b", "a b c d"])["length_mean"] == 3.0


def test_distinct_completions_ignores_surrounding_whitespace():
    assert distinct_completions([" The battery is lovely.", "The battery is lovely. ", "It broke."]) == 2
    assert distinct_completions([]) == 0


# The failure that issue 13 measured: one greedy sentence for all 128 test prompts.
COLLAPSED = {"num_episodes": 128, "distinct_completions": 1, "distinct_2": 0.007}
HEALTHY = {"num_episodes": 128, "distinct_completions": 120, "distinct_2": 0.5, "perplexity_under_reference": 3.0,
           "kl_to_reference": 0.0, "eos_rate": 0.9}


def test_one_completion_for_every_prompt_is_reported_as_collapse():
    assert is_collapsed(COLLAPSED) and not is_collapsed(HEALTHY)
    assert diversity_warnings(COLLAPSED, label="greedy: ") == ["greedy: collapsed: 1 distinct completion for 128 prompts"]
    assert is_collapsed({"num_episodes": 128, "distinct_completions": 12})  # <= 10% distinct
    assert not is_collapsed({"num_episodes": 128, "distinct_completions": 13})
    assert not is_collapsed({"num_episodes": 1, "distinct_completions": 1})  # one prompt cannot collapse
    # a warm start that was collapsed already is named, so the reader knows RL did not cause it
    warm = {"num_episodes": 128, "distinct_completions": 6, "distinct_2": 0.007}
    assert diversity_warnings(COLLAPSED, warm) == [
        "collapsed: 1 distinct completion for 128 prompts (as was the warm start: 6)"]
    assert diversity_warnings(COLLAPSED, HEALTHY)[0] == "collapsed: 1 distinct completion for 128 prompts"


def test_healthy_metrics_raise_no_warning_before_or_after():
    assert diversity_warnings(HEALTHY) == []
    assert diversity_warnings(HEALTHY, HEALTHY) == []


@pytest.mark.parametrize("change, words", [
    ({"distinct_completions": 50}, "diversity fell: 120 -> 50 distinct completions"),
    ({"distinct_2": 0.25}, "diversity fell: distinct-2 0.500 -> 0.250"),
    ({"perplexity_under_reference": 60.0}, "drifted from the reference: perplexity under it 3.0 -> 60.0"),
    ({"kl_to_reference": 40.0}, "KL to the reference ran away: 40.0 nats"),
    ({"eos_rate": 0.22}, "EOS rate fell 0.90 -> 0.22"),
])
def test_each_kind_of_degradation_after_rl_is_named(change, words):
    warnings = diversity_warnings({**HEALTHY, **change}, HEALTHY, label="sampled: ")
    assert len(warnings) == 1 and warnings[0].startswith("sampled: ") and words in warnings[0], warnings
