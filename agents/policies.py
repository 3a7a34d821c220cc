"""TransformerPolicy: a Hugging Face LM as a stock Stable-Baselines3 ``ActorCriticPolicy``.

``PPO(TransformerPolicy, env, policy_kwargs=...)`` trains it on any textgym id with no change to SB3: ``learn``,
``save``, ``load``, ``predict`` and ``evaluate_policy`` all work. The observation is textgym's Dict
(``input_ids``, ``attention_mask``; docs/design.md), the action space ``Discrete(vocab_size)``.

What SB3 calls, and what this class does for it:

* ``forward`` (rollouts, under ``no_grad``, once per env step for all ``n_envs`` slots): next-token distribution,
  value and log-prob at each slot's last real token, through a per-slot KV cache (``agents.kv_cache``) so a step
  runs one new token per slot instead of the whole prefix (or, in a multi-turn env, the agent's token plus the
  env's appended text as one span). The Dict's extra ``agent_mask`` key (multi-turn envs) is not read: under
  SB3 every step is one action, so env tokens never enter the loss.
* ``evaluate_actions`` (the PPO update, with grad): no cache; log-probs and entropy computed in chunks of rows
  (``agents.distributions.token_logprobs_and_entropy``), so a minibatch never holds more than
  ``chunk_size x vocab`` logits.
* ``predict_values``, ``get_distribution``, ``_predict``: the same encoding path.

Sampling controls (``temperature``, ``top_k``, ``top_p``) go through ``agents.distributions.process_logits`` for
sampling *and* for PPO's log-probs and entropy, so the importance ratio compares the distribution that acted.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import Tensor

from agents.distributions import logprobs_and_entropy_from_logits, process_logits, sample_tokens, token_logprobs_and_entropy
from agents.kv_cache import SlotKVCache, encode_last
from agents.models import ActorCriticLM, build_model_from_config, merge_size
from agents.models import disable_dropout as zero_dropout  # the name disable_dropout is an argument here
from textgym.envs.core import split_flat_observation

_EXACT_FLOAT32_IDS = 2**24  # SB3 stores Box observations as float32: integers below 2**24 convert back exactly


class TokenDistribution(CategoricalDistribution):
    """SB3's categorical distribution over tokens, without building a ``torch.distributions.Categorical``.

    Holds processed logits (``-inf`` on removed tokens) and computes the log-softmax once; sampling is
    :func:`agents.distributions.sample_tokens` (one uniform number per row).
    ``distribution`` still gives a ``torch.distributions.Categorical`` for code that wants one.
    """

    def proba_distribution(self, action_logits: Tensor) -> TokenDistribution:
        self.logits = action_logits
        self._log_probs = torch.log_softmax(action_logits, dim=-1)
        return self

    @property
    def distribution(self) -> torch.distributions.Categorical:  # type: ignore[override]
        return torch.distributions.Categorical(logits=self.logits, validate_args=False)

    @distribution.setter
    def distribution(self, value: Any) -> None:  # SB3's __init__ assigns it; the logits are the state here
        pass

    def log_prob(self, actions: Tensor) -> Tensor:
        return self._log_probs.gather(-1, actions.long().reshape(-1, 1)).squeeze(-1)

    def entropy(self) -> Tensor:
        return logprobs_and_entropy_from_logits(self.logits, self.logits.argmax(-1))[1]

    def sample(self) -> Tensor:
        return sample_tokens(self.logits)

    def mode(self) -> Tensor:
        return self.logits.argmax(dim=-1)


class _ObservationPassthrough(BaseFeaturesExtractor):
    """Placeholder extractor: the LM reads the token ids itself (SB3 requires an extractor object)."""

    def __init__(self, observation_space: gym.spaces.Dict):
        super().__init__(observation_space, features_dim=1)

    def forward(self, observations: PyTorchObs) -> PyTorchObs:
        return observations


class TransformerPolicy(ActorCriticPolicy):
    """A Hugging Face causal or seq2seq LM with a value head, as an SB3 actor-critic policy.

    Args:
        observation_space: textgym's ``Dict(input_ids=Box((P+T,)), attention_mask=Box((P+T,)))``, or its flat
            ``Box((2 (P+T),))`` (``observation="flat"``, the ``textgym/<Task>Flat-v0`` ids).
        action_space: ``Discrete(n)`` with ``n <= model.vocab_size`` (logits beyond ``n`` are dropped).
        lr_schedule: SB3's learning-rate schedule (PPO's ``learning_rate``; ~1e-4 to 3e-4 suits small LMs,
            1e-5 to 1e-6 pretrained ones).
        model: where the LM comes from (``None``: build one from ``model_config``, default
            ``agents.models.build_default_model``). Any of :func:`agents.pretrained.resolve_model`: an
            ``ActorCriticLM``, a local Hugging Face model directory, a ``textgym train`` run directory (its
            ``final/policy``, or its warm start ``reference/`` when the run has not finished) or
            ``"warm-start:<config>"`` (a shipped config's cached supervised warm start, e.g.
            ``"warm-start:sentiment"``).
        pretrained: another name for ``model`` (the Hugging Face word); pass one of the two.
        model_config: config for a from-scratch model when ``model`` is None: a dict with ``model_type`` (any HF
            config, e.g. ``{"model_type": "llama", ...}``), or overrides of the default GPT-2 config
            (``size`` in ``"tiny"/"small"/"medium"`` plus any ``GPT2Config`` field).
        size: shorthand for ``model_config={"size": size}``, the key ``TokenPPO(policy_kwargs=...)`` takes: both
            forms work with both classes.
        critic: ``"shared"`` (value head on the actor's trunk) or ``"separate"`` (its own copy of the trunk).
        temperature, top_k, top_p: sampling controls, applied identically to sampling and to PPO's log-probs.
        use_cache: reuse per-slot KV caches during rollouts (``agents.kv_cache``). Results are the same either way.
        chunk_size: rows of logits per chunk in ``evaluate_actions`` (peak memory ``chunk_size x vocab``).
        tokenizer: path of the tokenizer that sizes the default model (default: textgym's default tokenizer).
        max_prompt_tokens: ``P`` of the observation layout; required for seq2seq models (the encoder gets the
            prompt slots ``[0, P)``), unused for causal ones.
        trust_remote_code: passed to ``from_pretrained`` (off by default: it runs code shipped with the model).
        disable_dropout: set every dropout probability to 0 (default), so the PPO ratio compares the same network
            in rollout (eval mode) and update (train mode), as TRL does.
        use_sde: must be False (token actions are discrete).
        optimizer_class, optimizer_kwargs: default ``torch.optim.AdamW`` with ``eps=1e-5``, no weight decay.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Discrete,
        lr_schedule: Schedule,
        model: str | os.PathLike | ActorCriticLM | None = None,
        pretrained: str | os.PathLike | ActorCriticLM | None = None,
        model_config: dict[str, Any] | None = None,
        size: str | None = None,
        critic: str = "shared",
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        use_cache: bool = True,
        chunk_size: int = 1024,
        tokenizer: str | os.PathLike | None = None,
        max_prompt_tokens: int | None = None,
        trust_remote_code: bool = False,
        disable_dropout: bool = True,
        use_sde: bool = False,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
        optimizer_kwargs: dict[str, Any] | None = None,
        **unused_sb3_kwargs: Any,
    ):
        _check_spaces(observation_space, action_space)
        _check_unused_kwargs(unused_sb3_kwargs)
        if pretrained is not None:
            if model is not None:
                raise ValueError("Pass either model or pretrained (two names for the same argument), not both.")
            model = pretrained
        if use_sde:
            raise ValueError("use_sde=True is for continuous actions; TransformerPolicy's tokens are discrete.")
        process_logits(torch.zeros(1, 2), temperature, top_k, top_p)  # validates the sampling controls early
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}.")
        model_config = merge_size(size, model_config)
        if model is not None and model_config is not None:
            raise ValueError("Pass either model (a directory or an ActorCriticLM) or model_config, not both.")
        # nn.Module.__init__ has not run yet: keep the model object out of the module registry until _build.
        self.__dict__["_model_arg"] = model
        self.model_config, self.critic = model_config, critic
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.use_cache, self.chunk_size, self.tokenizer_path = use_cache, chunk_size, tokenizer
        self.max_prompt_tokens, self.trust_remote_code = max_prompt_tokens, trust_remote_code
        self.disable_dropout = disable_dropout
        self.num_actions = int(action_space.n)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            use_sde=False,
            features_extractor_class=_ObservationPassthrough,
            normalize_images=False,
            optimizer_class=optimizer_class,
            optimizer_kwargs={"eps": 1e-5, "weight_decay": 0.0} if optimizer_kwargs is None else optimizer_kwargs,
        )

    # ------------------------------------------------------------------ construction
    def _build(self, lr_schedule: Schedule) -> None:
        """Build (or load) the LM, its distribution and the optimizer; SB3 calls this from ``__init__``."""
        model = self.__dict__.pop("_model_arg")
        if isinstance(model, ActorCriticLM):
            self.model, self.critic = model, model.critic
        elif isinstance(model, (str, os.PathLike)):
            from agents.pretrained import resolve_model

            self.model = resolve_model(model, role="policy", critic=self.critic, trust_remote_code=self.trust_remote_code)
        elif model is None:
            self.model = self._model_from_config()
        else:
            raise TypeError(
                f"model must be a local directory (a model or a run), 'warm-start:<config>', an ActorCriticLM or None, "
                f"got {type(model).__name__}."
            )
        if self.model.vocab_size < self.num_actions:
            raise ValueError(
                f"The model's vocabulary ({self.model.vocab_size}) is smaller than the action space "
                f"({self.num_actions}): use a model built for the env's tokenizer (e.g. model=None builds one)."
            )
        if self.model.is_encoder_decoder and self.max_prompt_tokens is None:
            raise ValueError(
                "Seq2seq models need policy_kwargs['max_prompt_tokens'] (the env's max_prompt_tokens, P): the encoder "
                "reads the prompt slots [0, P) of the observation."
            )
        if self.disable_dropout:
            zero_dropout(self.model)
        self.action_dist = TokenDistribution(self.num_actions)
        self.slot_cache = SlotKVCache(self.model, prompt_length=self.max_prompt_tokens)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _model_from_config(self) -> ActorCriticLM:
        return build_model_from_config(self.model_config, self.tokenizer_path, critic=self.critic)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """Everything needed to rebuild the policy; the weights come from the state dict SB3 saves alongside."""
        config = self.model.config.to_dict()
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            lr_schedule=self._dummy_schedule,
            model=None,
            model_config=config,  # has model_type: rebuilds the same architecture from scratch
            critic=self.critic,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            use_cache=self.use_cache,
            chunk_size=self.chunk_size,
            tokenizer=self.tokenizer_path,
            max_prompt_tokens=self.max_prompt_tokens,
            disable_dropout=self.disable_dropout,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )

    def save_pretrained(self, directory: str | os.PathLike, tokenizer: Any = None) -> None:
        """Export the LM as a Hugging Face model directory with its tokenizer (``AutoModelForCausalLM``,
        ``AutoTokenizer`` and ``transformers.pipeline("text-generation", model=directory)`` load it), plus the
        value head (``ActorCriticLM.from_pretrained``, or ``policy_kwargs={"model": directory}``, load both).

        Args:
            directory: target directory (created if missing).
            tokenizer: the env's tokenizer (anything with ``save_pretrained``); default: the policy's
                ``tokenizer`` path, else textgym's default tokenizer.
        """
        from textgym.tokenizers import load_tokenizer

        self.model.save_pretrained(directory, tokenizer=tokenizer if tokenizer is not None else load_tokenizer(self.tokenizer_path))

    # ------------------------------------------------------------------ encoding
    def obs_to_ids(self, obs: PyTorchObs) -> tuple[Tensor, Tensor]:
        """Token ids and attention mask (int64) from an SB3 observation (float32 or integer tensors): textgym's
        Dict, or its ``observation="flat"`` Box (the ids, then the mask)."""
        if isinstance(obs, Tensor):
            obs = split_flat_observation(obs)
        if not isinstance(obs, dict) or "input_ids" not in obs or "attention_mask" not in obs:
            raise ValueError("TransformerPolicy expects textgym's Dict observation with 'input_ids' and 'attention_mask'.")
        ids, mask = obs["input_ids"], obs["attention_mask"]
        if ids.dim() == 1:
            ids, mask = ids.unsqueeze(0), mask.unsqueeze(0)
        return ids.long(), mask.long()

    def _last_hidden_and_values(self, obs: PyTorchObs) -> tuple[Tensor, Tensor]:
        """Hidden state ``[B, H]`` and value ``[B]`` at each row's last real token (cached under no_grad)."""
        ids, mask = self.obs_to_ids(obs)
        cache = self.slot_cache
        if self.use_cache and not torch.is_grad_enabled() and (cache.ids is None or cache.ids.shape == ids.shape):
            return cache.step(ids, mask)
        # A different batch (e.g. one terminal observation) leaves the rollout slots' caches untouched.
        hidden, values, _ = encode_last(self.model, ids, mask, self.max_prompt_tokens)
        return hidden, values

    def _action_logits(self, hidden: Tensor) -> Tensor:
        return self.model.lm_head(hidden)[..., : self.num_actions]

    def _distribution(self, hidden: Tensor) -> TokenDistribution:
        logits = process_logits(self._action_logits(hidden), self.temperature, self.top_k, self.top_p)
        return self.action_dist.proba_distribution(action_logits=logits)

    # ------------------------------------------------------------------ what SB3 calls
    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Actions, values ``[B, 1]`` and log-probs for a batch of observations (SB3's rollout step)."""
        hidden, values = self._last_hidden_and_values(obs)
        distribution = self._distribution(hidden)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values.unsqueeze(-1), distribution.log_prob(actions)

    def evaluate_actions(self, obs: PyTorchObs, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Values ``[B, 1]``, log-probs ``[B]`` and entropies ``[B]`` of ``actions`` (PPO's update; never cached)."""
        ids, mask = self.obs_to_ids(obs)
        hidden, values, _ = encode_last(self.model, ids, mask, self.max_prompt_tokens)
        log_prob, entropy = token_logprobs_and_entropy(
            hidden, self._action_logits, actions.long().reshape(-1), self.temperature, self.top_k, self.top_p,
            chunk_size=self.chunk_size,
        )
        return values.unsqueeze(-1), log_prob, entropy

    def get_distribution(self, obs: PyTorchObs) -> TokenDistribution:
        """The next-token distribution for each observation."""
        hidden, _ = self._last_hidden_and_values(obs)
        return self._distribution(hidden)

    def predict_values(self, obs: PyTorchObs) -> Tensor:
        """Values ``[B, 1]`` at each observation's last real token."""
        return self._last_hidden_and_values(obs)[1].unsqueeze(-1)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)

    def set_training_mode(self, mode: bool) -> None:
        """Train/eval mode; entering training drops the rollout caches (the weights are about to change)."""
        if mode:
            self.slot_cache.reset()
        super().set_training_mode(mode)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load weights and drop the rollout caches (they were computed with the old weights)."""
        self.slot_cache.reset()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


#: ActorCriticPolicy arguments that mean nothing for an LM policy (an rl-zoo3 default may still pass them)
_IGNORED_SB3_KWARGS = frozenset({
    "net_arch", "activation_fn", "ortho_init", "log_std_init", "full_std", "squash_output", "share_features_extractor",
    "features_extractor_class", "features_extractor_kwargs", "normalize_images",
})


def _check_unused_kwargs(kwargs: dict[str, Any]) -> None:
    """A misspelt policy_kwargs key must not be dropped in silence (e.g. a warm start that never loads)."""
    unknown = sorted(set(kwargs) - _IGNORED_SB3_KWARGS)
    if unknown:
        import difflib
        import inspect

        names = [n for n in inspect.signature(TransformerPolicy.__init__).parameters if n not in ("self", "unused_sb3_kwargs")]
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, names, n=1)) else repr(k) for k in unknown]
        raise TypeError(f"TransformerPolicy got unknown policy_kwargs {', '.join(hints)}; it takes {', '.join(names)}.")


def _is_flat_layout(space: gym.spaces.Space) -> bool:
    """textgym's ``observation="flat"`` Box: 1-D, even length, its second half a 0/1 mask."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1 or space.shape[0] % 2:
        return False
    half = space.shape[0] // 2
    return bool((space.low == 0).all() and (space.high[half:] == 1).all())


def _check_spaces(observation_space: gym.spaces.Space, action_space: gym.spaces.Space) -> None:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"TransformerPolicy needs a Discrete (token) action space, got {action_space}.")
    if action_space.n > _EXACT_FLOAT32_IDS:
        raise ValueError(f"Action space of {action_space.n} tokens: ids >= 2**24 do not survive SB3's float32 observations.")
    if _is_flat_layout(observation_space):
        return
    if not isinstance(observation_space, gym.spaces.Dict) or {"input_ids", "attention_mask"} - set(observation_space.spaces):
        raise ValueError(
            "TransformerPolicy needs textgym's Dict observation with 'input_ids' and 'attention_mask', or its flat Box "
            f"(observation='flat': the ids, then the mask), got {observation_space}."
        )
    shapes = {key: observation_space[key].shape for key in ("input_ids", "attention_mask")}
    if len(shapes["input_ids"]) != 1 or shapes["input_ids"] != shapes["attention_mask"]:
        raise ValueError(f"input_ids and attention_mask must be 1-D Boxes of the same shape, got {shapes}.")
