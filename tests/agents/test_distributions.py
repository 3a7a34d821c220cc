"""Logits processing, chunked log-probs/entropy and sampling, checked against transformers and torch."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from agents.distributions import process_logits, sample_tokens, token_logprobs_and_entropy

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 5, 1.0), (1.0, 0, 0.8), (1.3, 7, 0.9)])
def test_process_logits_matches_transformers_warpers(temperature, top_k, top_p):
    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(0)) * 3
    expected = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1:
        expected = TopPLogitsWarper(top_p)(None, expected)
    ours = process_logits(logits, temperature, top_k, top_p)
    assert torch.equal(torch.isinf(ours), torch.isinf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(ours[finite], expected[finite])


def test_action_mask_removes_actions():
    logits = torch.zeros(2, 5)
    mask = torch.tensor([[True, False, True, False, True], [False] * 4 + [True]])
    out = process_logits(logits, action_mask=mask)
    assert torch.isinf(out[~mask]).all() and torch.isfinite(out[mask]).all()
    assert (sample_tokens(out.expand(3, 2, 5)) [:, 1] == 4).all()


@pytest.mark.parametrize(("kwargs", "match"), [({"temperature": 0.0}, "temperature"), ({"top_k": -1}, "top_k"), ({"top_p": 0.0}, "top_p")])
def test_bad_sampling_controls_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        process_logits(torch.zeros(1, 3), **kwargs)


@pytest.mark.parametrize("checkpoint", [True, False])
def test_chunked_logprobs_equal_full_softmax_with_gradients(checkpoint):
    gen = torch.Generator().manual_seed(1)
    head = torch.nn.Linear(8, 50, bias=False)
    hidden = torch.randn(23, 8, generator=gen, requires_grad=True)
    with torch.no_grad():  # tokens the processed distribution can emit (others have log-prob -inf)
        tokens = sample_tokens(process_logits(head(hidden), 0.9, 20), generator=gen)
    logp, ent = token_logprobs_and_entropy(hidden, head, tokens, temperature=0.9, top_k=20, chunk_size=4, checkpoint=checkpoint)
    dist = torch.distributions.Categorical(logits=process_logits(head(hidden), 0.9, 20))
    ref_logp, ref_ent = dist.log_prob(tokens), dist.entropy()
    torch.testing.assert_close(logp, ref_logp)
    torch.testing.assert_close(ent, ref_ent)
    grads = torch.autograd.grad((logp + 0.1 * ent).sum(), [hidden, head.weight])
    ref_grads = torch.autograd.grad((ref_logp + 0.1 * ref_ent).sum(), [hidden, head.weight])
    for ours, ref in zip(grads, ref_grads):
        torch.testing.assert_close(ours, ref)
        assert torch.isfinite(ours).all()


def test_logprobs_reject_bad_shapes():
    with pytest.raises(ValueError, match="Expected hidden"):
        token_logprobs_and_entropy(torch.zeros(3, 4), torch.nn.Identity(), torch.zeros(2, dtype=torch.long))


def test_sample_tokens_follows_the_distribution_and_the_generator():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    logits = probs.log().expand(40_000, 5)
    samples = sample_tokens(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(samples, minlength=5).float() / samples.numel()
    torch.testing.assert_close(freq, probs, atol=0.01, rtol=0)
    assert freq[4] == 0
    again = sample_tokens(logits, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)


def test_sample_tokens_never_draws_a_removed_token_even_at_the_top_of_the_uniform_range(monkeypatch):
    # Removed tokens at both ends and in the middle; a uniform draw of (almost) 1 must still land on an allowed
    # token, not fall off the end of the cumulative sums onto the removed last token.
    logits = torch.tensor([[float("-inf"), 0.3, float("-inf"), 1.2, float("-inf")]]).expand(4, 5)
    real_rand = torch.rand
    for u in (0.0, 0.5, 1.0 - 2**-24, 1.0):
        monkeypatch.setattr(torch, "rand", lambda shape, **kw: torch.full(shape, u))
        tokens = sample_tokens(logits)
        assert set(tokens.tolist()) <= {1, 3}, (u, tokens)
    monkeypatch.setattr(torch, "rand", real_rand)
    assert set(sample_tokens(logits[:1].expand(2000, 5), generator=torch.Generator().manual_seed(0)).tolist()) == {1, 3}


def test_a_row_shared_action_mask_and_a_per_row_mask_agree():
    logits = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([True, False, True, True, False, True])
    shared = process_logits(logits, action_mask=mask)
    per_row = process_logits(logits, action_mask=mask.expand(3, 6).clone())
    assert torch.equal(shared, per_row)
    assert torch.isinf(shared[:, ~mask]).all() and torch.equal(shared[:, mask], logits[:, mask])


def test_entropy_without_grad_has_the_same_values_and_leaves_the_logprob_gradient_alone():
    gen = torch.Generator().manual_seed(2)
    head = torch.nn.Linear(8, 30, bias=False)
    hidden = torch.randn(9, 8, generator=gen, requires_grad=True)
    tokens = torch.randint(0, 30, (9,), generator=gen)
    logp, ent = token_logprobs_and_entropy(hidden, head, tokens, chunk_size=4)
    logp_ng, ent_ng = token_logprobs_and_entropy(hidden, head, tokens, chunk_size=4, entropy_grad=False)
    assert ent.requires_grad and not ent_ng.requires_grad
    torch.testing.assert_close(ent_ng, ent.detach())
    torch.testing.assert_close(logp_ng, logp)
    torch.testing.assert_close(torch.autograd.grad(logp_ng.sum(), hidden)[0], torch.autograd.grad(logp.sum(), hidden)[0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_sampling_never_returns_an_out_of_range_token_for_nonfinite_logits(bad):
    from agents.distributions import NonFiniteLogitsError

    logits = torch.zeros(3, 7)
    logits[1, 2] = bad
    with pytest.raises(NonFiniteLogitsError, match=r"row\(s\) \[1\].*NaN or \+inf"):
        sample_tokens(logits, generator=torch.Generator().manual_seed(0))
    every_token_removed = torch.full((2, 7), float("-inf"))
    with pytest.raises(NonFiniteLogitsError):
        sample_tokens(every_token_removed)
