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


def test_a_multi_turn_warm_start_replays_the_turns_and_trains_on_the_agents_tokens_only():
    import torch

    from agents.models import build_default_model
    from agents.ppo.sft import encode_conversations, supervised_warm_start

    env = gym.make("textgym/Calculator-v0")
    base = env.unwrapped
    records = [base.prompt_source[i] for i in range(6)]
    prompt_ids, prompt_mask, response_ids, response_mask, agent = encode_conversations(env, records)
    tok = base.tokenizer
    for i, record in enumerate(records):
        # the agent's tokens are its turns (each ending where the env took over, the last with EOS) ...
        said = tok.decode(response_ids[i][agent[i]].tolist(), skip_special_tokens=False)
        assert said == "".join(record["agent_turns"]) + tok.decode([tok.eos_token_id], skip_special_tokens=False)
        # ... the whole conversation is the demonstration's transcript, the env's result included
        assert tok.decode(response_ids[i][response_mask[i]].tolist()) == record["completion"]
    assert (response_mask & ~agent).any() and not (agent & ~response_mask).any()
    observation, _ = env.reset(options={"prompt_index": 0})
    np.testing.assert_array_equal(prompt_ids[0].numpy(), observation["input_ids"][: base.max_prompt_tokens])

    model = build_default_model(tokenizer=tok, size="tiny", seed=0)
    # The first step's loss is the mean NLL of the agent's tokens of the rows it drew (the env's are not counted).
    from agents.ppo.buffer import model_inputs
    from agents.ppo.rollout import LogitsProcessor, evaluate_sequences

    rows = torch.from_numpy(np.random.default_rng(0).integers(0, len(records), size=6))
    batch = model_inputs(prompt_ids, prompt_mask, response_ids, response_mask, rows)
    with torch.no_grad():
        logp, _, _ = evaluate_sequences(model, batch.input_ids, batch.attention_mask, batch.prompt_length,
                                        batch.response_ids, batch.response_mask, LogitsProcessor())
    mine = agent[rows, : logp.shape[1]]
    expected = -(logp[mine].sum() / mine.sum()).item()
    losses = supervised_warm_start(model, tok, records, max_prompt_tokens=base.max_prompt_tokens,
                                   max_new_tokens=base.max_new_tokens, steps=40, batch_size=6, learning_rate=3e-3,
                                   log=None, replay_env=env)
    assert losses[0] == pytest.approx(expected, abs=1e-5)
    assert losses[-1] < 0.6 * losses[0], (losses[0], losses[-1])
    # Only the agent's tokens were learned: the env's (its "= 3909" results) stay near the untrained NLL.
    with torch.no_grad():
        logp, _, _ = evaluate_sequences(model, batch.input_ids, batch.attention_mask, batch.prompt_length,
                                        batch.response_ids, batch.response_mask, LogitsProcessor())
    theirs = batch.response_mask & ~mine
    assert -logp[theirs].mean() > 2 * -logp[mine].mean(), (-logp[theirs].mean(), -logp[mine].mean())
    with pytest.raises(ValueError, match="record 0 has none"):
        encode_conversations(env, [{"prompt": "Q: 1 * 2 = ?\nA:"}])
    with pytest.raises(ValueError, match="Record 0 is not the replay env's prompt 0"):
        encode_conversations(env, records[1:])
