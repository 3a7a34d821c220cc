"""Training textgym's sentencepiece tokenizers (:func:`train_sentencepiece`, with :data:`SPM_TRAINER_OPTIONS`).
Moved out of ``textgym/tokenizers.py``, which loads tokenizers; training is the one step that makes them."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sentencepiece as spm

from textgym.tokenizers import DEFAULT_VOCAB_SIZE, SPECIAL_PIECES, TextTokenizer, _SpmBackend

# Trainer options for textgym's own models. Identity normalization, no dummy prefix and no whitespace cleanup
# make decode(encode(text)) == text for every string, and make a completion's tokens the same whether it is
# encoded alone (" 12") or after its prompt. byte_fallback spells unseen characters as UTF-8 bytes (no <unk>).
SPM_TRAINER_OPTIONS: dict[str, Any] = {
    "normalization_rule_name": "identity",
    "add_dummy_prefix": False,
    "remove_extra_whitespaces": False,
    "byte_fallback": True,
    "character_coverage": 1.0,
    "split_by_whitespace": True,
    "pad_id": 0,
    "eos_id": 1,
    "bos_id": 2,
    "unk_id": 3,
    "pad_piece": SPECIAL_PIECES["pad"],
    "eos_piece": SPECIAL_PIECES["eos"],
    "bos_piece": SPECIAL_PIECES["bos"],
    "unk_piece": SPECIAL_PIECES["unk"],
    "num_threads": 1,  # single-threaded EM: the same corpus always gives the same model
    "minloglevel": 2,
}


def train_sentencepiece(
    texts_or_files: Iterable[str | os.PathLike] | str | os.PathLike,
    output_dir: str | os.PathLike,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    model_type: str = "bpe",
    seed: int = 0,
    **trainer_options: Any,
) -> TextTokenizer:
    """Train a sentencepiece model with textgym's options and save it to ``output_dir``.

    Args:
        texts_or_files: the training text: an iterable of strings (each one a training "sentence"; newlines
            inside are kept) or of files (one sentence per line): ``pathlib.Path`` objects, or strings when every
            one of them names an existing file; a single path means one file.
        output_dir: directory (created if missing) that receives ``textgym-spm.model`` and the equivalent
            Hugging Face files, so both :func:`load_tokenizer` and ``AutoTokenizer.from_pretrained`` load it.
        vocab_size: number of pieces, including the 4 special pieces and 256 byte pieces.
        model_type: ``"bpe"`` (the default) or ``"unigram"``. On small, templated corpora like textgym's,
            unigram's EM prunes common whole words ("▁the" becomes "▁" + "the"): BPE needed 28% fewer tokens
            for the built-in data at 4,096 pieces.
        seed: seed of sentencepiece's random generator; with ``num_threads=1`` training is deterministic.
        **trainer_options: sentencepiece trainer options overriding :data:`SPM_TRAINER_OPTIONS`
            (e.g. ``character_coverage=0.9995``, ``split_digits=True``).

    Returns:
        The trained tokenizer.

    Raises:
        ValueError: an unknown model type, no text, or a vocabulary the text cannot support (the message gives
            the largest size sentencepiece found possible).
    """
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}.")
    if isinstance(texts_or_files, (str, os.PathLike)):
        texts_or_files = [Path(texts_or_files)]
    items = list(texts_or_files)
    if not items:
        raise ValueError("train_sentencepiece() got no text: pass strings or pathlib.Path files.")
    options = {**SPM_TRAINER_OPTIONS, **trainer_options, "vocab_size": vocab_size, "model_type": model_type}
    files = [i for i in items if isinstance(i, os.PathLike)]
    if not files and all(isinstance(i, str) and _names_a_file(i) for i in items):
        files = [Path(i) for i in items]  # a list of path strings, e.g. from a command line
    if files:
        if len(files) != len(items):
            raise ValueError("Pass either strings (texts) or pathlib.Path objects (files), not a mix.")
        missing = [str(f) for f in files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"Corpus file(s) not found: {', '.join(missing)}.")
        options["input"] = [str(f) for f in files]
    else:
        bad = [i for i, t in enumerate(items) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"Text {bad[0]} is a {type(items[bad[0]]).__name__}; pass strings or pathlib.Path files.")
        options["sentence_iterator"] = iter(items)
    writer = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(model_writer=writer, **options)
    except RuntimeError as error:
        reason = str(error).rstrip(".")
        raise ValueError(f"sentencepiece could not train a {vocab_size}-piece {model_type} model: {reason}. "
                         "Lower vocab_size to the size it suggests or add more text.") from error
    tokenizer = TextTokenizer(_SpmBackend(writer.getvalue()), str(output_dir))
    tokenizer.save_pretrained(output_dir)
    return tokenizer


def _names_a_file(text: str) -> bool:
    return "\n" not in text and len(text) < 4096 and Path(text).is_file()
