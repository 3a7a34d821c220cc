"""Train textgym's default sentencepiece model, or one on your own corpus.

    python scripts/train_default_tokenizer.py                      # rebuilds textgym/assets/textgym-spm.model
    python scripts/train_default_tokenizer.py --corpus my.txt --vocab-size 8000 --output my_tokenizer/

The default model is trained on every built-in train-split text (``textgym.data.corpus_text()``) plus the
words of VADER's sentiment lexicon (shipped with the vaderSentiment dependency). The built-in text alone has
about 1,500 distinct words, which supports at most ~1,500 pieces; the lexicon's ~7,200 English words give the
policy whole-word tokens for the sentiment words RL pushes it towards, and support up to ~4,700 pieces. 8,000
pieces would need text the package does not have, so the default is 4,096. Training is deterministic (fixed
seed, one thread): rerunning the script reproduces the committed file byte for byte.

With ``--corpus`` the model is trained on your files only (one sentence per line) and written, with a Hugging
Face tokenizer next to it, to ``--output``; load it with ``textgym.load_tokenizer(output_dir)``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from textgym.spm_training import train_sentencepiece
from textgym.tokenizers import DEFAULT_MODEL_PATH, DEFAULT_VOCAB_SIZE, SPM_FILENAME


def lexicon_words() -> list[str]:
    """The alphabetic entries of VADER's lexicon ("abandon", "wonderful"), emoticons and slang symbols left out."""
    import vaderSentiment

    path = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    words = (line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    return [w for w in words if re.fullmatch(r"[a-z][a-z'-]*", w)]


def default_corpus() -> list[str]:
    """Built-in train texts, then each lexicon word once with a leading space (as it appears mid-sentence)."""
    from textgym.data import corpus_text

    return list(corpus_text()) + [" " + word for word in lexicon_words()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", type=Path, help="text files (one sentence per line); "
                        "default: textgym's built-in data plus VADER's lexicon")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="pieces, incl. 260 special/byte")
    parser.add_argument("--model-type", choices=("unigram", "bpe"), default="bpe")
    parser.add_argument("--output", type=Path, help="output directory (default: textgym/assets, when training "
                        "the default model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.corpus is None and args.output is None:
        # Rebuild the shipped model in place: write it alone (no HF files) next to the package code.
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = train_sentencepiece(default_corpus(), tmp, vocab_size=args.vocab_size,
                                            model_type=args.model_type, seed=args.seed)
            shutil.copyfile(Path(tmp) / SPM_FILENAME, DEFAULT_MODEL_PATH)
        print(f"wrote {DEFAULT_MODEL_PATH} ({os.path.getsize(DEFAULT_MODEL_PATH)} bytes, "
              f"vocab_size={tokenizer.vocab_size})")
        return 0
    if args.output is None:
        parser.error("--output is required with --corpus (the shipped default model is only rebuilt from the "
                     "built-in corpus).")
    texts = args.corpus if args.corpus is not None else default_corpus()
    tokenizer = train_sentencepiece(texts, args.output, vocab_size=args.vocab_size, model_type=args.model_type,
                                    seed=args.seed)
    print(f"wrote {args.output / SPM_FILENAME} and a Hugging Face tokenizer (vocab_size={tokenizer.vocab_size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
