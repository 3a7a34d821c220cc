"""ActorCriticLM: a Hugging Face causal (or seq2seq) LM plus a value head, and the project's default small model.

The actor is the LM itself: its output embedding over the vocabulary is the policy head. The critic is a linear
value head on the final hidden state, on the actor's own trunk (``critic="shared"``, the default, as in
RL4LMs/TRL) or on a private copy of the trunk (``critic="separate"``, so value-loss gradients never touch the
actor).

``forward`` returns final hidden states, never logits: a [batch, length, vocab] logits tensor at 250k actions is
the largest tensor in LM RL, and callers only ever need logits at a few positions (the next token when acting,
the response tokens when scoring, where ``agents.distributions`` computes them chunk by chunk). ``logits`` and
``lm_head`` turn hidden states into logits exactly as the wrapped model would (including any output scaling).

Loading is local-only (``from_pretrained`` never downloads), safetensors by default and
``trust_remote_code=False`` by default. ``save_pretrained`` writes a normal Hugging Face directory that
``AutoModelForCausalLM.from_pretrained`` and ``transformers.pipeline`` load; the value head lives in a separate
file of the same directory, which plain transformers ignores.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from agents.hf_compat import (  # noqa: F401  (re-exported: the public names of agents.models)
    ModelLoadError, NotSafetensorsError, _T5_FAMILY, _cache_argument_name, _cache_kwarg, _dtype_kwarg, _hidden_size,
    _load_error, _output_cache, _output_scaling, _ScaledOutputHead, position_ids_from_mask, quiet_hf_progress,
)
from agents.model_defaults import (  # noqa: F401  (re-exported: the public names of agents.models)
    _SIZES, default_model_config, disable_dropout, merge_size, vocabulary_mismatch,
)

VALUE_HEAD_FILENAME = "value_head.safetensors"
CRITIC_TRUNK_FILENAME = "critic_trunk.safetensors"
CRITIC_CHOICES = ("shared", "separate")


@dataclass
class ActorCriticOutput:
    """What :meth:`ActorCriticLM.forward` returns.

    Attributes:
        hidden: ``[B, L, H]`` final hidden states of the actor (decoder states for seq2seq models). Turn them into
            logits with :meth:`ActorCriticLM.logits` only at the positions you need.
        values: ``[B, L]`` value estimate at every position (float32).
        past_key_values: the actor's KV cache when ``use_cache=True`` (a ``(actor, critic)`` pair of caches with
            ``critic="separate"``), else ``None``.
        encoder_hidden_states: ``[B, S, H]`` encoder states (seq2seq models only), reusable through
            ``encoder_outputs`` so the encoder runs once per prompt.
    """

    hidden: Tensor
    values: Tensor
    past_key_values: Any | None = None
    encoder_hidden_states: Tensor | None = None



class ActorCriticLM(nn.Module):
    """Any Hugging Face causal LM (or seq2seq LM) plus a value head.

    Args:
        lm: a ``transformers.PreTrainedModel`` with an LM head (``AutoModelForCausalLM`` or
            ``AutoModelForSeq2SeqLM``).
        critic: ``"shared"`` puts the value head on the actor's trunk; ``"separate"`` gives the value head its own
            deep copy of the trunk (twice the parameters, no interference between the losses).

    Attributes:
        lm: the wrapped model (the actor). ``save_pretrained`` exports exactly this.
        critic_lm: the critic's copy of the model (``critic="separate"`` only), else ``None``.
        value_head: ``nn.Linear(hidden_size, 1)``.
        is_encoder_decoder: whether ``lm`` is a seq2seq model.
        vocab_size: number of output logits (the action space the model can serve).
    """

    def __init__(self, lm: transformers.PreTrainedModel, critic: str = "shared"):
        super().__init__()
        if not isinstance(lm, transformers.PreTrainedModel):
            raise TypeError(f"lm must be a transformers.PreTrainedModel with an LM head, got {type(lm).__name__}.")
        if lm.get_output_embeddings() is None:
            raise ValueError(
                f"{type(lm).__name__} has no LM head (get_output_embeddings() is None): load the model with "
                "AutoModelForCausalLM or AutoModelForSeq2SeqLM, not AutoModel."
            )
        if critic not in CRITIC_CHOICES:
            raise ValueError(f"critic must be one of {CRITIC_CHOICES}, got {critic!r}.")
        self.lm = lm
        self.critic = critic
        self.critic_lm = copy.deepcopy(lm) if critic == "separate" else None
        self.is_encoder_decoder = bool(getattr(lm.config, "is_encoder_decoder", False))
        self.vocab_size = int(lm.get_output_embeddings().weight.shape[0])
        self.hidden_size = _hidden_size(lm.config)
        self.value_head = nn.Linear(self.hidden_size, 1)
        nn.init.normal_(self.value_head.weight, std=1.0 / (self.hidden_size + 1) ** 0.5)
        nn.init.zeros_(self.value_head.bias)
        param = next(lm.parameters())
        self.value_head.to(device=param.device, dtype=param.dtype)

    @property
    def config(self) -> transformers.PretrainedConfig:
        """The wrapped model's config."""
        return self.lm.config

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: transformers.PretrainedConfig, critic: str = "shared") -> ActorCriticLM:
        """A freshly initialised model from a config (for training from scratch).

        Args:
            config: any causal-LM or seq2seq-LM config (``is_encoder_decoder`` picks which).
            critic: ``"shared"`` or ``"separate"`` (see the class docstring).
        """
        auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
        return cls(auto.from_config(config), critic=critic)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        critic: str = "shared",
        dtype: torch.dtype | None = None,
        trust_remote_code: bool = False,
        use_safetensors: bool = True,
    ) -> ActorCriticLM:
        """Load a model from a local directory (never downloads); loads the value head if the directory has one.

        Args:
            path: a local Hugging Face model directory (``save_pretrained`` output of this class or of transformers).
            critic: ``"shared"`` or ``"separate"``; a separate critic is restored from the directory if it was saved,
                else initialised as a copy of the actor.
            dtype: parameter dtype (e.g. ``torch.bfloat16``); ``None`` keeps the checkpoint's.
            trust_remote_code: run model code shipped in the directory. Off by default: it executes arbitrary code.
            use_safetensors: load only ``*.safetensors`` weights (default). Set ``False`` to allow pickled ``.bin``
                files, which can execute code on load: only for files you trust.
        """
        directory = Path(path)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"{str(path)!r} is not a local directory. textgym never downloads models: save one with "
                "model.save_pretrained(dir) (or ActorCriticLM.save_pretrained) and pass that directory."
            )
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"{directory} has no config.json: it is not a Hugging Face model directory.")
        # The model's own weights: this class's value head / critic files are safetensors too, but not the model.
        own = {VALUE_HEAD_FILENAME, CRITIC_TRUNK_FILENAME}
        if use_safetensors and not any(p.name not in own for p in directory.glob("*.safetensors")):
            pickled = sorted(p.name for p in directory.glob("*.bin"))
            if not pickled:
                raise FileNotFoundError(
                    f"{directory} has no model weights (model.safetensors): copy them in, or pass "
                    "use_safetensors=False to load pickled .bin weights (only for files you trust)."
                )
            raise NotSafetensorsError(
                f"{directory}: the model's weights are not safetensors (it has {', '.join(pickled[:3])}"
                f"{' ...' if len(pickled) > 3 else ''}: pickled PyTorch weights): convert it (load it once with "
                "use_safetensors=False, then save_pretrained(dir) writes model.safetensors) or pass "
                "use_safetensors=False. .bin files are pickles that can run code when loaded: only for files you trust."
            )
        try:
            config = transformers.AutoConfig.from_pretrained(directory, trust_remote_code=trust_remote_code)
        except Exception as e:
            raise ModelLoadError(_load_error(directory / "config.json", e, trust_remote_code)) from e
        auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
        try:
            with quiet_hf_progress():
                lm = auto.from_pretrained(
                    directory,
                    config=config,
                    local_files_only=True,
                    use_safetensors=use_safetensors,
                    trust_remote_code=trust_remote_code,
                    **_dtype_kwarg(dtype),
                )
        except Exception as e:
            raise ModelLoadError(_load_error(directory, e, trust_remote_code, weights=True)) from e
        model = cls(lm, critic=critic)
        for filename, module, strict in ((VALUE_HEAD_FILENAME, model.value_head, True), (CRITIC_TRUNK_FILENAME, model.critic_lm, False)):
            if module is not None and (directory / filename).is_file():
                try:
                    module.load_state_dict(load_file(directory / filename), strict=strict)
                except Exception as e:
                    raise ModelLoadError(_load_error(directory / filename, e, trust_remote_code, weights=True)) from e
        return model

    def save_pretrained(self, directory: str | os.PathLike, tokenizer: Any = None) -> None:
        """Write the actor as a normal Hugging Face directory, plus the value head (and separate critic) files.

        ``AutoModelForCausalLM.from_pretrained(directory)`` (or ``AutoModelForSeq2SeqLM``) loads the actor and,
        with a tokenizer saved alongside, ``transformers.pipeline(..., model=directory)`` runs it.

        Args:
            directory: target directory (created if missing).
            tokenizer: optional tokenizer with ``save_pretrained`` (a ``textgym`` ``TextTokenizer`` or a HF one).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with quiet_hf_progress():
            self.lm.save_pretrained(directory)
        save_file({k: v.detach().contiguous() for k, v in self.value_head.state_dict().items()}, directory / VALUE_HEAD_FILENAME)
        if self.critic_lm is not None:
            # Tied weights share storage, which safetensors refuses: clone every tensor.
            state = {k: v.detach().clone().contiguous() for k, v in self.critic_lm.state_dict().items()}
            save_file(state, directory / CRITIC_TRUNK_FILENAME)
        if tokenizer is not None:
            if not hasattr(tokenizer, "save_pretrained"):
                raise TypeError(f"tokenizer must have save_pretrained(dir), got {type(tokenizer).__name__}.")
            tokenizer.save_pretrained(directory)

    # ------------------------------------------------------------------ forward
    @property
    def lm_head(self) -> nn.Module:
        """The output embedding as a callable hidden -> logits (wrapped with the model's output scaling if any)."""
        head = self.lm.get_output_embeddings()
        input_scale, logit_scale, softcap = _output_scaling(self.lm.config)
        if input_scale == 1.0 and logit_scale == 1.0 and not softcap:
            return head
        return _ScaledOutputHead(head, input_scale, logit_scale, softcap)

    def logits(self, hidden: Tensor) -> Tensor:
        """Logits over the vocabulary for hidden states ``[..., H]``, exactly as the wrapped model computes them."""
        return self.lm_head(hidden)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        decoder_input_ids: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        encoder_outputs: Any = None,
    ) -> ActorCriticOutput:
        """Hidden states and values at every position.

        Args:
            input_ids: ``[B, L]`` token ids (causal: the sequence; seq2seq: the encoder input).
            attention_mask: ``[B, L]`` mask (causal: over past + current tokens when a cache is passed).
            position_ids: ``[B, L_new]``; default: :func:`position_ids_from_mask` on ``attention_mask`` (its last
                ``L_new`` columns when a cache is passed), right for left and right padding alike.
            past_key_values: a cache returned by a previous call (pair of caches with a separate critic).
            use_cache: return the updated cache in ``past_key_values``.
            decoder_input_ids: ``[B, L_dec]`` decoder ids (seq2seq only; required there).
            decoder_attention_mask: ``[B, L_past + L_dec]`` decoder mask (seq2seq only; default all ones).
            encoder_outputs: precomputed encoder states ``[B, S, H]`` (or a HF encoder output) to skip the encoder.
        """
        actor_cache, critic_cache = past_key_values, None
        if self.critic_lm is not None and past_key_values is not None:
            actor_cache, critic_cache = past_key_values
        kwargs = dict(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache,
            decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask,
        )
        hidden, cache, encoder_states = self._trunk(self.lm, past_key_values=actor_cache, encoder_outputs=encoder_outputs, **kwargs)
        critic_hidden = hidden
        if self.critic_lm is not None:
            # The critic's encoder has its own weights: it never reuses the actor's encoder states.
            critic_hidden, critic_cache, _ = self._trunk(self.critic_lm, past_key_values=critic_cache, encoder_outputs=None, **kwargs)
            cache = (cache, critic_cache) if use_cache else None
        values = self.value_head(critic_hidden).squeeze(-1).float()
        return ActorCriticOutput(hidden=hidden, values=values, past_key_values=cache if use_cache else None,
                                 encoder_hidden_states=encoder_states)

    def _trunk(
        self, lm, input_ids, attention_mask, position_ids, past_key_values, use_cache, decoder_input_ids,
        decoder_attention_mask, encoder_outputs,
    ) -> tuple[Tensor, Any, Tensor | None]:
        """(final hidden states, cache, encoder states) of one copy of the model, without its LM head."""
        if self.is_encoder_decoder:
            if decoder_input_ids is None:
                raise ValueError(
                    "Seq2seq models need decoder_input_ids (start with config.decoder_start_token_id); "
                    "input_ids/attention_mask are the encoder's prompt."
                )
            if encoder_outputs is None:
                encoder_outputs = lm.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
            encoder_states = encoder_outputs if isinstance(encoder_outputs, Tensor) else encoder_outputs[0]
            decoder = lm.get_decoder()
            out = decoder(
                input_ids=decoder_input_ids,
                attention_mask=decoder_attention_mask,
                encoder_hidden_states=encoder_states,
                encoder_attention_mask=attention_mask,
                use_cache=use_cache,
                **_cache_kwarg(decoder, past_key_values),
            )
            return out[0], (_output_cache(out) if use_cache else None), encoder_states
        if position_ids is None:
            position_ids = position_ids_from_mask(attention_mask)[:, -input_ids.shape[1]:]
        trunk = lm.base_model
        if trunk is lm:  # no separate trunk module: ask the full model for its last hidden state
            out = lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                     use_cache=use_cache, output_hidden_states=True, **_cache_kwarg(lm, past_key_values))
            return out.hidden_states[-1], (_output_cache(out) if use_cache else None), None
        out = trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                    use_cache=use_cache, **_cache_kwarg(trunk, past_key_values))
        return out[0], (_output_cache(out) if use_cache else None), None



