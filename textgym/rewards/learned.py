"""A learned reward: any local Hugging Face sequence classifier (sentiment, toxicity, a reward model).

textgym never downloads: pass a directory saved with ``model.save_pretrained(dir)`` and
``tokenizer.save_pretrained(dir)`` (``huggingface-cli download NAME --local-dir DIR`` makes one from the Hub).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from textgym.rewards.base import as_text
from textgym.rewards.per_sample import Reward
from textgym.rewards.registry import register

_POSITIVE_NAMES = ("positive", "pos")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")


class ClassifierReward(Reward):
    """The probability a sequence classifier gives to ``label``: ``softmax(logits)[label]``, in [0, 1].

    Loads ``AutoModelForSequenceClassification`` and ``AutoTokenizer`` from a local directory (safetensors weights
    preferred) and scores the batch in chunks of ``batch_size`` without gradients. A model with a single logit
    (a regression head or a reward model) gives ``sigmoid(logit)``. A completion that tokenizes to nothing is
    scored as a single pad token. Reads no field.

    Args:
        model_dir: local directory of the classifier and its tokenizer.
        label: the class to reward: an index, a label name from ``config.id2label``, or None for the first label
            named "positive"/"pos" (any case), else ``"LABEL_1"``, else index 1.
        device: torch device for the classifier (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        batch_size: completions per forward pass.
        max_length: inputs are truncated to this many tokens.
        input: ``"completion"`` scores the completion alone; ``"prompt+completion"`` scores their concatenation.
        trust_remote_code: allow custom model code shipped in ``model_dir`` (runs that code: only for
            directories you trust).
    """

    INPUTS = ("completion", "prompt+completion")

    def __init__(
        self,
        model_dir: str | Path,
        label: int | str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int = 512,
        input: str = "completion",
        trust_remote_code: bool = False,
    ):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"ClassifierReward: {str(model_dir)!r} is not a local directory. textgym never downloads models: pass "
                f"a directory holding a sequence classifier and its tokenizer (saved with save_pretrained(dir), or "
                f"fetched yourself with `huggingface-cli download NAME --local-dir DIR`)."
            )
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"ClassifierReward: {str(path)!r} has no config.json; save the classifier there with "
                f"model.save_pretrained({str(path)!r})."
            )
        if input not in self.INPUTS:
            raise ValueError(f"input must be one of {self.INPUTS}, got {input!r}.")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.model_dir, self.device, self.batch_size = str(path), str(device), batch_size
        self.max_length, self.input = max_length, input
        has_safetensors = any(path.glob("*.safetensors"))
        self._model = AutoModelForSequenceClassification.from_pretrained(
            path,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            use_safetensors=True if has_safetensors else None,
        )
        self._model.to(torch.device(device)).eval()
        # Without tokenizer files, recent transformers silently builds an empty-vocabulary tokenizer from the
        # config (every word -> UNK): refuse instead.
        if not any((path / name).is_file() for name in _TOKENIZER_FILES) and not any(path.glob("*.model")):
            raise OSError(
                f"ClassifierReward: {str(path)!r} holds no tokenizer files ({', '.join(_TOKENIZER_FILES)}, *.model). "
                f"Save the classifier's tokenizer next to it with tokenizer.save_pretrained({str(path)!r})."
            )
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(
                path, local_files_only=True, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as e:
            raise OSError(
                f"ClassifierReward: could not load a tokenizer from {str(path)!r} ({e}). Save the classifier's "
                f"tokenizer next to it with tokenizer.save_pretrained({str(path)!r})."
            ) from e
        if self._tokenizer.pad_token is None:  # GPT-2-style classifiers: pad with EOS, as their configs expect
            if self._tokenizer.eos_token is None:
                raise ValueError(
                    f"The tokenizer in {str(path)!r} has neither a pad nor an EOS token to pad batches with; set "
                    f"tokenizer.pad_token and save it again."
                )
            self._tokenizer.pad_token = self._tokenizer.eos_token
        if self._model.config.pad_token_id is None:
            self._model.config.pad_token_id = self._tokenizer.pad_token_id
        accepted = inspect.signature(self._model.forward).parameters
        self._input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in accepted]
        self.label = label
        self.label_index = self._resolve_label(label)

    @property
    def labels(self) -> list[str]:
        """The classifier's label names, by index."""
        id2label = self._model.config.id2label or {}
        return [str(id2label.get(i, f"LABEL_{i}")) for i in range(self._model.config.num_labels)]

    def _resolve_label(self, label: int | str | None) -> int:
        labels, num_labels = self.labels, self._model.config.num_labels
        if num_labels == 1:
            if label not in (None, 0, labels[0]):
                raise ValueError(
                    f"{self.model_dir!r} has a single output (scored as sigmoid(logit)); got label={label!r}: leave "
                    f"label=None."
                )
            return 0
        if label is None:
            for i, name in enumerate(labels):
                if name.lower() in _POSITIVE_NAMES:
                    return i
            return labels.index("LABEL_1") if "LABEL_1" in labels else 1
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < num_labels:
                raise ValueError(f"label index {label} is out of range: {self.model_dir!r} has labels {labels}.")
            return label
        if isinstance(label, str):
            for i, name in enumerate(labels):
                if name == label or name.lower() == label.lower():
                    return i
        raise ValueError(f"Unknown label {label!r} for {self.model_dir!r}: its labels are {labels} (or pass an index).")

    def __call__(self, prompts: list[str], completions: list[str], **fields: Any) -> np.ndarray:
        import torch

        prompts, completions = [as_text(p) for p in prompts], [as_text(c) for c in completions]  # chat messages
        texts = list(completions) if self.input == "completion" else [p + c for p, c in zip(prompts, completions)]
        scores = np.empty(len(texts), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                encoded = self._tokenizer(
                    chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                inputs = {k: v.to(self._model.device) for k, v in self._fill_empty(encoded).items()}
                logits = self._model(**inputs).logits.float()
                if logits.shape[-1] == 1:
                    probs = torch.sigmoid(logits[:, 0])
                else:
                    probs = torch.softmax(logits, dim=-1)[:, self.label_index]
                scores[start : start + len(chunk)] = probs.cpu().numpy()
        return scores

    def _fill_empty(self, encoded: Any) -> dict[str, Any]:
        """Give texts that tokenize to nothing (an empty completion, with no special tokens) one pad token, so the
        model never sees a zero-length or fully masked row; they get the classifier's score for that token."""
        import torch

        inputs = {k: v for k, v in encoded.items() if k in self._input_names}
        if inputs["input_ids"].shape[1] == 0:
            inputs = {k: torch.zeros(v.shape[0], 1, dtype=v.dtype) for k, v in inputs.items()}
        if "attention_mask" in inputs:
            empty = inputs["attention_mask"].sum(dim=1) == 0
            if empty.any():
                inputs["input_ids"][empty, 0] = self._tokenizer.pad_token_id
                inputs["attention_mask"][empty, 0] = 1
        return inputs

    def __repr__(self) -> str:
        return (
            f"ClassifierReward(model_dir={self.model_dir!r}, label={self.label!r} -> "
            f"{self.labels[self.label_index]!r}, "
            f"device={self.device!r}, input={self.input!r})"
        )


register("classifier", ClassifierReward)
