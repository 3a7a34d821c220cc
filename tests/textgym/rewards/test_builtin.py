"""Built-ins that read the completion: sentiment, tone, keywords, length, format, format_or_length, repetition."""

import pytest

from textgym import rewards
from textgym.rewards import RewardInputError, score


def run(name, completions, fields=None, **options):
    total, _ = score(rewards.make(name, **options), ["prompt"] * len(completions), completions, fields or {})
    return total.tolist()


def test_sentiment_orders_positive_above_negative_and_inverts_for_negative():
    texts = ["I love this film, it is wonderful and great.", "The movie.", "This was awful, boring and terrible."]
    pos = run("sentiment", texts)
    assert pos[0] > 0.9 and pos[1] == pytest.approx(0.5) and pos[2] < 0.1  # neutral text: compound 0 -> 0.5
    neg = run("sentiment", texts, target="negative")
    assert neg == pytest.approx([1 - p for p in pos])


def test_sentiment_matches_vader_formula():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    text = "Pretty good, but a little slow."
    compound = SentimentIntensityAnalyzer().polarity_scores(text)["compound"]
    assert run("sentiment", [text]) == pytest.approx([(compound + 1) / 2])


def test_sentiment_rejects_unknown_target():
    with pytest.raises(ValueError, match="'positive' or 'negative'"):
        rewards.make("sentiment", target="happy")


def test_tone_rewards_the_cues_of_each_tone():
    replies = {
        "polite": ("Thank you, could you please send it again?", "Send it again."),
        "apologetic": ("I'm so sorry, I apologize for the inconvenience.", "Send it again."),
        "enthusiastic": ("This is amazing! I can't wait!", "Fine."),
        "positive": ("What a lovely, happy day.", "What a sad, awful day."),
    }
    for tone, (good, plain) in replies.items():
        good_score, plain_score = run("tone", [good, plain], {"tone": [tone, tone]})
        assert 0.0 <= plain_score < good_score <= 1.0, tone


def test_tone_formula_for_polite():
    from textgym.rewards.builtin import positivity

    text = "Please help."  # one polite cue of the two needed for the full cue score
    plain = run("tone", [text], {"tone": ["polite"]}, min_words=0, max_cue_word_share=None)
    assert plain == pytest.approx([0.3 * positivity(text) + 0.7 * 0.5])
    # the guards: 2 words of the 3 required, and both words carry sentiment (share 1 > 0.5: a quarter)
    assert run("tone", [text], {"tone": ["polite"]}) == pytest.approx([plain[0] * 2 / 3 * 0.25])


def test_tone_errors():
    with pytest.raises(RewardInputError, match="known tones"):
        run("tone", ["hi"], {"tone": ["sarcastic"]})
    with pytest.raises(RewardInputError, match="field 'tone'"):
        run("tone", ["hi"])
    text = ["What a lovely day at the beach."]  # a sentence: neither word-list guard applies
    assert run("tone", text, tone="positive") == pytest.approx(run("sentiment", text))
    with pytest.raises(ValueError, match="tone must be one of"):
        rewards.make("tone", tone="sarcastic")


def test_keywords_fraction_with_inflections():  # coverage alone: sentence=False
    keywords = [["dog", "run", "bus", "cat"]]
    assert run("keywords", ["Dogs were running after the buses."], {"keywords": keywords}, sentence=False) == [0.75]
    assert run("keywords", ["A DOG. A cat! The bus runs."], {"keywords": keywords}, sentence=False) == [1.0]
    assert run("keywords", ["The dogma ran by."], {"keywords": keywords}, sentence=False) == [0.0]  # word boundaries; no "ran"
    assert run("keywords", ["she walked; they are walking"], {"keywords": [["walk"]]}, sentence=False) == [1.0]


