"""TextTokenizer: one adapter over sentencepiece ``.model`` files and local Hugging Face tokenizer dirs.

The env, the policy and the rewards only need ``encode``/``decode`` and four special ids; this adapter gives
them that for both kinds of tokenizer, and converts a sentencepiece model into an equivalent Hugging Face fast
tokenizer (``to_hf`` / ``save_pretrained``) so that exported models load with ``AutoTokenizer`` and run in
``transformers.pipeline``.

textgym never downloads anything: ``from_pretrained`` takes local paths only. To use a hub tokenizer, save it
once on a machine with network (``AutoTokenizer.from_pretrained(name).save_pretrained(dir)``) and pass ``dir``.

Special tokens of the default model (and of every model trained with :func:`textgym.spm_training.train_sentencepiece`):
``<pad>`` = 0, ``</s>`` (EOS) = 1, ``<s>`` (BOS) = 2, ``<unk>`` = 3. Tokenizers without a pad token (GPT-2,
Llama) use their EOS id as pad, as ``transformers`` users do; the env's attention mask tells the two apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import sentencepiece as spm

from textgym.spm_convert import spm_to_hf

SPM_FILENAME = "textgym-spm.model"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "assets" / SPM_FILENAME
DEFAULT_VOCAB_SIZE = 4096
SPECIAL_PIECES = {"pad": "<pad>", "eos": "</s>", "bos": "<s>", "unk": "<unk>"}

_OFFLINE_HINT = (
    "textgym is offline and never downloads tokenizers. Pass a sentencepiece .model file, a directory holding "
    "one, or a local Hugging Face tokenizer directory; to use a hub tokenizer, run "
    "`AutoTokenizer.from_pretrained(name).save_pretrained(dir)` once on a machine with network and pass dir."
)


class TextTokenizer:
    """A tokenizer as textgym uses it: plain-text ``encode``/``decode`` plus the special ids.

    Build one with :meth:`from_pretrained`, :func:`load_tokenizer`, :func:`default_tokenizer` or
    :func:`textgym.spm_training.train_sentencepiece`; the constructor is internal.

    Attributes:
        vocab_size: number of ids; every id is in ``[0, vocab_size)`` (the env's ``Discrete(vocab_size)``).
        pad_token_id: id written into unused observation slots (falls back to EOS where there is no pad token).
        eos_token_id: id that ends an episode.
        bos_token_id: beginning-of-sequence id, or ``None``; ``encode`` never adds it.
        unk_token_id: unknown-token id, or ``None``.
        name_or_path: where the tokenizer was loaded from.
    """

    def __init__(self, backend: _SpmBackend | _HfBackend, name_or_path: str):
        self._backend = backend
        self.name_or_path = name_or_path
        self.vocab_size: int = backend.vocab_size
        self.eos_token_id: int = backend.eos_token_id
        self.pad_token_id: int = backend.pad_token_id
        self.bos_token_id: int | None = backend.bos_token_id
        self.unk_token_id: int | None = backend.unk_token_id

    def __repr__(self) -> str:
        kind = "sentencepiece" if isinstance(self._backend, _SpmBackend) else type(self._backend.tok).__name__
        return (f"TextTokenizer({kind}, vocab_size={self.vocab_size}, pad={self.pad_token_id}, "
                f"eos={self.eos_token_id}, path={self.name_or_path!r})")

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def is_sentencepiece(self) -> bool:
        """True when backed by a sentencepiece model (exact ``to_hf`` conversion), False for a HF tokenizer."""
        return isinstance(self._backend, _SpmBackend)

    @property
    def fingerprint(self) -> str:
        """A short hash of the vocabulary and its special ids: equal fingerprints tokenize alike (cache keys)."""
        import hashlib

        if isinstance(self._backend, _SpmBackend):
            material = self._backend.model_proto
        else:
            material = json.dumps(sorted(self._backend.tok.get_vocab().items())).encode()
        specials = f"{self.pad_token_id},{self.eos_token_id},{self.bos_token_id}".encode()
        return hashlib.sha256(material + specials).hexdigest()[:16]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens.

        Args:
            text: any string (non-ASCII characters unseen in training fall back to UTF-8 byte tokens).
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}; use batch_encode() for a list.")
        return self._backend.encode([text])[0]

    def batch_encode(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode`` for each string of ``texts`` (one batched backend call).

        Args:
            texts: a sequence of strings.
        """
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"batch_encode() takes strings; item {bad[0]} is a {type(texts[bad[0]]).__name__}.")
        return self._backend.encode(texts) if texts else []

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``.

        Args:
            ids: token ids (ints, numpy or torch integers, or a 1-D array/tensor).
            skip_special_tokens: drop pad/EOS/BOS (the default); if False they appear as their text (``</s>``).

        Raises:
            ValueError: an id outside ``[0, vocab_size)``.
        """
        ids = _as_int_list(ids)
        out_of_range = [i for i in ids if not 0 <= i < self.vocab_size]
        if out_of_range:
            raise ValueError(
                f"Token id {out_of_range[0]} is outside [0, {self.vocab_size}) for this tokenizer; the ids come "
                "from a model whose vocabulary does not match the tokenizer."
            )
        return self._backend.decode(ids, skip_special_tokens)

    def batch_decode(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        """``decode`` for each id sequence of ``batch`` (a list of lists or a 2-D array/tensor).

        Args:
            batch: sequences of token ids.
            skip_special_tokens: as in :meth:`decode`.
        """
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    def to_hf(self):
        """A ``transformers`` tokenizer that tokenizes exactly like this one.

        For sentencepiece models: a ``PreTrainedTokenizerFast`` built from the model's pieces (a ``tokenizers``
        Unigram or BPE model with the same normalization, splitting and byte fallback); it adds no special tokens
        when encoding, like :meth:`encode`. For HF-backed tokenizers: the wrapped tokenizer itself.
        """
        return self._backend.to_hf()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write the tokenizer to ``directory`` so that both ``AutoTokenizer.from_pretrained(directory)`` and
        :meth:`TextTokenizer.from_pretrained` load it (sentencepiece models also keep their ``.model`` file).

        Args:
            directory: target directory (created if missing).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._backend.save(directory)

    @classmethod
    def from_pretrained(cls, path_or_dir: str | os.PathLike, **kwargs: Any) -> TextTokenizer:
        """Load a local tokenizer.

        Args:
            path_or_dir: a sentencepiece ``.model`` file; a directory written by :meth:`save_pretrained` or
                :func:`textgym.spm_training.train_sentencepiece` (holding ``textgym-spm.model``); a local Hugging Face tokenizer
                directory (``tokenizer_config.json`` / ``tokenizer.json``); or a directory holding one ``.model``.
            **kwargs: passed to ``transformers.AutoTokenizer.from_pretrained`` for HF directories (e.g.
                ``eos_token="</s>"`` for a tokenizer that lacks one; ``trust_remote_code=True`` to run a tokenizer
                defined by code in the directory: off by default, never asked on stdin); not accepted for
                sentencepiece files.

        Raises:
            FileNotFoundError: ``path_or_dir`` is not an existing local path (textgym is offline).
            ValueError: the directory holds no tokenizer, or the tokenizer has no EOS token.
        """
        path = Path(os.fspath(path_or_dir)).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"No local tokenizer at {str(path_or_dir)!r}. {_OFFLINE_HINT}")
        spm_file = _spm_file_in(path)
        if spm_file is not None:
            if kwargs:
                raise TypeError(f"Options {sorted(kwargs)} only apply to Hugging Face tokenizer directories, "
                                f"not to the sentencepiece model {spm_file}.")
            return cls(_SpmBackend(spm_file.read_bytes()), str(path))
        if path.is_dir() and any((path / f).exists() for f in ("tokenizer_config.json", "tokenizer.json")):
            from transformers import AutoTokenizer

            # Explicitly False (unless the caller says True): None would make transformers ask on stdin and, on
            # "y", run Python code shipped in the (data) directory.
            kwargs.setdefault("trust_remote_code", False)
            try:
                tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True, **kwargs)
            except ValueError as e:
                if kwargs["trust_remote_code"] or "trust_remote_code" not in str(e):
                    raise
                raise ValueError(
                    f"The tokenizer at {str(path)!r} is defined by Python code shipped in the directory (auto_map in "
                    "tokenizer_config.json), which textgym does not run unless told to: pass trust_remote_code=True "
                    "(TextTokenizer.from_pretrained(path, trust_remote_code=True)) only if you trust that code."
                ) from e
            return cls(_HfBackend(tok), str(path))
        raise ValueError(
            f"{str(path)!r} holds no tokenizer: expected a sentencepiece .model file or a directory with "
            f"{SPM_FILENAME}, tokenizer.json or tokenizer_config.json. {_OFFLINE_HINT}"
        )


def _spm_file_in(path: Path) -> Path | None:
    """The sentencepiece model ``path`` names: the file itself, textgym's file in a dir, or a dir's only .model
    (when the dir is not a HF tokenizer dir: those keep ``tokenizer.model`` next to their own config)."""
    if path.is_file():
        return path
    if (path / SPM_FILENAME).is_file():
        return path / SPM_FILENAME
    is_hf_dir = any((path / f).exists() for f in ("tokenizer_config.json", "tokenizer.json"))
    models = sorted(path.glob("*.model"))
    if len(models) == 1 and not is_hf_dir:
        return models[0]
    return None


def _as_int_list(ids: Iterable[int]) -> list[int]:
    if hasattr(ids, "tolist"):  # numpy arrays and torch tensors
        ids = ids.tolist()
    if isinstance(ids, int):
        raise TypeError("decode() takes a sequence of ids; wrap a single id in a list: decode([id]).")
    return [int(i) for i in ids]


class _SpmBackend:
    """A sentencepiece model, kept as its serialized bytes (for saving and HF conversion)."""

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.sp.get_piece_size()
        ids = {"pad": self.sp.pad_id(), "eos": self.sp.eos_id(), "bos": self.sp.bos_id(), "unk": self.sp.unk_id()}
        if ids["eos"] < 0:
            raise ValueError("This sentencepiece model has no EOS piece, so episodes could never end: retrain it "
                             "with textgym.spm_training.train_sentencepiece (or spm's --eos_id).")
        self.eos_token_id = ids["eos"]
        self.pad_token_id = ids["pad"] if ids["pad"] >= 0 else ids["eos"]
        self.bos_token_id = ids["bos"] if ids["bos"] >= 0 else None
        self.unk_token_id = ids["unk"] if ids["unk"] >= 0 else None
        self._hf = None

    def encode(self, texts: list[str]) -> list[list[int]]:
        # One call per text: spm's list form starts a thread pool on every call (~1.5 ms on a busy 2-core box,
        # 30x the 50 us of the encode itself), which made tokenizing a task's data the warm start's main cost.
        return [self.sp.encode(text, out_type=int) for text in texts]

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        if skip_special_tokens:
            return self.sp.decode([i for i in ids if not self.sp.is_control(i)])
        # Keep control tokens as text, decoding the runs of ordinary ids between them (as HF decode does).
        parts, run = [], []
        for i in ids:
            if self.sp.is_control(i):
                parts.extend([self.sp.decode(run), self.sp.id_to_piece(i)])
                run = []
            else:
                run.append(i)
        parts.append(self.sp.decode(run))
        return "".join(parts)

    def to_hf(self):
        if self._hf is None:
            self._hf = spm_to_hf(self.model_proto)
        return self._hf

    def save(self, directory: Path) -> None:
        (directory / SPM_FILENAME).write_bytes(self.model_proto)
        self.to_hf().save_pretrained(str(directory))


class _HfBackend:
    """A ``transformers`` tokenizer (fast or slow)."""

    def __init__(self, tok: Any):
        if tok.eos_token_id is None:
            raise ValueError(
                f"The tokenizer {getattr(tok, 'name_or_path', '')!r} has no EOS token, so episodes could never end. "
                "Set one: TextTokenizer.from_pretrained(dir, eos_token='</s>') or tok.add_special_tokens("
                "{'eos_token': '</s>'}) (resize the model's embeddings if the token is new)."
            )
        self.tok = tok
        self.vocab_size = len(tok)
        self.eos_token_id = int(tok.eos_token_id)
        self.pad_token_id = int(tok.pad_token_id) if tok.pad_token_id is not None else self.eos_token_id
        self.bos_token_id = int(tok.bos_token_id) if tok.bos_token_id is not None else None
        self.unk_token_id = int(tok.unk_token_id) if tok.unk_token_id is not None else None

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self.tok(texts, add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self.tok.decode(ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=False)

    def to_hf(self):
        return self.tok

    def save(self, directory: Path) -> None:
        self.tok.save_pretrained(str(directory))



@lru_cache(maxsize=1)
def default_tokenizer() -> TextTokenizer:
    """textgym's default tokenizer: the sentencepiece model shipped in ``textgym/assets`` (cached)."""
    if not DEFAULT_MODEL_PATH.is_file():
        raise FileNotFoundError(f"The default tokenizer {DEFAULT_MODEL_PATH} is missing from this install; "
                                "rebuild it with `python scripts/train_default_tokenizer.py`.")
    return TextTokenizer.from_pretrained(DEFAULT_MODEL_PATH)


def load_tokenizer(spec: Any = None) -> TextTokenizer:
    """Any tokenizer description -> :class:`TextTokenizer`.

    Args:
        spec: ``None`` (the default tokenizer), a :class:`TextTokenizer` (returned as is), a local path (see
            :meth:`TextTokenizer.from_pretrained`), or a ``transformers`` tokenizer object (wrapped).

    Raises:
        TypeError: ``spec`` is none of these.
    """
    if spec is None:
        return default_tokenizer()
    if isinstance(spec, TextTokenizer):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return TextTokenizer.from_pretrained(spec)
    if callable(getattr(spec, "convert_tokens_to_ids", None)) and callable(getattr(spec, "decode", None)):
        return TextTokenizer(_HfBackend(spec), str(getattr(spec, "name_or_path", "")))
    raise TypeError(
        f"Cannot use a {type(spec).__name__} as a tokenizer: pass None (the default), a local path, a "
        "TextTokenizer or a transformers tokenizer."
    )
