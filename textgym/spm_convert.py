"""Sentencepiece model -> equivalent Hugging Face fast tokenizer (:func:`spm_to_hf`), so exported models load
with ``AutoTokenizer``. Moved out of ``textgym/tokenizers.py`` unchanged; ``textgym.tokenizers`` re-exports it."""

from __future__ import annotations


def spm_to_hf(model_proto: bytes):
    """Convert a serialized sentencepiece model into an equivalent ``PreTrainedTokenizerFast``.

    Handles Unigram and BPE models, byte fallback, the dummy prefix, whitespace cleanup and precompiled
    normalization rules, and keeps ids identical (pieces in id order).

    Args:
        model_proto: the bytes of a ``.model`` file.

    Raises:
        ValueError: a model type other than Unigram or BPE (char/word models).
    """
    from sentencepiece import sentencepiece_model_pb2 as model_pb2
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    proto = model_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    # spm never matches control pieces ("</s>") or byte pieces ("<0x41>") against text; a tokenizers Unigram
    # would, so they get a score no segmentation picks while the text's characters are in the vocabulary (ids
    # and decoding are unchanged). Known gap: a Unigram model whose vocabulary lacks "<", "/" or ">" still maps
    # a literal "</s>" in text to the piece; BPE models (the default) convert exactly.
    unmatchable = (model_pb2.ModelProto.SentencePiece.CONTROL, model_pb2.ModelProto.SentencePiece.BYTE)
    pieces = [(p.piece, -1e9 if p.type in unmatchable else p.score) for p in proto.pieces]
    unk_piece = proto.pieces[trainer.unk_id].piece if trainer.unk_id >= 0 else None
    if trainer.model_type == model_pb2.TrainerSpec.UNIGRAM:
        model = models.Unigram(pieces, unk_id=trainer.unk_id if trainer.unk_id >= 0 else None,
                               byte_fallback=trainer.byte_fallback)
    elif trainer.model_type == model_pb2.TrainerSpec.BPE:
        vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
        model = models.BPE(vocab, _bpe_merges(vocab, proto), unk_token=unk_piece, fuse_unk=True,
                           byte_fallback=trainer.byte_fallback)
    else:
        raise ValueError("Only Unigram and BPE sentencepiece models convert to Hugging Face tokenizers; retrain "
                         "with model_type='unigram' or 'bpe'.")
    tok = Tokenizer(model)

    steps = []
    if norm.precompiled_charsmap:
        steps.append(normalizers.Precompiled(norm.precompiled_charsmap))
    if norm.remove_extra_whitespaces:
        steps += [normalizers.Strip(left=True, right=True), normalizers.Replace(Regex(" {2,}"), " ")]
    if steps:
        tok.normalizer = normalizers.Sequence(steps)
    # spm turns spaces into "▁" and (with split_by_whitespace) never lets a piece run across a "▁" boundary:
    # Metaspace does both; "first" prepends the dummy "▁" to the text once, as add_dummy_prefix does.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first" if norm.add_dummy_prefix else "never",
        split=trainer.split_by_whitespace,
    )
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if norm.add_dummy_prefix:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    tok.decoder = decoders.Sequence(steps)

    # Control pieces (<pad>, </s>, <s>) are special; user-defined pieces (type 4) match verbatim but are not.
    tok.add_special_tokens([AddedToken(p.piece, special=True, normalized=False)
                            for p in proto.pieces if p.type == model_pb2.ModelProto.SentencePiece.CONTROL])
    tok.add_tokens([AddedToken(p.piece, special=False, normalized=False)
                    for p in proto.pieces if p.type == model_pb2.ModelProto.SentencePiece.USER_DEFINED])

    def piece(index: int) -> str | None:
        return proto.pieces[index].piece if index >= 0 else None

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=piece(trainer.unk_id), eos_token=piece(trainer.eos_id),
        bos_token=piece(trainer.bos_id), pad_token=piece(trainer.pad_id) or piece(trainer.eos_id),
        clean_up_tokenization_spaces=False,
        # Text is text: a literal "</s>" in a prompt is spelled out as characters, as sentencepiece does, and
        # never becomes the EOS id (which would end episodes or let prompts inject control tokens).
        split_special_tokens=True,
    )


def _bpe_merges(vocab: dict[str, int], proto) -> list[tuple[str, str]]:
    """BPE merges implied by a sentencepiece BPE vocabulary: every split of a piece into two pieces, ordered by
    the merged piece's rank (spm adds pieces in merge order) and then by the parts' ranks."""
    normal = {p.piece for p in proto.pieces if p.type == p.NORMAL}
    merges = []
    for merged, rank in vocab.items():
        if merged not in normal:
            continue
        for cut in range(1, len(merged)):
            left, right = merged[:cut], merged[cut:]
            if left in vocab and right in vocab:
                merges.append((rank, vocab[left], vocab[right], left, right))
    merges.sort()
    return [(left, right) for _, _, _, left, right in merges]
