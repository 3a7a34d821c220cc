"""Built-in task data: splits, determinism, record shapes, and demonstrations that earn their task's reward."""

from __future__ import annotations

import re

import numpy as np
import pytest

from textgym.data import TASKS, corpus_text, load_task_data

FIELDS = {
    "arithmetic": {"answer"},
    "sentiment": {"polarity"},
    "keywords": {"keywords", "references"},
    "summarize": {"references"},
    "translate": {"references"},
    "qa": {"answer", "references"},
    "dialogue": {"tone", "references"},
    "format": {"kind", "target_words", "pattern"},
}


@pytest.fixture(scope="module")
def splits():
    return {task: (load_task_data(task, "train"), load_task_data(task, "test")) for task in TASKS}


def test_every_task_is_listed():
    assert set(TASKS) == set(FIELDS)


@pytest.mark.parametrize("task", sorted(FIELDS))
def test_records_have_prompt_completion_and_the_task_fields(task, splits):
    train, test = splits[task]
    assert len(test) >= 50 and len(train) >= 6 * len(test)  # ~10% test
    for record in train + test:
        assert set(record) == {"prompt", "completion"} | FIELDS[task]
        assert isinstance(record["prompt"], str) and record["prompt"].strip()
        assert isinstance(record["completion"], str) and record["completion"].startswith(" ")
    prompts = [r["prompt"] for r in train + test]
    assert len(set(prompts)) == len(prompts), "prompts must be unique"


@pytest.mark.parametrize("task", sorted(FIELDS))
def test_splits_are_disjoint_and_deterministic(task, splits):
    train, test = splits[task]
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    again = load_task_data(task, "train", n=20, seed=3)
    assert again == load_task_data(task, "train", n=20, seed=3)
    assert [r["prompt"] for r in again] != [r["prompt"] for r in load_task_data(task, "train", n=20, seed=4)]
    assert {r["prompt"] for r in load_task_data(task, "train", n=len(train), seed=9)} == {r["prompt"] for r in train}


def test_records_are_fresh_copies():
    first = load_task_data("keywords", n=1)[0]
    first["keywords"].append("mutated")
    first["prompt"] = "mutated"
    assert load_task_data("keywords", n=1)[0]["prompt"] != "mutated"
    assert "mutated" not in load_task_data("keywords", n=1)[0]["keywords"]


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="Built-in tasks: arithmetic"):
        load_task_data("poetry")
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        load_task_data("qa", split="validation")
    with pytest.raises(ValueError, match="pass n <= "):
        load_task_data("format", split="test", n=100_000)
    with pytest.raises(ValueError, match="positive int"):
        load_task_data("qa", n=0)
    assert len(load_task_data("QA", n=3)) == 3  # task names are case-insensitive


def test_arithmetic_answers_are_correct_and_plentiful(splits):
    train, test = splits["arithmetic"]
    assert len(train) >= 3000
    for record in train + test:
        a, op, b = re.fullmatch(r"Q: (\d+) ([-+*]) (\d+) = \? A:", record["prompt"]).groups()
        expected = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert record["answer"] == str(expected) >= "0" and record["completion"] == f" {expected}"


def test_sentiment_words_carry_the_polarity_vader_gives_them(splits):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from textgym.data import sentiment

    lexicon = SentimentIntensityAnalyzer().lexicon
    assert all(lexicon.get(w, 0) > 0 for w in sentiment.POSITIVE)
    assert all(lexicon.get(w, 0) < 0 for w in sentiment.NEGATIVE)
    polarities = [r["polarity"] for r in splits["sentiment"][0]]
    # Mixed on purpose: supervised warm-start teaches English, RL then pushes the text positive.
    assert 0.35 < polarities.count("positive") / len(polarities) < 0.65
    assert polarities.count("negative") / len(polarities) > 0.35


def test_keywords_appear_in_the_demonstration(splits):
    for record in splits["keywords"][0]:
        assert 2 <= len(record["keywords"]) <= 4
        assert all(k in record["completion"] for k in record["keywords"])
        assert record["completion"].strip() in record["references"]
        assert ", ".join(record["keywords"]) in record["prompt"]