def test_keywords_phrases_duplicates_and_strings():
    assert run("keywords", ["an ice cream truck"], {"keywords": [["ice cream", "cream ice"]]}, sentence=False) == [0.5]
    assert run("keywords", ["a dog"], {"keywords": [["dog", "Dog", "cat"]]}, sentence=False) == [0.5]
    assert run("keywords", ["a dog and a cat"], {"keywords": ["dog, cat, tree"]}, sentence=False) == [pytest.approx(2 / 3)]
    assert run("keywords", ["un café noir"], {"keywords": [["café"]]}, sentence=False) == [1.0]  # unicode words


def test_keywords_needs_keywords():
    with pytest.raises(RewardInputError, match="no keywords"):
        run("keywords", ["x"], {"keywords": [[]]})
    with pytest.raises(RewardInputError, match="'keywords'"):
        run("keywords", ["x"])


def test_length_is_linear_around_the_target():
    texts = ["one two three four", "one two", "", "a b c d e f g h"]
    assert run("length", texts, target=4) == [1.0, 0.5, 0.0, 0.0]
    assert run("length", texts, target=4, tolerance=8) == [1.0, 0.75, 0.5, 0.5]
    assert run("length", ["abcd  "], target=4, unit="chars") == [1.0]


def test_length_per_sample_field_overrides_the_option():
    texts = ["one two", "one two"]
    assert run("length", texts, {"target_words": [2, 4]}) == [1.0, 0.5]
    assert run("length", texts, {"target_words": [None, 4]}, target=2) == [1.0, 0.5]
    with pytest.raises(RewardInputError, match="'target_words'"):
        run("length", texts)
    with pytest.raises(ValueError, match="unit must be"):
        rewards.make("length", target=3, unit="tokens")


def test_format_fullmatch_from_option_or_field():
    assert run("format", [" 42", "42 apples"], pattern=r"\d+") == [1.0, 0.0]
    assert run("format", ["a, b, c", "a b"], {"pattern": [r"\w+(, \w+)+"] * 2}) == [1.0, 0.0]
    with pytest.raises(RewardInputError, match="Invalid format regex"):
        run("format", ["x"], {"pattern": ["("]})
    with pytest.raises(RewardInputError, match="Invalid format regex"):
        rewards.make("format", pattern="(")


def test_format_or_length_uses_whichever_field_the_sample_has():
    fields = {"pattern": [r"\w+(, \w+)+", None, r"\w+(, \w+)+"], "target_words": [None, 3, 3]}
    completions = ["red, green, blue", "one two three", "red green blue"]
    assert run("format_or_length", completions, fields) == [1.0, 1.0, 0.5]  # both fields: their mean
    with pytest.raises(RewardInputError, match="`pattern` or a `target_words`"):
        run("format_or_length", ["x"], {"pattern": [None], "target_words": [None]})


def test_repetition_penalty():
    texts = ["sodium sodium sodium sodium", "the cat sat on the mat", "Good. Good. Good.", "hi"]
    assert run("repetition", texts) == [pytest.approx(-2 / 3), 0.0, -0.5, 0.0]
    assert run("repetition", ["a b a b a b"], n=1) == [pytest.approx(-2 / 3)]
    assert all(-1.0 <= v <= 0.0 for v in run("repetition", ["x " * 50]))
    with pytest.raises(ValueError, match="n must be"):
        rewards.make("repetition", n=0)


# Degenerate completions (the reward audit of docs/design.md, "Reward audit"): each one gamed its reward before.


def task_reward(task, prompt, completion, **fields):
    from textgym.envs.tasks import TASKS

    total, _ = score(rewards.make(TASKS[task].reward), [prompt], [completion], {k: [v] for k, v in fields.items()})
    return float(total[0])


def test_sentiment_a_list_of_positive_words_is_not_a_review():
    salad = " great, wonderful, amazing, excellent, perfect"
    sentence = " The acting was wonderful and the music felt warm."
    assert run("sentiment", [salad], max_sentiment_word_share=None)[0] > 0.95  # plain VADER: the hole
    assert task_reward("sentiment", "Review: I saw this film.", salad) < 0.3
    assert task_reward("sentiment", "Review: I saw this film.", sentence) > 0.8
    assert task_reward("sentiment", "Review: I saw this film.", " excellent. excellent. excellent. excellent.") < 0.3
    with pytest.raises(ValueError, match="max_sentiment_word_share"):
        rewards.make("sentiment", max_sentiment_word_share=0)


