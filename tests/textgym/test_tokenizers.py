"""TextTokenizer: the default model, round trips, exact Hugging Face conversion, loading rules and training."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from textgym.data import load_task_data
from textgym.spm_training import train_sentencepiece
from textgym.tokenizers import (
    DEFAULT_MODEL_PATH,
    SPM_FILENAME,
    TextTokenizer,
    default_tokenizer,
    load_tokenizer,
)

TEXTS = [
    "The movie was great, and the music was lovely.",
    "Q: 17 + 25 = ? A: 42",
    "Write a sentence with: dog, ball.\nSentence: The dog chases the ball.",
    "Le garçon mange une pomme aujourd'hui. Ma sœur boit du thé.",
    "naïve café résumé — «quotes» 日本語のテキスト 🙂🚀",
    "  two  leading spaces,\ttabs\nand\n\nblank lines  ",
    "literal </s> and <pad> and <0x41> are just text",
    "",
    " 12",
]


@pytest.fixture(scope="module")
def small_corpus():
    return [r["prompt"] + r["completion"] for r in load_task_data("translate")]


def test_default_tokenizer_ids_and_cache(tokenizer):
    assert default_tokenizer() is default_tokenizer() is tokenizer
    assert tokenizer.vocab_size == 4096 == len(tokenizer)
    special = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id)
    assert special == (0, 1, 2, 3)
    assert tokenizer.is_sentencepiece


def test_default_model_is_reproducible_from_the_training_script(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    try:
        from train_default_tokenizer import default_corpus
    finally:
        sys.path.pop(0)
    train_sentencepiece(default_corpus(), tmp_path, vocab_size=4096, model_type="bpe", seed=0)
    assert (tmp_path / SPM_FILENAME).read_bytes() == DEFAULT_MODEL_PATH.read_bytes(), (
        "textgym/assets is stale: run `python scripts/train_default_tokenizer.py` after changing textgym/data"
    )


@pytest.mark.parametrize("text", TEXTS)
def test_decode_inverts_encode_exactly(tokenizer, text):
    ids = tokenizer.encode(text)
    assert all(isinstance(i, int) and 0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.eos_token_id not in ids and tokenizer.pad_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_completion_tokens_do_not_depend_on_the_prompt(tokenizer):
    # The env encodes the prompt alone and the reward decodes the generated tokens alone.
    for task in ("arithmetic", "sentiment", "qa", "translate"):
        for record in load_task_data(task, n=30):
            joined = tokenizer.encode(record["prompt"] + record["completion"])
            assert joined == tokenizer.encode(record["prompt"]) + tokenizer.encode(record["completion"])


def test_common_words_are_single_tokens(tokenizer):
    for word in (" the", " movie", " great", " and", " wonderful", " 12"):
        assert len(tokenizer.encode(word)) == 1, word


def test_batches_and_array_inputs(tokenizer):
    batch = tokenizer.batch_encode(TEXTS)
    assert batch == [tokenizer.encode(t) for t in TEXTS]
    assert tokenizer.batch_decode(batch) == TEXTS
    ids = tokenizer.encode("hello there")
    assert tokenizer.decode(np.array(ids)) == tokenizer.decode(torch.tensor(ids)) == "hello there"
    assert tokenizer.batch_encode([]) == []


def test_special_tokens_in_decode(tokenizer):
    ids = tokenizer.encode("hi") + [tokenizer.eos_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(ids) == "hi"
    assert tokenizer.decode(ids, skip_special_tokens=False) == "hi</s><pad>"


def test_bad_inputs_raise_clear_errors(tokenizer):
    with pytest.raises(ValueError, match=r"outside \[0, 4096\)"):
        tokenizer.decode([5000])
    with pytest.raises(TypeError, match=r"decode\(\[id\]\)"):
        tokenizer.decode(5)
    with pytest.raises(TypeError, match="batch_encode"):
        tokenizer.encode(["a list"])
    with pytest.raises(TypeError, match="item 1"):
        tokenizer.batch_encode(["ok", 3])


def test_to_hf_tokenizes_identically(tokenizer):
    hf = tokenizer.to_hf()
    records = load_task_data("summarize", n=50) + load_task_data("dialogue", n=50)
    corpus = TEXTS + [r["prompt"] + r["completion"] for r in records]
    for text in corpus:
        ids = tokenizer.encode(text)
        assert hf(text, add_special_tokens=False)["input_ids"] == ids, text
        assert hf.decode(ids) == tokenizer.decode(ids)
    assert (hf.pad_token_id, hf.eos_token_id, hf.bos_token_id, len(hf)) == (0, 1, 2, 4096)


def test_saved_dir_loads_with_auto_tokenizer_and_back(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert hf(text)["input_ids"] == ids  # no BOS/EOS added by default, like the env
        assert hf.decode(ids, skip_special_tokens=True) == text
    assert hf.pad_token_id == 0 and hf.eos_token_id == 1
    again = TextTokenizer.from_pretrained(tmp_path)  # prefers the .model next to the HF files
    assert again.is_sentencepiece and again.encode(TEXTS[4]) == tokenizer.encode(TEXTS[4])
    (tmp_path / SPM_FILENAME).unlink()
    via_hf = TextTokenizer.from_pretrained(tmp_path)
    assert not via_hf.is_sentencepiece
    assert [via_hf.encode(t) for t in TEXTS] == [tokenizer.encode(t) for t in TEXTS]
    assert (via_hf.vocab_size, via_hf.pad_token_id, via_hf.eos_token_id) == (4096, 0, 1)


def test_exported_model_runs_in_a_transformers_pipeline(tokenizer, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM, pipeline

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generate = pipeline("text-generation", model=str(tmp_path), device="cpu")
    out = generate("Review: I watched this movie", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert out.startswith("Review: I watched this movie") and len(out) > len("Review: I watched this movie")


def test_from_pretrained_paths_and_errors(tmp_path, tokenizer):
    assert TextTokenizer.from_pretrained(DEFAULT_MODEL_PATH).encode("the cat") == tokenizer.encode("the cat")
    other = tmp_path / "plain"
    other.mkdir()
    (other / "my.model").write_bytes(DEFAULT_MODEL_PATH.read_bytes())
    assert TextTokenizer.from_pretrained(other).vocab_size == 4096  # a dir holding one .model
    with pytest.raises(FileNotFoundError, match="textgym is offline"):
        TextTokenizer.from_pretrained("gpt2")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no tokenizer"):
        TextTokenizer.from_pretrained(empty)
    with pytest.raises(TypeError, match="only apply to Hugging Face"):
        TextTokenizer.from_pretrained(DEFAULT_MODEL_PATH, eos_token="</s>")


def _word_level_hf(with_pad: bool, with_eos: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[EOS]": 1, "[PAD]": 2, "hello": 3, "world": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = {"unk_token": "[UNK]"}
    if with_pad:
        specials["pad_token"] = "[PAD]"
    if with_eos:
        specials["eos_token"] = "[EOS]"
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


def test_load_tokenizer_accepts_every_spec(tokenizer, tmp_path):
    assert load_tokenizer() is tokenizer and load_tokenizer(tokenizer) is tokenizer
    assert load_tokenizer(str(DEFAULT_MODEL_PATH)).vocab_size == 4096
    wrapped = load_tokenizer(_word_level_hf(with_pad=True, with_eos=True))
    assert (wrapped.vocab_size, wrapped.eos_token_id, wrapped.pad_token_id) == (5, 1, 2)
    assert wrapped.encode("hello world") == [3, 4] and wrapped.decode([3, 4, 1]) == "hello world"
    no_pad = load_tokenizer(_word_level_hf(with_pad=False, with_eos=True))
    assert no_pad.pad_token_id == no_pad.eos_token_id == 1  # the documented GPT-2 convention
    with pytest.raises(ValueError, match="no EOS token"):
        load_tokenizer(_word_level_hf(with_pad=True, with_eos=False))
    with pytest.raises(TypeError, match="Cannot use a int"):
        load_tokenizer(3)
    wrapped.save_pretrained(tmp_path)
    assert TextTokenizer.from_pretrained(tmp_path).encode("world hello") == [4, 3]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_trained_models_convert_exactly_to_hf(small_corpus, tmp_path, model_type):
    trained = train_sentencepiece(small_corpus, tmp_path, vocab_size=400, model_type=model_type)
    assert (tmp_path / SPM_FILENAME).is_file() and trained.vocab_size == 400
    assert (tmp_path / "tokenizer.json").is_file()  # the output dir is also a HF tokenizer dir
    assert (trained.pad_token_id, trained.eos_token_id) == (0, 1)
    hf = trained.to_hf()
    texts = TEXTS + small_corpus[:100]
    if model_type == "unigram":  # the documented gap: "<", "/", ">" are not in this tiny vocabulary
        texts = [t for t in texts if "</s>" not in t]
    for text in texts:
        assert hf(text, add_special_tokens=False)["input_ids"] == trained.encode(text), text
        assert trained.decode(trained.encode(text)) == text


def test_training_is_deterministic_and_reads_files(small_corpus, tmp_path):
    first = train_sentencepiece(small_corpus, tmp_path / "a", vocab_size=400)
    second = train_sentencepiece(small_corpus, tmp_path / "b", vocab_size=400)
    assert (tmp_path / "a" / SPM_FILENAME).read_bytes() == (tmp_path / "b" / SPM_FILENAME).read_bytes()
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(small_corpus), encoding="utf-8")
    from_file = train_sentencepiece(corpus_file, tmp_path / "c", vocab_size=400)
    assert from_file.decode(from_file.encode(small_corpus[0])) == small_corpus[0]
    from_str_path = train_sentencepiece([str(corpus_file)], tmp_path / "d", vocab_size=400)  # as a CLI passes it
    assert (tmp_path / "d" / SPM_FILENAME).read_bytes() == (tmp_path / "c" / SPM_FILENAME).read_bytes()
    assert from_str_path.vocab_size == 400
    assert first.encode(small_corpus[1]) == second.encode(small_corpus[1])


def test_training_errors_name_the_fix(small_corpus, tmp_path):
    with pytest.raises(ValueError, match="Lower vocab_size"):
        train_sentencepiece(small_corpus[:50], tmp_path, vocab_size=50_000)
    with pytest.raises(ValueError, match="'unigram' or 'bpe'"):
        train_sentencepiece(small_corpus, tmp_path, model_type="char")
    with pytest.raises(ValueError, match="got no text"):
        train_sentencepiece([], tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        train_sentencepiece([Path(tmp_path / "missing.txt")], tmp_path)
    with pytest.raises(ValueError, match="not a mix"):
        train_sentencepiece(["text", Path(tmp_path)], tmp_path)


def test_training_script_on_a_user_corpus(small_corpus, tmp_path):
    from transformers import AutoTokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    try:
        from train_default_tokenizer import main
    finally:
        sys.path.pop(0)
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(small_corpus), encoding="utf-8")
    out = tmp_path / "tok"
    assert main(["--corpus", str(corpus_file), "--vocab-size", "420", "--output", str(out)]) == 0
    mine = load_tokenizer(str(out))
    assert mine.vocab_size == 420
    assert AutoTokenizer.from_pretrained(str(out))(small_corpus[5])["input_ids"] == mine.encode(small_corpus[5])
    with pytest.raises(SystemExit):
        main(["--corpus", str(corpus_file)])  # --output is required with --corpus


REMOTE_CODE = """
from pathlib import Path
Path(MARKER).write_text("the directory's code ran")  # transformers runs a copy: the marker path is absolute
from transformers import PreTrainedTokenizerFast


