"""agents.ppo.sft: the warm start's pairs are laid out as the env lays out its observations, and it learns."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)
from agents.ppo.sft import encode_pairs


@pytest.mark.parametrize("max_prompt_tokens", [6, 64])  # 6: most prompts are cut (their end kept), 64: none is
def test_pairs_hold_the_prompt_exactly_as_the_env_observes_it(max_prompt_tokens):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the env warns once when it cuts a prompt
        env = gym.make("textgym/Sentiment-v0", max_prompt_tokens=max_prompt_tokens, max_new_tokens=8)
        base = env.unwrapped
        records = [base.prompt_source[i] for i in range(5)]
        prompt_ids, prompt_mask, response_ids, response_mask = encode_pairs(base.tokenizer, records, max_prompt_tokens, 8)
        for i in range(5):
            observation, _ = env.reset(options={"prompt_index": i})
            np.testing.assert_array_equal(prompt_ids[i].numpy(), observation["input_ids"][:max_prompt_tokens])
            np.testing.assert_array_equal(prompt_mask[i].numpy(), observation["attention_mask"][:max_prompt_tokens])
    # The completion: its tokens, then EOS (cut at max_new_tokens like an episode), then padding outside the mask.
    for i, record in enumerate(records):
        completion = (list(base.tokenizer.encode(record["completion"])) + [base.tokenizer.eos_token_id])[:8]
        assert response_ids[i, : len(completion)].tolist() == completion
        assert response_mask[i].sum().item() == len(completion)


def test_a_record_without_a_completion_is_named():
    with pytest.raises(ValueError, match="record 1 has none"):
        encode_pairs(None, [{"prompt": "a", "completion": "b"}, {"prompt": "c"}], 4, 4)
