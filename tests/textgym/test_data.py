"""Built-in task data: splits, determinism, record shapes, and demonstrations that earn their task's reward."""

from __future__ import annotations

import re

import numpy as np
import pytest

from textgym.data import DATA_TASKS, corpus_text, load_task_data

FIELDS = {
    "arithmetic": {"answer"},
    "sentiment": {"polarity", "topics"},
    "keywords": {"keywords", "references"},
    "summarize": {"references"},
    "translate": {"references"},
    "qa": {"answer", "references", "qtype"},
    "dialogue": {"tone", "references"},
    "format": {"kind", "target_words", "pattern"},
}


@pytest.fixture(scope="module")
def splits():
    return {task: (load_task_data(task, "train"), load_task_data(task, "test")) for task in DATA_TASKS}


def test_every_task_is_listed():
    assert set(DATA_TASKS) == set(FIELDS)


@pytest.mark.parametrize("task", sorted(FIELDS))
def test_records_have_prompt_completion_and_the_task_fields(task, splits):
    train, test = splits[task]
    assert len(test) >= 50 and len(train) >= 3 * len(test)
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


def _sentiment_item(record):
    from textgym.data.sentiment import ITEMS

    return next(item for item in sorted(ITEMS, key=len, reverse=True) if re.search(rf"\b{item}\b", record["prompt"]))


def _arithmetic_pair(record):
    a, _, b = re.fullmatch(r"Q: (\d+) ([-+*]) (\d+) = \? A:", record["prompt"]).groups()
    return frozenset((int(a), int(b)))


def _format_combination(record):
    subject = re.search(r"about the (\w+)|describe the (\w+)|the (\w+) in exactly|(\w+) separated|(\w+), separated|"
                        r"(\w+) as a comma", record["prompt"])
    return next(g for g in subject.groups() if g), record["target_words"]


def _keywords_pair(record):
    from textgym.data.keywords import SCENES

    pairs = {(s, o) for scene in SCENES for s in scene[0] for o in scene[3] if {s, o} <= set(record["keywords"])}
    (pair,) = pairs  # exactly one (subject, object) pair per concept set
    return pair


def _qa_people(record):
    return tuple(re.findall(r"(?:^|\. )(\w+) lives in", record["prompt"].split("Context: ")[1].split("\n")[0]))


DIALOGUE_KINDS = {"problem": r"my \w[\w ]* (arrived|has not|stopped|is missing)", "news": r"I just ",
                  "request": r"can you help me", "invite": r"would you like to", "complaint": r"the [\w ]+ was"}


def _dialogue_combination(record):
    user = record["prompt"].split("\n")[0]
    (kind,) = [k for k, pattern in DIALOGUE_KINDS.items() if re.search(pattern, user, re.IGNORECASE)]
    return kind, record["tone"]


def _summarize_entities(record):
    from textgym.data import summarize

    article = record["prompt"]
    names = summarize.TOWNS + summarize.TEST_TOWNS + summarize.TEAMS + summarize.TEST_TEAMS + summarize.COMPANIES
    names += summarize.TEST_COMPANIES
    return frozenset(n for n in names if re.search(rf"\b{n}\b", article))


def _translate_pair(record):
    from textgym.data.translate import SUBJECTS, VERBS

    english = record["prompt"].removeprefix("Translate to French: ").split("\n")[0].lower()
    (subject,) = [s[0] for s in SUBJECTS if english.startswith(s[0].lower() + " ")]
    (obj,) = {o[0] for v in VERBS for o in v[2] if re.search(rf" (?:{v[0][0]}|{v[0][1]}) {o[0]}\b", english)}
    return subject, obj


# task -> the held-out dimension of a record (what the test split holds out; see each module's docstring)
HELD_OUT = {
    "sentiment": _sentiment_item,
    "arithmetic": _arithmetic_pair,
    "format": _format_combination,
    "keywords": _keywords_pair,
    "qa": lambda record: record["prompt"].split("\nQuestion:")[0],  # the passage
    "dialogue": _dialogue_combination,
    "translate": _translate_pair,
}
ENTITY_SETS = {"summarize": _summarize_entities}  # the held-out dimension is a set of names per record


def test_every_task_holds_out_a_tested_dimension():
    assert set(HELD_OUT) | set(ENTITY_SETS) == set(DATA_TASKS)


@pytest.mark.parametrize("task", sorted(ENTITY_SETS))
def test_test_split_names_only_held_out_entities(task, splits):
    train, test = splits[task]
    train_names = set().union(*map(ENTITY_SETS[task], train))
    test_names = set().union(*map(ENTITY_SETS[task], test))
    assert test_names and not train_names & test_names
    assert all(ENTITY_SETS[task](r) for r in train + test)  # every record names one


@pytest.mark.parametrize("task", sorted(HELD_OUT))
def test_test_split_holds_out_a_dimension_never_seen_in_training(task, splits):
    train, test = splits[task]
    train_keys = {HELD_OUT[task](r) for r in train}
    test_keys = {HELD_OUT[task](r) for r in test}
    assert test_keys and not train_keys & test_keys, f"{task}: {sorted(map(str, train_keys & test_keys))[:5]}"
    again = load_task_data(task, "test")
    assert again == test  # the same records in the same order on a second call


