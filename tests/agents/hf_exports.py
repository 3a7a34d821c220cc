"""The check every directory textgym writes as "a Hugging Face model" must pass, with transformers' own tools."""

from __future__ import annotations

import torch
import transformers

SAMPLE_TEXT = "Q: 12 + 7 = ? A: 19. The movie was great, and I liked it!"


def assert_loads_as_hf_model(directory, tokenizer, prompt: str = "Q: 3 + 4 = ? A:") -> None:
    """``AutoTokenizer.from_pretrained(directory)`` encodes like ``tokenizer`` (same ids, same special ids) and
    ``pipeline("text-generation", model=directory)`` writes new text after ``prompt``; no extra arguments."""
    directory = str(directory)
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    assert hf(SAMPLE_TEXT)["input_ids"] == tokenizer.encode(SAMPLE_TEXT)
    assert hf.decode(tokenizer.encode(SAMPLE_TEXT)) == SAMPLE_TEXT
    assert (hf.eos_token_id, hf.pad_token_id, hf.bos_token_id) == (
        tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id)
    torch.manual_seed(0)
    generator = transformers.pipeline("text-generation", model=directory)
    text = generator(prompt, max_new_tokens=8, do_sample=True)[0]["generated_text"]
    assert text.startswith(prompt) and len(text) > len(prompt), text
