"""agents/ppo/decoder.py: a block of new tokens through the KV cache gives the states one token at a time gives."""

import torch

from agents.ppo.decoder import CachedDecoder
from tests.agents.ppo.conftest import tiny_model


@torch.no_grad()
def test_extend_with_a_ragged_block_matches_feeding_the_tokens_one_by_one():
    model = tiny_model(0).eval()
    prompt = torch.tensor([[0, 3, 4], [5, 6, 7]])
    prompt_mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    # Slot 0 adds 3 tokens (its token, then 2 of the env's), slot 1 adds 1: a right-padded [2, 3] block.
    block = torch.tensor([[8, 9, 10], [11, 0, 0]])
    counts = torch.tensor([3, 1])
    positions = prompt_mask.sum(1)
    ragged = CachedDecoder(model, prompt, prompt_mask)
    ragged.extend(block, counts, torch.cat([prompt_mask, (torch.arange(3) < counts[:, None]).long()], 1), positions)
    for slot in range(2):  # the same tokens, one step at a time, slot by slot
        one = CachedDecoder(model, prompt[slot : slot + 1], prompt_mask[slot : slot + 1])
        mask = prompt_mask[slot : slot + 1]
        for j in range(int(counts[slot])):
            mask = torch.cat([mask, torch.ones(1, 1, dtype=torch.long)], 1)
            one.step(block[slot, j : j + 1], mask, positions[slot : slot + 1] + j)
        torch.testing.assert_close(ragged.hidden[slot], one.hidden[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(ragged.values[slot], one.values[0], atol=1e-5, rtol=0)
