"""Per-slot KV caching for stepwise batched inference (SB3's ``collect_rollouts`` calls the policy once per step).

Layout (the design choice). Every slot's cached keys/values are kept **compact and right-aligned**: a slot with
``n`` real tokens owns the last ``n`` columns of a ``[B, heads, W, head_dim]`` tensor per layer (``W`` = longest
slot), the columns before them are padding, masked out by the attention mask. Position ids count real tokens
only (``position_ids_from_mask``), so a token's keys do not depend on how much padding sits before it, and
rotary/absolute/T5-relative position encodings all see the same positions as in the unpadded sequence.

Each call sorts the batch's slots into three groups by comparing the new observation with the slot's previous one:

* ``same``: identical observation (e.g. ``predict_values`` on the obs the next ``forward`` gets): reuse the result.
* ``extend``: the previous observation plus ``k >= 1`` new tokens at the next indices: run only those tokens on
  the slot's cache (one batched forward per distinct ``k``). ``k = 1`` is the usual step; ``k > 1`` is a
  multi-turn env appending its own text (a tool's output, a user's reply) after the agent's token, which is
  prefilled as one span instead of re-encoding the conversation.
* ``recompute``: anything else (reset, new episode, first call): encode the slot's whole sequence (one batched
  forward for all such slots, each sequence compacted to the right first).

The groups' caches are then merged back into one right-aligned tensor per layer. A different batch size
bypasses the cache without touching it (e.g. SB3's ``predict_values`` on a single terminal observation).

Seq2seq models: the prompt ``[0, P)`` goes to the encoder once per episode (stored per slot); the decoder input is
``decoder_start_token_id`` followed by the generated tokens ``[P, ...)``, cached exactly like a causal sequence.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from transformers import DynamicCache, EncoderDecoderCache

from agents.models import ActorCriticLM

_Layers = list[tuple[Tensor, Tensor]]


def compact_right(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Move each row's real tokens (mask 1) to the right end, in order, and crop the common leading padding.

    Returns ``(ids, mask, lengths)``; afterwards the last column of every row holds its last real token. Valid for
    any mask (left, right or mixed padding): attention and position ids only ever see the real tokens.
    """
    mask = mask.long()
    order = torch.sort(mask, dim=1, stable=True).indices  # zeros first, ones after, original order kept
    lengths = mask.sum(1)
    if bool((lengths == 0).any()):
        raise ValueError("An observation has no tokens (attention_mask is all zero): the env must observe a prompt.")
    width = int(lengths.max())
    return ids.gather(1, order)[:, -width:], mask.gather(1, order)[:, -width:], lengths


def cache_layers(cache: Any) -> _Layers:
    """The (keys, values) per layer of a HF cache (self-attention part for encoder-decoder caches)."""
    if isinstance(cache, EncoderDecoderCache):
        cache = cache.self_attention_cache
    if hasattr(cache, "layers"):  # transformers >= 4.56
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def build_cache(layers: _Layers, encoder_decoder: bool) -> Any:
    """A fresh HF cache holding ``layers`` (cross-attention keys are recomputed from the encoder states)."""
    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return EncoderDecoderCache(cache, DynamicCache()) if encoder_decoder else cache


def _decoder_sequence(ids: Tensor, mask: Tensor, prompt_length: int, start_id: int) -> tuple[Tensor, Tensor]:
    start = torch.full_like(ids[:, :1], start_id)
    return torch.cat([start, ids[:, prompt_length:]], 1), torch.cat([torch.ones_like(mask[:, :1]), mask[:, prompt_length:]], 1)


def encode_last(
    model: ActorCriticLM, ids: Tensor, mask: Tensor, prompt_length: int | None = None, use_cache: bool = False
) -> tuple[Tensor, Tensor, Any]:
    """Hidden state and value at each row's last real token, without a cache (differentiable).

    Args:
        model: the actor-critic.
        ids, mask: ``[B, L]`` observation ids and attention mask.
        prompt_length: ``P`` (seq2seq models only: the encoder gets ``[0, P)``).
        use_cache: also return the cache (and encoder states) for :class:`SlotKVCache`.

    Returns:
        ``(hidden [B, H], values [B], (output, lengths))``.
    """
    if model.is_encoder_decoder:
        dec_ids, dec_mask = _decoder_sequence(ids, mask, prompt_length, model.config.decoder_start_token_id)
        dec_ids, dec_mask, lengths = compact_right(dec_ids, dec_mask)
        out = model(ids[:, :prompt_length], mask[:, :prompt_length], decoder_input_ids=dec_ids,
                    decoder_attention_mask=dec_mask, use_cache=use_cache)
    else:
        ids, mask, lengths = compact_right(ids, mask)
        out = model(ids, mask, use_cache=use_cache)
    return out.hidden[:, -1], out.values[:, -1], (out, lengths)