def test_sentiment_one_sentence_for_every_prompt_is_not_optimal():
    # the topic guard: the same positive sentence scores in full only under a review of what it talks about
    sentence = " The battery was really great."
    camera = ["camera", "lens", "battery", "price"]
    show = ["show", "cast", "story", "first episode"]
    on_topic = task_reward("sentiment", "Review: I bought this camera.", sentence, topics=camera)
    off_topic = task_reward("sentiment", "Review: I watched this show.", sentence, topics=show)
    assert on_topic > 0.8 and off_topic == pytest.approx(on_topic / 2)
    # phrases match as whole words by stem: plurals and multi-word aspects count, substrings do not
    assert task_reward("sentiment", "p", " The first episodes were great.", topics=show) > 0.8
    assert task_reward("sentiment", "p", " The showroom was great.", topics=show) < 0.5
    # records without topics (a user's own prompts) are never scaled; off_topic_factor=1 turns the guard off
    assert run("sentiment", [sentence]) == pytest.approx(run("sentiment", [sentence], {"topics": [show]},
                                                             off_topic_factor=1.0))
    with pytest.raises(RewardInputError, match="topics"):
        run("sentiment", [sentence], {"topics": [[3]]})
    with pytest.raises(ValueError, match="off_topic_factor"):
        rewards.make("sentiment", off_topic_factor=2)


def test_numeric_match_is_not_gamed_by_constants_copies_or_number_lists():
    prompt, answer = "Q: 17 + 26 = ? A:", "43"
    assert task_reward("arithmetic", prompt, " 43", answer=answer) == 1.0
    for degenerate in (" 0", " 17 + 26", " 42 43 44 45", " 4", " 430", " 43.5"):
        assert task_reward("arithmetic", prompt, degenerate, answer=answer) == 0.0, degenerate


def test_format_list_items_must_be_distinct():
    from textgym.data.formats import CATEGORIES, list_pattern, words_pattern

    drinks = {"prompt": "List five drinks separated by commas:", "kind": "list", "target_words": 5,
              "pattern": list_pattern(CATEGORIES["drinks"], 5)}
    assert task_reward("format", drinks.pop("prompt"), " tea, milk, soda, juice, water", **drinks) == 1.0
    for degenerate in (" soda, soda, soda, soda, water", " water, water, water, water, water"):
        assert task_reward("format", "List five drinks separated by commas:", degenerate, **drinks) < 0.3
    one_repeat = task_reward("format", "List five drinks separated by commas:", " tea, milk, Tea, juice, water.", **drinks)
    assert one_repeat == pytest.approx(0.4)  # the format fails, 4 of 5 items: the length part
    tools = {"kind": "list", "target_words": 6, "pattern": list_pattern(CATEGORIES["tools"], 6)}
    assert task_reward("format", "Name 6 tools, separated by commas:", " rake, axe, rake, rake, rake, axe", **tools) < 0.3
    sea = {"kind": "words", "target_words": 5, "pattern": words_pattern(5, "sea")}
    assert task_reward("format", "Write exactly 5 words about the sea:", " The sea is very calm.", **sea) == 1.0
    for degenerate in (" sea sea sea sea sea", " the the the the the", " The sea is very calm. The sea is"):
        assert task_reward("format", "Write exactly 5 words about the sea:", degenerate, **sea) < 0.55, degenerate
    # without a kind (user data), repeated words are still just words
    assert run("format_or_length", ["a, a"], {"pattern": [r"\w(, \w)"], "target_words": [2]}) == [1.0]