def test_sentiment_test_split_reviews_only_the_held_out_items(splits):
    from textgym.data.sentiment import TEST_ITEMS

    train, test = splits["sentiment"]
    assert {_sentiment_item(r) for r in test} == set(TEST_ITEMS)
    assert not any(item in r["prompt"] for r in train for item in TEST_ITEMS)
    assert (len(train), len(test)) == (3928, 976)  # 4 of 7 openings name a companion, the others dedupe


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
    assert (len(train), len(test)) == (3726, 370)
    digits = [{(int(a) % 10, int(b) % 10) for a, b in re.findall(r"(\d+) [-+*] (\d+)", r["prompt"]) } for r in test]
    assert len(set().union(*digits)) >= 90  # the held-out pairs cut across digits
    assert {op for r in test for op in "+-*" if f" {op} " in r["prompt"]} == set("+-*")
    for record in train + test:
        a, op, b = re.fullmatch(r"Q: (\d+) ([-+*]) (\d+) = \? A:", record["prompt"]).groups()
        expected = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert record["answer"] == str(expected) >= "0" and record["completion"] == f" {expected}"


def test_sentiment_topics_name_the_reviewed_item_and_its_aspects(splits):
    from textgym.data.sentiment import ITEMS

    for record in splits["sentiment"][0][:50] + splits["sentiment"][1][:50]:
        item = _sentiment_item(record)
        assert record["topics"] == [item, *ITEMS[item][1]]


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


def test_keywords_demonstrations_leave_one_concept_out_and_references_use_all(splits):
    from textgym.rewards.builtin import KeywordsReward

    coverage = KeywordsReward(sentence=False).score_sample
    train, test = splits["keywords"]
    for record in train + test:
        assert 2 <= len(record["keywords"]) <= 4
        assert ", ".join(record["keywords"]) in record["prompt"]
        expected = 1.0 if len(record["keywords"]) == 2 else 1 - 1 / len(record["keywords"])
        assert coverage("", record["completion"], keywords=record["keywords"]) == pytest.approx(expected)
        assert record["references"]
        assert any(coverage("", ref, keywords=record["keywords"]) == 1.0 for ref in record["references"])
    assert len(test) >= 100


def test_summary_demonstrations_are_the_lead_sentence_and_references_the_key_facts(splits):
    train, test = splits["summarize"]
    for record in train[:500] + test[:100]:
        article = record["prompt"].removeprefix("Article: ").removesuffix("\nSummary:")
        assert article.startswith(record["completion"].strip().rstrip("."))  # lead-1
        (reference,) = record["references"]
        assert reference != record["completion"].strip()
        # the reference restates facts of the article: its numbers all come from it
        numbers = re.findall(r"\d+", reference)
        assert all(n in article for n in numbers)
    assert len(test) >= 450


def test_translations_follow_french_grammar():
    records = {r["prompt"]: r for task_split in ("train", "test") for r in load_task_data("translate", task_split)}

    def french(english):
        return records[f"Translate to French: {english}\nFrench:"]["references"][0]

    assert french("I like the music.") == "J'aime la musique."
    assert french("We drink the water today.") == "Nous buvons l'eau aujourd'hui."
    assert french("The girl has a key.") == "La fille a une clé."
    assert french("I have a sister every day.") == "J'ai une sœur tous les jours."


def test_translation_demonstrations_are_half_literal_with_one_learner_error(splits):
    from textgym.data.translate import literal_translation

    train, test = splits["translate"]
    wrong = [r for r in train if r["completion"].strip() != r["references"][0]]
    assert 0.45 < len(wrong) / len(train) < 0.55
    for record in wrong[:200]:  # one error: the same number of words (or one more, "le eau" for "l'eau")
        demo, reference = record["completion"].split(), record["references"][0].split()
        assert 0 <= len(demo) - len(reference) <= 1
    assert literal_translation("nous", ("bois", "boit", "buvons"), "1p", "l'eau", "", "conjugation") == "Nous boit l'eau."
    assert literal_translation("je", ("aime", "aime", "aimons"), "1s", "la musique", "", "elision") == "Je aime la musique."
    assert literal_translation("il", ("mange", "mange", "mangeons"), "3s", "le pain", "", "gender") == "Il mange la pain."


def test_qa_answers_are_spans_of_the_passage_and_vary_within_each_question_type(splits):
    from collections import Counter

    from textgym.data.qa import PEOPLE, QTYPES
    from textgym.rewards.reference import _token_f1, normalize_answer

    train, test = splits["qa"]
    for record in train + test:
        passage = record["prompt"].split("\nQuestion:")[0]
        assert record["answer"] in passage and record["references"] == [record["answer"]]
        assert record["qtype"] in QTYPES
    for name, part in (("train", train), ("test", test)):
        for qtype in QTYPES:
            answers = Counter(r["answer"] for r in part if r["qtype"] == qtype)
            assert len(answers) >= 5, (name, qtype)
            top_share = answers.most_common(1)[0][1] / sum(answers.values())
            assert top_share < (0.2 if name == "train" else 0.25), (name, qtype, answers.most_common(2))  # 75 per type
    # names: both splits use PEOPLE (the passages are what the test split holds out)
    assert {n for r in train + test for n in _qa_people(r)} == {n for n, _ in PEOPLE}
    # a third of the demonstrations are the bare span, the others a sentence that contains it
    f1 = [_token_f1(normalize_answer(r["completion"]).split(), normalize_answer(r["answer"]).split()) for r in train]
    assert 0.3 < np.mean([v == 1.0 for v in f1]) < 0.37
    assert all(r["answer"] in r["completion"] for r in train)