def build_default_model(tokenizer: Any = None, size: str = "small", critic: str = "shared", seed: int = 0) -> ActorCriticLM:
    """A freshly initialised default model (:func:`default_model_config`) sized to a tokenizer.

    Args:
        tokenizer: anything with ``vocab_size``, ``pad_token_id``, ``eos_token_id`` (and optionally
            ``bos_token_id``), or a path for ``textgym.tokenizers.load_tokenizer``; default: textgym's default
            sentencepiece tokenizer.
        size: ``"tiny"``, ``"small"`` or ``"medium"``.
        critic: ``"shared"`` or ``"separate"``.
        seed: initialisation seed (the global RNG state is left untouched).
    """
    from textgym.tokenizers import default_tokenizer, load_tokenizer

    if tokenizer is None:
        tokenizer = default_tokenizer()
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    config = default_model_config(
        vocab_size=len(tokenizer) if not hasattr(tokenizer, "vocab_size") else max(tokenizer.vocab_size, len(tokenizer)),
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=getattr(tokenizer, "bos_token_id", None),
        size=size,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ActorCriticLM.from_config(config, critic=critic)



def build_model_from_config(model_config: dict[str, Any] | None = None, tokenizer: Any = None, critic: str = "shared",
                            seed: int | None = None) -> ActorCriticLM:
    """A freshly initialised model from a ``model_config`` dict (the ``policy_kwargs["model_config"]`` of
    ``TokenPPO`` and ``TransformerPolicy``).

    Args:
        model_config: ``None`` or ``{"size": ...}``: :func:`build_default_model`; a dict with ``model_type``: any
            Hugging Face config (``{"model_type": "llama", ...}``); else overrides of the default GPT-2 config
            (``size`` plus any ``GPT2Config`` field, e.g. ``{"size": "tiny", "n_layer": 1}``).
        tokenizer: what sizes the default model (see :func:`build_default_model`).
        critic: ``"shared"`` or ``"separate"``.
        seed: initialisation seed (the global RNG is left untouched); ``None``: the default model uses 0, other
            configs draw from the global RNG.

    Raises:
        ValueError: a field that ``GPT2Config`` does not have (without ``model_type``).
    """
    config = dict(model_config or {})
    if "model_type" in config:
        model_type = config.pop("model_type")
        hf_config = transformers.AutoConfig.for_model(model_type, **config)
    else:
        size = config.pop("size", "small")
        if not config:
            return build_default_model(tokenizer, size=size, critic=critic, seed=0 if seed is None else seed)
        base = build_default_model(tokenizer, size="tiny").config  # only for the tokenizer's ids
        hf_config = default_model_config(base.vocab_size, base.pad_token_id, base.eos_token_id, base.bos_token_id, size=size)
        unknown = sorted(key for key in config if not hasattr(hf_config, key))
        if unknown:
            raise ValueError(f"Unknown GPT2Config fields in model_config: {unknown}. Add 'model_type' for another architecture.")
        hf_config.update(config)
    if seed is None:
        return ActorCriticLM.from_config(hf_config, critic=critic)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ActorCriticLM.from_config(hf_config, critic=critic)