class SlotKVCache:
    """KV cache for ``B`` env slots stepping in lockstep at different sequence lengths (see the module docstring).

    Args:
        model: the actor-critic.
        prompt_length: ``P`` of the observation layout (required for seq2seq models).
    """

    def __init__(self, model: ActorCriticLM, prompt_length: int | None = None):
        self.model = model
        self.prompt_length = prompt_length
        self.stats = {"same": 0, "extended": 0, "recomputed": 0}  # slot-steps per path (tests, benchmarks)
        self.span_extensions = 0  # of the extended slot-steps, those that added more than one token (env text)
        self.reset()

    def reset(self) -> None:
        """Forget every slot (the next call recomputes all of them); ``stats`` keep counting."""
        self.ids = self.mask = self.hidden = self.values = self.lengths = None
        self.streams: list[_Layers] = []  # one per model copy (actor, and the separate critic if any)
        self.encoder_states = None

    def _split(self, cache: Any) -> list[_Layers]:
        caches = cache if self.model.critic_lm is not None else (cache,)
        return [cache_layers(c) for c in caches]

    def _join(self, streams: list[_Layers]) -> Any:
        caches = tuple(build_cache(layers, self.model.is_encoder_decoder) for layers in streams)
        return caches if self.model.critic_lm is not None else caches[0]

    @torch.no_grad()
    def step(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Hidden state ``[B, H]`` and value ``[B]`` at each slot's last real token, reusing caches where valid."""
        mask = mask.long()
        batch = ids.shape[0]
        if self.ids is None or self.ids.shape != ids.shape or self.ids.device != ids.device:
            self.reset()
            same = extend = torch.zeros(batch, dtype=torch.bool, device=ids.device)
        else:
            prev_ids, prev_mask = self.ids, self.mask
            same = (mask == prev_mask).all(1) & ((ids == prev_ids) | (mask == 0)).all(1)
            width = mask.shape[1]
            last = width - 1 - prev_mask.flip(1).argmax(1)  # previous last real index
            new_last = width - 1 - mask.flip(1).argmax(1)
            columns = torch.arange(width, device=ids.device).unsqueeze(0)
            # The previous tokens unchanged, then a contiguous run of new real tokens right after them.
            expected = prev_mask | ((columns > last.unsqueeze(1)) & (columns <= new_last.unsqueeze(1))).long()
            extend = (new_last > last) & (mask == expected).all(1) & ((ids == prev_ids) | (prev_mask == 0)).all(1)
            extend &= ~same
            span = torch.where(extend, new_last - last, torch.zeros_like(last))
        recompute = ~(same | extend)
        for key, group in (("same", same), ("extended", extend), ("recomputed", recompute)):
            self.stats[key] += int(group.sum())

        hidden = torch.empty(batch, self.model.hidden_size, device=ids.device,
                             dtype=self.hidden.dtype if self.hidden is not None else next(self.model.parameters()).dtype)
        values = torch.empty(batch, device=ids.device, dtype=torch.float32)
        lengths = torch.zeros(batch, dtype=torch.long, device=ids.device)
        pieces: list[tuple[Tensor, list[_Layers], Tensor]] = []  # (rows, streams, lengths) of every computed group
        if bool(same.any()):
            rows = same.nonzero().squeeze(1)
            hidden[rows], values[rows], lengths[rows] = self.hidden[rows], self.values[rows], self.lengths[rows]
            pieces.append((rows, [self._select(layers, rows, self.lengths[rows]) for layers in self.streams], self.lengths[rows]))
        new_encoder = None
        if self.model.is_encoder_decoder:
            new_encoder = torch.empty(0) if self.encoder_states is None else self.encoder_states.clone()
        if bool(extend.any()):
            self.span_extensions += int((span > 1).sum())
            for k in torch.unique(span[extend]).tolist():  # one forward per span length (usually just k = 1)
                rows = (extend & (span == k)).nonzero().squeeze(1)
                h, v, streams, lens = self._extend(rows, ids[rows], mask[rows], int(k))
                hidden[rows], values[rows], lengths[rows] = h, v, lens
                pieces.append((rows, streams, lens))
        if bool(recompute.any()):
            rows = recompute.nonzero().squeeze(1)
            h, v, (out, lens) = encode_last(self.model, ids[rows], mask[rows], self.prompt_length, use_cache=True)
            hidden[rows], values[rows], lengths[rows] = h.to(hidden.dtype), v, lens
            pieces.append((rows, self._split(out.past_key_values), lens))
            if self.model.is_encoder_decoder:
                if new_encoder.numel() == 0:
                    new_encoder = out.encoder_hidden_states.new_zeros(batch, *out.encoder_hidden_states.shape[1:])
                new_encoder[rows] = out.encoder_hidden_states
        self.streams = self._merge(pieces, batch, lengths)
        self.encoder_states = new_encoder
        self.ids, self.mask, self.hidden, self.values, self.lengths = ids.clone(), mask.clone(), hidden, values, lengths
        return hidden, values

    @staticmethod
    def _select(layers: _Layers, rows: Tensor, lengths: Tensor) -> _Layers:
        width = int(lengths.max())
        return [(k[rows][:, :, -width:], v[rows][:, :, -width:]) for k, v in layers]

    def _extend(self, rows: Tensor, ids: Tensor, mask: Tensor, span: int = 1) -> tuple[Tensor, Tensor, list[_Layers], Tensor]:
        """Run the last ``span`` real tokens of each row on the rows' caches (all rows add ``span`` tokens)."""
        past_lengths = self.lengths[rows]
        width = int(past_lengths.max())
        columns = torch.arange(width, device=ids.device)
        past_mask = (columns.unsqueeze(0) >= width - past_lengths.unsqueeze(1)).long()
        full_mask = torch.cat([past_mask, torch.ones_like(past_mask[:, :1]).expand(-1, span)], 1)
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)
        offsets = torch.arange(span, device=ids.device)
        new_tokens = ids.gather(1, last.unsqueeze(1) - span + 1 + offsets.unsqueeze(0))
        cache = self._join([self._select(layers, rows, past_lengths) for layers in self.streams])
        if self.model.is_encoder_decoder:
            # Decoder-only step: the stored encoder states stand in for the encoder (which never runs again).
            p = self.prompt_length
            out = self.model(ids[:, :p], mask[:, :p], decoder_input_ids=new_tokens, decoder_attention_mask=full_mask,
                             encoder_outputs=self.encoder_states[rows], past_key_values=cache, use_cache=True)
        else:
            out = self.model(new_tokens, full_mask, position_ids=past_lengths.unsqueeze(1) + offsets.unsqueeze(0),
                             past_key_values=cache, use_cache=True)
        return out.hidden[:, -1], out.values[:, -1], self._split(out.past_key_values), past_lengths + span

    @staticmethod
    def _merge(pieces: list[tuple[Tensor, list[_Layers], Tensor]], batch: int, lengths: Tensor) -> list[_Layers]:
        """Right-align every group's caches into one ``[B, heads, W, head_dim]`` tensor per layer and stream."""
        width = int(lengths.max())
        merged: list[_Layers] = []
        for stream in range(len(pieces[0][1])):
            layers = []
            for layer in range(len(pieces[0][1][stream])):
                k0, v0 = pieces[0][1][stream][layer]
                keys = k0.new_zeros(batch, k0.shape[1], width, k0.shape[3])
                values = v0.new_zeros(batch, v0.shape[1], width, v0.shape[3])
                for rows, streams, _ in pieces:
                    k, v = streams[stream][layer]
                    keys[rows, :, width - k.shape[2]:] = k
                    values[rows, :, width - v.shape[2]:] = v
                layers.append((keys, values))
            merged.append(layers)
        return merged
