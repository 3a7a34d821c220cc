"""Reference-based built-ins: bleu, chrf, rouge, exact_match, token_f1, numeric_match."""

import pytest

from textgym import rewards
from textgym.rewards import RewardInputError, score
from textgym.rewards.reference import first_number, normalize_answer


def run(name, completions, fields, **options):
    total, _ = score(rewards.make(name, **options), ["prompt"] * len(completions), completions, fields)
    return total.tolist()


REF = "the cat is sitting on the mat"


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge"])
def test_exact_reference_scores_one_and_unrelated_text_scores_low(name):
    scores = run(name, [REF, "le chien mange", ""], {"references": [[REF], [REF], REF]})
    assert scores[0] == 1.0
    assert 0.0 <= scores[1] < 0.2 and scores[2] == 0.0
    partial = run(name, ["the cat is on the mat"], {"references": [REF]})[0]
    assert 0.2 < partial < 1.0


def test_bleu_matches_sacrebleu_and_uses_the_best_reference():
    from sacrebleu.metrics import BLEU

    hyp, refs = "the cat sat on a mat", ["the cat sat on the mat", "a cat was on the mat"]
    expected = BLEU(effective_order=True).sentence_score(hyp, refs).score / 100
    assert run("bleu", [hyp], {"references": [refs]}) == [pytest.approx(expected)]


def test_chrf_matches_sacrebleu_with_options():
    from sacrebleu.metrics import CHRF

    hyp, ref = "le chat est assis", "le chat s'est assis"
    expected = CHRF(word_order=2).sentence_score(hyp, [ref]).score / 100
    assert run("chrf", [hyp], {"references": [[ref]]}, word_order=2) == [pytest.approx(expected)]


def test_rouge_is_max_f_over_references_and_types():
    refs = ["the cat sat down", "a dog barked"]
    assert run("rouge", ["the cat sat"], {"references": [refs]}) == [pytest.approx(2 * 0.75 / 1.75)]  # P 1, R .75
    assert run("rouge", ["cat the"], {"references": [["the cat"]]}, rouge_type="rouge1") == [1.0]
    assert run("rouge", ["cat the"], {"references": [["the cat"]]}, rouge_type="rouge2") == [0.0]
    with pytest.raises(ValueError, match="rouge_type must be one of"):
        rewards.make("rouge", rouge_type="rougeX")


def test_references_must_be_text():
    with pytest.raises(RewardInputError, match="'references'.*string or a list of strings"):
        run("bleu", ["x"], {"references": [{"text": "x"}]})
    with pytest.raises(RewardInputError, match="field 'references'"):
        run("rouge", ["x"], {})


def test_squad_normalization():
    assert normalize_answer("  The Eiffel-Tower!! ") == "eiffeltower"
    assert normalize_answer("An apple, a pear") == "apple pear"


def test_exact_match_normalizes_and_accepts_lists():
    completions = [" The Eiffel Tower.", "eiffel tower in paris", "Paris", "PARIS!"]
    answers = ["eiffel tower", "eiffel tower", ["London", "paris"], "Paris"]
    assert run("exact_match", completions, {"answer": answers}) == [1.0, 0.0, 1.0, 1.0]


def test_token_f1_partial_credit():
    completions = ["in Paris", "Paris", "London", "", "the"]
    answers = ["Paris", ["Rome", "paris"], "Paris", "Paris", "a"]
    assert run("token_f1", completions, {"answer": answers}) == [pytest.approx(2 / 3), 1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "text, number",
    [(" 5", 5.0), ("-3 apples", -3.0), ("it is 1,000.5 m", 1000.5), ("x = 2.5e2", 250.0), ("\u22127", -7.0),
     ("no number", None), ("1, 2, 3", 1.0)],
)
def test_first_number(text, number):
    assert first_number(text) == number


def test_numeric_match():
    completions = [" 5", " -3 apples", "none", " 0.333", " 12 or 13", "5"]
    answers = ["5", -3, "1", "0.3333", [11, "12"], 6]
    assert run("numeric_match", completions, {"answer": answers}) == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert run("numeric_match", [" 0.333"], {"answer": ["0.3333"]}, tolerance=1e-3) == [1.0]
    with pytest.raises(RewardInputError, match="numeric `answer`"):
        run("numeric_match", ["5"], {"answer": ["five"]})
    with pytest.raises(ValueError, match="tolerance"):
        rewards.make("numeric_match", tolerance=-1)
