"""Text-quality metrics: hand-checked values."""

import pytest

from textgym.evaluation import distinct_n, length_stats, self_bleu, text_metrics


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
    assert set(m) == {"distinct_1", "distinct_2", "self_bleu", "length_mean", "length_std"}
    assert length_stats(["a b", "a b c d"])["length_mean"] == 3.0
