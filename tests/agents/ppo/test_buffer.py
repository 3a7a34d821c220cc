import numpy as np
import pytest
import torch

from agents.ppo.buffer import SequenceRolloutBuffer, layout_to_sequences


def make_buffer():
    # P = 3, T = 4; row 0: prompt [5, 6], response [7, 8, eos=1]; row 1: prompt [9], response [4]
    ids = np.array([[0, 5, 6, 7, 8, 1, 0], [0, 0, 9, 4, 0, 0, 0]])
    mask = np.array([[0, 1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0, 0]])
    p_ids, p_mask, r_ids, r_mask = layout_to_sequences(ids, mask, 3)
    z = torch.zeros(2, 4)
    buf = SequenceRolloutBuffer(p_ids, p_mask, r_ids, r_mask, z.clone(), z.clone(), z.clone(), z.clone(),
                                torch.tensor([True, False]), torch.tensor([0, 1]))
    buf.advantages, buf.returns = z.clone() + 1, z.clone() + 2
    return buf


def test_buffer_stores_int32_and_trims_minibatches():
    buf = make_buffer()
    assert buf.prompt_ids.dtype == torch.int32 and buf.response_ids.dtype == torch.int32
    assert buf.num_tokens == 4 and buf.response_lengths.tolist() == [3, 1]
    batch = buf.get(torch.tensor([1]))
    # column 0 and 1 of the prompt and response columns 1..3 are padding in row 1 alone: trimmed.
    assert batch.input_ids.tolist() == [[9, 4]] and batch.prompt_length == 1
    batch = buf.get(torch.tensor([0, 1]))
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 1], [0, 9, 4, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 0, 0]]
    assert batch.prompt_length == 2 and batch.response_mask.shape == (2, 3)


def test_minibatches_cover_every_row_once():
    buf = make_buffer()
    seen = torch.cat([b.indices for b in buf.minibatches(1, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == [0, 1]
    with pytest.raises(ValueError, match="batch_size"):
        next(buf.minibatches(0))


def test_buffer_validates_shapes_and_advantages():
    buf = make_buffer()
    buf.advantages = None
    with pytest.raises(RuntimeError, match="Advantages are not computed"):
        buf.get(torch.tensor([0]))
    with pytest.raises(ValueError, match="old_logp must have shape"):
        SequenceRolloutBuffer(buf.prompt_ids, buf.prompt_mask, buf.response_ids, buf.response_mask, buf.env_rewards,
                              torch.zeros(2, 3), buf.ref_logp, buf.values, buf.terminated, buf.prompt_indices)