def test_summaries_restate_facts_of_the_article(splits):
    for record in splits["summarize"][0][:500]:
        assert record["references"] == [record["completion"].strip()]
        article = record["prompt"]
        assert all(number in article for number in re.findall(r"\d+", record["completion"]))


def test_translations_follow_french_grammar():
    records = {r["prompt"]: r for task_split in ("train", "test") for r in load_task_data("translate", task_split)}

    def french(english):
        return records[f"Translate to French: {english}\nFrench:"]["references"][0]

    assert french("I like the music.") == "J'aime la musique."
    assert french("We drink the water today.") == "Nous buvons l'eau aujourd'hui."
    assert french("The girl has a key.") == "La fille a une clé."
    assert french("I have a sister every day.") == "J'ai une sœur tous les jours."


def test_qa_answers_are_spans_of_the_passage(splits):
    for record in splits["qa"][0]:
        passage = record["prompt"].split("\nQuestion:")[0]
        assert record["answer"] in passage and record["references"] == [record["answer"]]


def test_dialogue_tones_and_references(splits):
    from textgym.data.dialogue import TONES

    for record in splits["dialogue"][0]:
        assert record["tone"] in TONES and f"Tone: {record['tone']}" in record["prompt"]
        assert record["completion"].strip() in record["references"]


def test_format_demonstrations_match_and_wrong_answers_do_not(splits):
    for record in splits["format"][0]:
        assert re.fullmatch(record["pattern"], record["completion"])
        assert len(record["completion"].split()) == record["target_words"]
        one_word_more = record["completion"] + (" extra" if record["kind"] == "words" else ", apple")
        assert not re.fullmatch(record["pattern"], one_word_more)
    kinds = {r["kind"] for r in splits["format"][0]}
    assert kinds == {"words", "list"}
    assert not re.fullmatch(load_task_data("format")[0]["pattern"], " ")


@pytest.mark.parametrize("task", sorted(FIELDS))
def test_demonstrations_fit_the_task_lengths_with_the_default_tokenizer(task, splits, tokenizer):
    from textgym.envs.tasks import TASKS as ENV_TASKS

    spec = ENV_TASKS[task]
    train, _ = splits[task]
    prompt_lengths = np.array([len(ids) for ids in tokenizer.batch_encode([r["prompt"] for r in train])])
    completion_lengths = np.array([len(ids) for ids in tokenizer.batch_encode([r["completion"] for r in train])])
    assert prompt_lengths.max() <= spec.max_prompt_tokens
    assert completion_lengths.max() < spec.max_new_tokens  # room for EOS
    assert np.median(completion_lengths) <= 16


@pytest.mark.parametrize("task", sorted(set(FIELDS) - {"sentiment"}))
def test_demonstrations_score_well_under_the_task_reward(task):
    from textgym import rewards
    from textgym.envs.tasks import TASKS as ENV_TASKS

    records = load_task_data(task, n=100, seed=0)
    fields = {k: [r[k] for r in records] for k in records[0] if k not in ("prompt", "completion")}
    prompts, completions = [r["prompt"] for r in records], [r["completion"] for r in records]
    total, _ = rewards.score(rewards.make(ENV_TASKS[task].reward), prompts, completions, fields)
    assert np.mean(total) > 0.85
    shuffled = completions[1:] + completions[:1]  # someone else's demonstration must score worse
    wrong, _ = rewards.score(rewards.make(ENV_TASKS[task].reward), prompts, shuffled, fields)
    assert np.mean(wrong) < np.mean(total)


def test_corpus_text_is_every_train_record():
    texts = list(corpus_text())
    assert len(texts) == sum(len(load_task_data(task)) for task in TASKS)
    assert all(isinstance(t, str) and t for t in texts)
    test_prompts = {r["prompt"] for r in load_task_data("qa", "test")}
    assert not any(t.split("\nAnswer:")[0] + "\nAnswer:" in test_prompts for t in texts if t.startswith("Context:"))