def test_keywords_must_be_used_in_a_sentence_not_listed_or_copied():
    prompt = "Write a sentence with: dog, ball, park.\nSentence:"
    keywords = ["dog", "ball", "park"]
    assert task_reward("keywords", prompt, " The dog chases the ball in the park.", keywords=keywords) == 1.0
    for degenerate in (" dog, ball, park", " dog ball park", " Write a sentence with: dog, ball, park.",
                       " dogs, balls, parks.", " dog dog ball ball park park"):
        assert task_reward("keywords", prompt, degenerate, keywords=keywords) < 0.3, degenerate
        assert run("keywords", [degenerate], {"keywords": [keywords]}, sentence=False) == [1.0]  # the hole
    # a comma inside a real sentence is fine
    assert run("keywords", ["In the park, the dog chases a ball."], {"keywords": [keywords]}) == [1.0]


def test_token_f1_is_not_gamed_by_copying_the_passage_or_listing_candidates():
    from textgym.data import load_task_data

    record = next(r for r in load_task_data("qa", "test") if r["qtype"] == "job")
    prompt, fields = record["prompt"], {"answer": record["answer"], "references": record["references"]}
    assert task_reward("qa", prompt, " " + record["answer"], **fields) == 1.0
    passage = prompt.split("Context: ")[1].split("\nQuestion:")[0]
    assert task_reward("qa", prompt, " " + passage, **fields) < 0.15  # copy the passage
    assert task_reward("qa", prompt, " " + prompt, **fields) < 0.15  # copy the prompt
    from textgym.data.qa import JOBS

    assert task_reward("qa", prompt, " " + " ".join(JOBS), **fields) < 0.15  # every job at once
    wrong = next(j for j in JOBS if j not in passage)
    assert task_reward("qa", prompt, " " + wrong, **fields) == 0.0  # a constant answer


def test_tone_a_string_of_cues_is_not_a_reply():
    prompt = "User: my order arrived broken.\nTone: apologetic\nReply:"
    reply = " I am so sorry about your order, and I apologize. We will fix it right away."
    assert task_reward("dialogue", prompt, reply, tone="apologetic") > 0.75
    cases = {"apologetic": " Sorry! Apologies! Forgive me!", "enthusiastic": " !!!!!!!!",
             "polite": " please thank you kindly", "positive": " wonderful lovely great happy"}
    for tone, degenerate in cases.items():
        before = run("tone", [degenerate], {"tone": [tone]}, min_words=0, max_cue_word_share=None)[0]
        after = task_reward("dialogue", prompt, degenerate, tone=tone)
        assert after < 0.45 < before, (tone, before, after)
    with pytest.raises(ValueError, match="max_cue_word_share"):
        rewards.make("tone", max_cue_word_share=2)


def test_rouge_and_bleu_chrf_penalise_a_repeated_reference():
    summary = "Maple Creek opened a new school that cost 47 million dollars."
    article = ("Article: The town of Maple Creek opened a new school on Wednesday. The school cost 47 million dollars "
               "and took 3 years to build. Mayor Sara Khan said it would serve 1500 families.\nSummary:")
    refs = {"references": [summary]}
    assert task_reward("summarize", article, " " + summary, **refs) == 1.0
    assert run("rouge", [f"{summary} {summary}"], {"references": [[summary]]}) == [pytest.approx(2 / 3)]  # the hole
    assert task_reward("summarize", article, f" {summary} {summary}", **refs) < 0.45
    assert task_reward("summarize", article, " " + article, **refs) < 0.45  # copy the prompt
    assert task_reward("summarize", article, " Maple Creek Maple Creek Maple Creek", **refs) < 0.1
    french = "Nous buvons l'eau aujourd'hui."
    prompt = "Translate to French: We drink the water today.\nFrench:"
    assert task_reward("translate", prompt, " " + french, references=[french]) == pytest.approx(1.0)
    assert task_reward("translate", prompt, f" {french} {french}", references=[french]) < 0.4
    assert task_reward("translate", prompt, " We drink the water today.", references=[french]) < 0.1  # a copy
    assert task_reward("translate", prompt, " nous nous nous nous", references=[french]) < 0.1
