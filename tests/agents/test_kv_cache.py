"""The per-slot KV cache gives the uncached logits over whole episodes with resets at different steps per slot."""

from __future__ import annotations

import pytest
import torch

from agents.kv_cache import SlotKVCache, compact_right

pytestmark = pytest.mark.usefixtures("single_thread")

P, T, B = 6, 5, 4


def _new_prompt(gen):
    n = int(torch.randint(1, P + 1, (1,), generator=gen))
    ids, mask = torch.zeros(P + T, dtype=torch.long), torch.zeros(P + T, dtype=torch.long)
    ids[P - n : P] = torch.randint(3, 60, (n,), generator=gen)
    mask[P - n : P] = 1
    return ids, mask, 0


def _reference(model, ids, mask):
    """Each slot alone, unpadded, through the plain model: hidden and value at its last token."""
    hidden, values = [], []
    for row_ids, row_mask in zip(ids, mask):
        if model.is_encoder_decoder:
            prompt = row_ids[:P][row_mask[:P].bool()].unsqueeze(0)
            dec = torch.cat([torch.zeros(1, dtype=torch.long), row_ids[P:][row_mask[P:].bool()]]).unsqueeze(0)
            out = model(prompt, torch.ones_like(prompt), decoder_input_ids=dec)
        else:
            seq = row_ids[row_mask.bool()].unsqueeze(0)
            out = model(seq, torch.ones_like(seq))
        hidden.append(out.hidden[0, -1])
        values.append(out.values[0, -1])
    return torch.stack(hidden), torch.stack(values)


@pytest.mark.parametrize(("kind", "critic"), [("gpt2", "shared"), ("llama", "shared"), ("t5", "shared"), ("llama", "separate")])
def test_cached_stepping_matches_uncached_logits_with_resets(kind, critic, make_model):
    model = make_model(kind, critic=critic)
    cache = SlotKVCache(model, prompt_length=P)
    gen = torch.Generator().manual_seed(0)
    slots = [_new_prompt(gen) for _ in range(B)]
    for step in range(12):
        ids, mask = torch.stack([s[0] for s in slots]), torch.stack([s[1] for s in slots])
        hidden, values = cache.step(ids, mask)
        if step % 4 == 0:  # the same observation again (SB3's predict_values on the next obs) reuses the result
            again = cache.step(ids, mask)
            torch.testing.assert_close(again[0], hidden)
        with torch.no_grad():
            ref_hidden, ref_values = _reference(model, ids, mask)
        torch.testing.assert_close(model.logits(hidden), model.logits(ref_hidden), atol=1e-4, rtol=0)
        torch.testing.assert_close(values, ref_values, atol=1e-4, rtol=0)
        nxt = []
        for i, (row_ids, row_mask, t) in enumerate(slots):
            # Episodes end at different steps: at T tokens, or early (EOS) at a slot-dependent step.
            if t == T or (t == 2 + i % 3 and step > 3):
                nxt.append(_new_prompt(gen))
                continue
            row_ids, row_mask = row_ids.clone(), row_mask.clone()
            row_ids[P + t], row_mask[P + t] = int(torch.randint(3, 60, (1,), generator=gen)), 1
            nxt.append((row_ids, row_mask, t + 1))
        slots = nxt
    # The cache was really used, and resets really happened.
    assert cache.stats["extended"] > 2 * cache.stats["recomputed"] > 0
    assert cache.stats["same"] == 3 * B


def test_a_different_observation_is_recomputed_not_extended(make_model):
    model = make_model("gpt2")
    cache = SlotKVCache(model)
    ids = torch.tensor([[0, 5, 6, 0, 0], [7, 8, 9, 0, 0]])
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    cache.step(ids, mask)
    changed = ids.clone()
    changed[0, 1] = 9  # same length + 1 but an earlier token differs: must not reuse the cache
    changed[:, 3], mask2 = 4, mask.clone()
    mask2[:, 3] = 1
    changed[1, 3] = 4
    cache.step(changed, mask2)
    assert cache.stats == {"same": 0, "extended": 1, "recomputed": 3}


def test_compact_right_and_empty_observation():
    ids = torch.tensor([[1, 2, 3, 0], [0, 0, 4, 5]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]])
    out_ids, out_mask, lengths = compact_right(ids, mask)
    assert torch.equal(out_ids, torch.tensor([[1, 2, 3], [0, 4, 5]]))
    assert torch.equal(out_mask, torch.tensor([[1, 1, 1], [0, 1, 1]]))
    assert lengths.tolist() == [3, 2]
    with pytest.raises(ValueError, match="no tokens"):
        compact_right(ids, torch.zeros_like(mask))


@pytest.mark.parametrize(("kind", "critic"), [("gpt2", "shared"), ("llama", "shared"), ("t5", "shared"), ("llama", "separate")])
def test_spans_of_several_tokens_extend_the_cache_with_the_uncached_logits(kind, critic, make_model):
    """A multi-turn env appends its own text after the agent's token: the observation grows by 1 + k tokens in one
    step, by a different k per slot. The cache prefills those spans and matches the uncached model."""
    model = make_model(kind, critic=critic)
    cache = SlotKVCache(model, prompt_length=P)
    long_t = 14
    gen = torch.Generator().manual_seed(1)

    def prompt():
        ids, mask, _ = _new_prompt(gen)
        return torch.cat([ids, torch.zeros(long_t - T, dtype=torch.long)]), torch.cat([mask, torch.zeros(long_t - T, dtype=torch.long)]), 0

    slots = [prompt() for _ in range(B)]
    for step in range(10):
        ids, mask = torch.stack([s[0] for s in slots]), torch.stack([s[1] for s in slots])
        hidden, values = cache.step(ids, mask)
        with torch.no_grad():
            ref_hidden, ref_values = _reference(model, ids, mask)
        torch.testing.assert_close(model.logits(hidden), model.logits(ref_hidden), atol=1e-4, rtol=0)
        torch.testing.assert_close(values, ref_values, atol=1e-4, rtol=0)
        nxt = []
        for i, (row_ids, row_mask, t) in enumerate(slots):
            grow = 1 + (i + step) % 4  # 1 (a plain step) to 4 tokens (the agent's token + an env span of 3)
            if t + grow > long_t:
                nxt.append(prompt())
                continue
            row_ids, row_mask = row_ids.clone(), row_mask.clone()
            row_ids[P + t : P + t + grow] = torch.randint(3, 60, (grow,), generator=gen)
            row_mask[P + t : P + t + grow] = 1
            nxt.append((row_ids, row_mask, t + grow))
        slots = nxt
    # Every growth was prefilled on the cache (24 of the 32 by more than one token); only new episodes recomputed.
    assert cache.stats == {"same": 0, "extended": 32, "recomputed": 8} and cache.span_extensions == 24