def test_dialogue_demonstrations_are_in_a_random_tone_and_references_in_the_asked_one(splits):
    from textgym.data.dialogue import KINDS, TEST_COMBINATIONS, TONES

    train, test = splits["dialogue"]
    all_replies = {tone: {r for kind in KINDS.values() for r in kind[2][tone]} for tone in TONES}
    for record in train + test:
        assert record["tone"] in TONES and f"Tone: {record['tone']}" in record["prompt"]
        assert len(record["references"]) == 2
    in_asked_tone = np.mean([r["completion"].strip() in r["references"] for r in train])
    assert 0.15 < in_asked_tone < 0.35  # a quarter, by chance
    assert {_dialogue_combination(r) for r in test} == TEST_COMBINATIONS
    assert {k for k, _ in TEST_COMBINATIONS} | {"complaint"} == set(KINDS) and len(all_replies) == 4


def test_format_demonstrations_are_off_by_one_half_the_time_and_patterns_are_exact(splits):
    train, test = splits["format"]
    off = 0
    for record in train:
        n = len(record["completion"].split())
        assert abs(n - record["target_words"]) <= 1
        assert bool(re.fullmatch(record["pattern"], record["completion"])) == (n == record["target_words"])
        off += n != record["target_words"]
        one_word_more = record["completion"] + (" extra" if record["kind"] == "words" else ", apple")
        if n == record["target_words"]:
            assert not re.fullmatch(record["pattern"], one_word_more)
    assert 0.4 < off / len(train) < 0.6  # the count is left for RL to learn
    assert {r["kind"] for r in train} == {r["kind"] for r in test} == {"words", "list"}
    assert not re.fullmatch(load_task_data("format")[0]["pattern"], " ")
    sea = next(r for r in train + test if r["kind"] == "words" and "the sea" in r["prompt"])
    k = sea["target_words"]
    assert re.fullmatch(sea["pattern"], " " + " ".join(["The sea"] + ["x"] * (k - 2)))
    assert not re.fullmatch(sea["pattern"], " " + " ".join(["word"] * k))  # must be about the sea
    # every topic, category and count is trained on; only the combinations are held out
    assert {c[0] for c in map(_format_combination, test)} <= {c[0] for c in map(_format_combination, train)}
    assert {c[1] for c in map(_format_combination, test)} <= {c[1] for c in map(_format_combination, train)}


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


# task -> (low, high) bounds of the demonstrations' mean task reward (100 train records). Where high < 1 the
# demonstrations leave headroom on purpose (each module's docstring says what they do not teach).
DEMO_SCORES = {
    "arithmetic": (0.99, 1.0),  # correct answers: the headroom is in the held-out digit pairs
    "format": (0.55, 0.75),  # off by one word or item half the time
    "keywords": (0.65, 0.85),  # one concept left out of 3-4
    "summarize": (0.55, 0.75),  # lead-1 against the key facts
    "translate": (0.7, 0.9),  # half literal, one learner error each
    "qa": (0.5, 0.7),  # a third bare spans (F1 1), the rest sentences (F1 ~0.4)
    "dialogue": (0.3, 0.6),  # replies in a random tone
}


@pytest.mark.parametrize("task", sorted(DEMO_SCORES))
def test_demonstrations_score_in_their_band_under_the_task_reward(task):
    from textgym import rewards
    from textgym.envs.tasks import TASKS as ENV_TASKS

    records = load_task_data(task, n=100, seed=0)
    fields = {k: [r[k] for r in records] for k in records[0] if k not in ("prompt", "completion")}
    prompts, completions = [r["prompt"] for r in records], [r["completion"] for r in records]
    total, _ = rewards.score(rewards.make(ENV_TASKS[task].reward), prompts, completions, fields)
    low, high = DEMO_SCORES[task]
    assert low <= np.mean(total) <= high
    shuffled = completions[1:] + completions[:1]  # someone else's demonstration must score worse
    wrong, _ = rewards.score(rewards.make(ENV_TASKS[task].reward), prompts, shuffled, fields)
    assert np.mean(wrong) < np.mean(total)


def test_corpus_text_is_every_train_record():
    texts = list(corpus_text())
    assert len(texts) == sum(len(load_task_data(task)) for task in DATA_TASKS)
    assert all(isinstance(t, str) and t for t in texts)
    test_prompts = {r["prompt"] for r in load_task_data("qa", "test")}
    assert not any(t.split("\nAnswer:")[0] + "\nAnswer:" in test_prompts for t in texts if t.startswith("Context:"))
