"""ClassifierReward on a tiny BERT classifier built from a config and saved/loaded through from_pretrained."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from textgym import rewards  # noqa: E402
from textgym.rewards import ClassifierReward, score  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "the", "was", "very", "!", ","]


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )


def save_classifier(path, id2label):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=len(id2label), id2label=id2label,
        label2id={v: k for k, v in id2label.items()}, pad_token_id=0,
    )
    model = transformers.BertForSequenceClassification(config).eval()
    tokenizer = build_tokenizer()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model, tokenizer


TEXTS = ["the movie was very good !", "bad , bad movie", "unknownword", ""]


@pytest.fixture(scope="module")
def sentiment_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_classifier")
    model, tokenizer = save_classifier(path, {0: "NEGATIVE", 1: "POSITIVE"})
    with torch.no_grad():
        encoded = tokenizer(TEXTS[:-1], padding=True, return_tensors="pt")
        probs = model(**encoded).logits.softmax(-1).numpy()
        # The empty completion tokenizes to nothing (no special tokens here): scored as one pad token.
        pad = torch.tensor([[tokenizer.pad_token_id]])
        empty = model(input_ids=pad, attention_mask=torch.ones_like(pad)).logits.softmax(-1).numpy()
    return path, np.concatenate([probs, empty])


def test_matches_a_manual_forward_pass(sentiment_dir):
    path, probs = sentiment_dir
    reward = rewards.make("classifier", model_dir=str(path), batch_size=3)  # 2 chunks, the 2nd only ""
    assert reward.label_index == 1 and reward.labels == ["NEGATIVE", "POSITIVE"]
    total, components = score(reward, ["p"] * len(TEXTS), TEXTS, {})
    assert total.shape == (len(TEXTS),) and total.dtype == np.float64
    assert ((0 <= total) & (total <= 1)).all()
    np.testing.assert_allclose(total, probs[:, 1], rtol=1e-5, atol=1e-6)
    assert list(components) == ["classifier"]


def test_label_by_name_or_index(sentiment_dir):
    path, probs = sentiment_dir
    negative = ClassifierReward(path, label="negative")  # case-insensitive name
    np.testing.assert_allclose(negative(["p"] * len(TEXTS), TEXTS), probs[:, 0], rtol=1e-5, atol=1e-6)
    assert ClassifierReward(path, label=0).label_index == 0
    with pytest.raises(ValueError, match=r"Unknown label 'neutral'.*\['NEGATIVE', 'POSITIVE'\]"):
        ClassifierReward(path, label="neutral")
    with pytest.raises(ValueError, match="out of range"):
        ClassifierReward(path, label=5)


def test_prompt_plus_completion_input(sentiment_dir):
    path, _ = sentiment_dir
    reward = ClassifierReward(path, input="prompt+completion")
    plain = ClassifierReward(path)
    joined = reward(["the movie was very "], ["bad"])
    assert joined == pytest.approx(plain(["ignored"], ["the movie was very bad"]))
    with pytest.raises(ValueError, match="input must be one of"):
        ClassifierReward(path, input="prompt")


def test_default_label_without_a_positive_name_is_index_1(tmp_path):
    save_classifier(tmp_path, {0: "a", 1: "b", 2: "c"})
    reward = ClassifierReward(tmp_path)
    assert reward.label_index == 1
    out = reward(["p", "q"], ["good", "bad"])
    assert out.shape == (2,) and ((0 <= out) & (out <= 1)).all()


def test_missing_directory_explains_that_nothing_is_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ClassifierReward("distilbert-base-uncased-finetuned-sst-2-english")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        ClassifierReward(tmp_path)


def test_missing_tokenizer_is_explained(tmp_path):
    model, _ = save_classifier(tmp_path, {0: "NEGATIVE", 1: "POSITIVE"})
    for f in tmp_path.iterdir():
        if "token" in f.name:
            f.unlink()
    with pytest.raises(OSError, match="tokenizer.save_pretrained"):
        ClassifierReward(tmp_path)