class EvilTokenizer(PreTrainedTokenizerFast):
    pass
"""


@pytest.mark.parametrize("own_class", [False, True], ids=["builtin-class-too", "remote-class-only"])
def test_a_tokenizer_directory_with_remote_code_never_runs_it(tokenizer, tmp_path, own_class):
    # A HF tokenizer directory whose tokenizer_config.json maps AutoTokenizer to code shipped in the directory.
    # Loading it must neither ask on stdin nor run that code (trust_remote_code=False unless the user says True):
    # it loads with transformers' own class when the config names one, else it is a clear error.
    import json
    import subprocess

    directory = tmp_path / "remote"
    tokenizer.to_hf().save_pretrained(directory)
    config_file = directory / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "evil.EvilTokenizer"]}
    if own_class:
        config["tokenizer_class"] = "EvilTokenizer"
    config_file.write_text(json.dumps(config))
    marker = tmp_path / "REMOTE_CODE_RAN"
    (directory / "evil.py").write_text(REMOTE_CODE.replace("MARKER", repr(str(marker))))
    code = f"from textgym.tokenizers import load_tokenizer\nprint(load_tokenizer({str(directory)!r}).vocab_size)"
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    proc = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2], env=env)
    output = proc.stdout + proc.stderr
    assert not marker.exists(), output
    assert "Do you wish to run the custom code" not in output
    if own_class:
        assert proc.returncode != 0 and "trust_remote_code=True" in proc.stderr, output[-2000:]
    else:
        assert proc.returncode == 0, output[-2000:]
        assert proc.stdout.strip() == str(tokenizer.vocab_size)
