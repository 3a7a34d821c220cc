"""``TokenPPOConfig``: every hyperparameter of ``TokenPPO``, declared once.

This dataclass is the single declaration (CleanRL's ``Args``, TRL's ``GRPOConfig``): ``TokenPPO``'s keyword
arguments and their defaults, the ``hyperparams`` of ``token_ppo.json`` (``TokenPPO.save`` and checkpoints) and
the ``ppo:`` section of a ``textgym train`` YAML config are all read from its fields. :meth:`validate` (run by
``__post_init__``) is the one place their rules are checked, each error naming the value and the fix.

How the process runs (``device``, ``distributed``, ``fsdp``) is not a hyperparameter: those are ``TokenPPO``
arguments of their own (:data:`LAUNCH_OPTIONS`), never saved.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import warnings
from dataclasses import dataclass
from typing import Any

from agents.ppo.advantages import GROUP_BASELINES, REINFORCE_BASELINES, REWARD_SCALINGS
from agents.ppo.kl import KL_ESTIMATORS
from agents.ppo.losses import IMPORTANCE_RATIOS, LOSS_AGGREGATIONS

BASELINES = ("gae", *GROUP_BASELINES, *REINFORCE_BASELINES)
#: The baselines that compare the completions of one prompt (``group_size >= 2``).
GROUPED_BASELINES = (*GROUP_BASELINES, "reinforce++_baseline")
OLD_LOGPROBS = ("auto", "rollout", "recompute")
#: ``TokenPPO`` arguments about the launch, not the algorithm: not saved, accepted as ``TokenPPO.load`` overrides.
LAUNCH_OPTIONS = ("distributed", "fsdp")


@dataclass
class TokenPPOConfig:
    """TokenPPO's hyperparameters. Build one and pass it (``TokenPPO(policy, env, config=cfg)``), or pass the
    fields as keywords (``TokenPPO(policy, env, learning_rate=3e-5)``): the two are the same."""

    # ---------------------------------------------------------------- optimisation
    learning_rate: float = 1e-5
    """AdamW learning rate."""
    n_epochs: int = 4
    """Passes over each rollout."""
    batch_size: int = 16
    """Sequences per optimiser step (global under ``torchrun``: summed over ranks)."""
    gradient_accumulation_steps: int = 1
    """Each minibatch is split into this many micro-batches whose gradients are summed before the step (the same
    update, less activation memory)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""

    # ---------------------------------------------------------------- the PPO loss
    clip_range: float = 0.2
    """PPO's ratio clip ``epsilon``: the ratio is kept within ``[1 - clip_range, 1 + clip_range_high]``."""
    clip_range_high: float | None = None
    """The upper clip, decoupled from the lower one (DAPO's clip-higher: ``clip_range=0.2``,
    ``clip_range_high=0.28``, room for unlikely tokens to grow, against entropy collapse); ``None``: ``clip_range``
    (symmetric, PPO's)."""
    clip_range_vf: float | None = 0.2
    """Value clip around the rollout values (``None``: no value clipping)."""
    vf_coef: float = 0.1
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    loss_aggregation: str = "token_mean"
    """How the policy loss and the entropy bonus average a minibatch's per-token terms (the value loss is always a
    token mean). ``"token_mean"``: over all its valid tokens, each weighs the same (DAPO's; TRL's default
    ``loss_type="dapo"``). ``"sequence_mean"``: each sequence's mean over its tokens, then the mean over sequences
    (GRPO's original; a long completion's tokens weigh less). ``"constant"``: the sum over tokens divided by
    sequences x ``max_new_tokens``, the env's (Dr. GRPO's: no length bias). Each is exact under
    ``gradient_accumulation_steps`` and ``torchrun``."""
    importance_ratio: str = "token"
    """What the clipped ratio is taken of. ``"token"``: each token's ``pi / pi_old`` (PPO's). ``"sequence"``:
    GSPO's per-sequence ratio, the geometric mean of its tokens' (``exp(mean_t log(pi / pi_old))``), clipped once
    per sequence; GSPO clips far tighter (``clip_range=3e-4``, ``clip_range_high=4e-4``) and averages per
    sequence (``loss_aggregation="sequence_mean"``)."""
    gamma: float = 1.0
    """Discount over tokens (1.0: the reward is about the whole text)."""
    gae_lambda: float = 0.95
    """GAE's ``lambda``."""
    normalize_advantage: bool = True
    """Whiten advantages over the rollout's valid tokens."""
    target_kl: float | None = None
    """Stop the epoch loop once a minibatch's approximate KL(old || new) exceeds ``1.5 * target_kl`` (SB3's early
    stop; ``None`` disables it). Not to be confused with ``kl_target``."""

    # ---------------------------------------------------------------- the KL penalty to the reference
    kl_coef: float = 0.05
    """Coefficient ``beta`` of the per-token KL penalty to the frozen reference (0: no reference model is kept)."""
    kl_target: float | None = None
    """If set, RL4LMs' adaptive controller steers the per-sequence KL to this value starting from ``kl_coef``;
    ``None``: a fixed ``kl_coef``."""
    kl_estimator: str = "k1"
    """``"k1"`` (``log pi - log pi_ref``) or ``"k3"`` (non-negative, lower variance)."""

    # ---------------------------------------------------------------- advantages
    baseline: str = "gae"
    """``"gae"`` (critic); ``"grpo"`` or ``"rloo"`` (group baselines, critic-free; need ``group_size >= 2``);
    ``"reinforce++"`` (critic-free: each token's return-to-go, whitened over the batch by
    ``normalize_advantage``), ``"reinforce++_baseline"`` (the same after subtracting each prompt group's mean task
    reward; needs ``group_size >= 2``)."""
    group_size: int = 1
    """Completions per prompt in a rollout (the env's slot count must be a multiple of it)."""
    scale_rewards: str | None = None
    """What a group baseline divides ``R_i - baseline`` by: ``"group"`` the std of the prompt's group's returns
    (GRPO's), ``"batch"`` the std of the whole rollout's returns, ``"none"`` nothing (Dr. GRPO; RLOO's). ``None``:
    the baseline's own (``"group"`` for ``"grpo"``, ``"none"`` for ``"rloo"``). Only for the group baselines.
    ``normalize_advantage`` whitens afterwards over the rollout: set it False too for Dr. GRPO's unscaled
    advantages."""

    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: drop the prompt groups whose completions all got the same reward (zero advantage
    under a group baseline) and sample new prompts until the rollout holds ``num_envs / group_size`` informative
    groups (needs ``group_size >= 2``). Every sampled token counts in ``total_timesteps`` and in the time; one
    process only for now (not under ``torchrun``)."""
    dynamic_sampling_max_rollouts: int = 3
    """The most rollouts one iteration samples with ``dynamic_sampling`` (DAPO's ``max_num_gen_batches``); short of
    informative groups after them, the update trains on those it has."""

    # ---------------------------------------------------------------- the sampling distribution
    temperature: float = 1.0
    """Sampling temperature; PPO's log-probs are taken under the same distribution."""
    top_k: int = 0
    """Sample from the ``top_k`` most likely tokens (0: all)."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0: off)."""
    missing_eos_penalty: float | None = None
    """Subtracted from the reward of episodes truncated without EOS (``None``: off)."""
    overlong_buffer: int | None = None
    """DAPO's soft overlong punishment: the last this many tokens before the env's ``max_new_tokens`` cost
    ``overlong_penalty`` x (tokens into them) / ``overlong_buffer``, so the penalty grows linearly to
    ``overlong_penalty`` at the limit (``None``: off)."""
    overlong_penalty: float = 1.0
    """The soft overlong punishment at the length limit (with ``overlong_buffer``)."""
    overlong_filter: bool = False
    """DAPO's overlong filtering: episodes truncated at ``max_new_tokens`` without EOS take no part in the losses
    or the advantage whitening (their reward says nothing about a text that was cut off)."""
    nlpo_top_p: float | None = None
    """NLPO action masking: restrict each step to the top-p nucleus of a lagged policy copy (``None``: off)."""
    nlpo_min_tokens: int = 100
    """The NLPO mask keeps at least this many tokens."""
    nlpo_update_interval: int = 5
    """Refresh NLPO's lagged copy every this many iterations."""

    # ---------------------------------------------------------------- model and numerics
    lora: Any = None
    """``None``, ``True``, a dict of ``peft.LoraConfig`` arguments, or a ``peft.LoraConfig``: train LoRA adapters;
    the reference is the same model with adapters disabled."""
    bf16: bool = False
    """bf16 autocast for forwards (CUDA only; on CPU it warns and runs float32)."""
    gradient_checkpointing: bool = False
    """Recompute transformer activations in backward (saves memory; works on CPU too)."""
    logprob_chunk_size: int = 1024
    """Tokens per chunk of the chunked log-softmax over the vocabulary."""
    old_logprobs: str = "auto"
    """Where ``log pi_old`` and the rollout values come from. ``"rollout"``: kept by the sampling loop (no second
    policy pass; agrees with the update's forward to ~1e-5 in float32). ``"recompute"``: one teacher-forced policy
    pass after the rollout, the exact computation the update repeats, so the ratio is exactly 1 before the first
    step. ``"auto"``: ``"recompute"`` under bf16 (decode and full-sequence kernels round differently), else
    ``"rollout"``."""
    max_consecutive_nonfinite: int = 3
    """An iteration whose rewards, advantages, losses or gradients hold a NaN / inf skips its update (with a
    ``NonFiniteWarning`` naming the rows); this many in a row raise ``agents.ppo.nonfinite.NonFiniteError``."""

    # ---------------------------------------------------------------- env, model construction, run
    num_envs: int = 16
    """Slots when ``env`` is an id (per rank under ``torchrun``); a given vector env keeps its own."""
    env_kwargs: dict | None = None
    """Extra ``gym.make_vec`` arguments when ``env`` is an id."""
    policy_kwargs: dict | None = None
    """With ``policy="default"``: ``size`` (``"tiny"`` / ``"small"`` / ``"medium"``), ``critic``, and
    ``model_config`` (the dict ``TransformerPolicy`` takes). With a directory: ``ActorCriticLM.from_pretrained``
    arguments."""
    seed: int | None = None
    """Seeds Python, numpy, torch, the sampler and the env; the same seed on CPU gives identical runs."""
    verbose: int = 0
    """0 silent, 1 SB3 stdout logging, 2 also warnings about the setup."""
    tensorboard_log: str | None = None
    """Directory for tensorboard logs (``None``: off)."""

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        """Every rule on the hyperparameters, with an error that names the bad value (``ValueError``)."""
        for name in ("n_epochs", "batch_size", "gradient_accumulation_steps", "group_size", "num_envs",
                     "logprob_chunk_size", "dynamic_sampling_max_rollouts"):
            _positive(name, getattr(self, name), integer=True)
        for name in ("learning_rate", "clip_range", "max_grad_norm", "temperature"):
            _positive(name, getattr(self, name))
        if self.clip_range_high is not None:
            _positive("clip_range_high", self.clip_range_high, none_hint=True)
        _choice("loss_aggregation", self.loss_aggregation, LOSS_AGGREGATIONS)
        _choice("importance_ratio", self.importance_ratio, IMPORTANCE_RATIOS)
        _choice("old_logprobs", self.old_logprobs, OLD_LOGPROBS)
        _choice("baseline", self.baseline, BASELINES)
        if self.baseline in GROUPED_BASELINES and self.group_size < 2:
            raise ValueError(f"baseline={self.baseline!r} compares completions of the same prompt: set group_size >= 2.")
        if self.dynamic_sampling and self.group_size < 2:
            raise ValueError("dynamic_sampling drops the prompt groups whose completions all scored the same: set "
                             "group_size >= 2 (with a group baseline such as baseline='grpo').")
        if self.scale_rewards is not None:
            _choice("scale_rewards", self.scale_rewards, REWARD_SCALINGS, none_hint=True)
            if self.baseline not in GROUP_BASELINES:
                raise ValueError(f"scale_rewards={self.scale_rewards!r} scales a group baseline's advantages: set "
                                 f"baseline to one of {GROUP_BASELINES}, or leave scale_rewards None with "
                                 f"{self.baseline!r} (normalize_advantage whitens its advantages).")
            if self.scale_rewards == "none" and self.normalize_advantage:
                # Dr. GRPO's point is advantages NOT divided by a std; the rollout-wide whitening would divide
                # them by one again, silently undoing the choice.
                warnings.warn("scale_rewards='none' (Dr. GRPO's unscaled advantages) with normalize_advantage=True: "
                              "the rollout-wide whitening divides the advantages by their std anyway. Set "
                              "normalize_advantage=False to keep them unscaled.", UserWarning, stacklevel=4)
        if self.overlong_buffer is not None:
            _positive("overlong_buffer", self.overlong_buffer, integer=True, none_hint=True)
        if isinstance(self.overlong_penalty, bool) or not isinstance(self.overlong_penalty, (int, float)) \
                or self.overlong_penalty < 0:
            raise ValueError(f"overlong_penalty must be a number >= 0, got {self.overlong_penalty!r}.")
        _choice("kl_estimator", self.kl_estimator, KL_ESTIMATORS)
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gamma and gae_lambda must lie in [0, 1], got {self.gamma!r} and {self.gae_lambda!r}.")
        if self.target_kl is not None and self.target_kl <= 0:
            raise ValueError(f"target_kl (early stop) must be > 0 or None, got {self.target_kl!r}.")
        # The KL controllers (kl_coef, kl_target), NLPO's mask (nlpo_*) and the non-finite guard
        # (max_consecutive_nonfinite) check their own arguments when TokenPPO builds them.

    def check_slots(self, num_envs: int, world_size: int = 1) -> None:
        """The env's slot count (this rank's, under ``torchrun``) against ``group_size``, and the global
        ``batch_size`` against the world size: the layout rules of ``agents.ppo.distributed.check_layout``."""
        from agents.ppo.distributed import check_layout

        check_layout(world_size, num_envs, self.batch_size, self.group_size)

    def check_length_limit(self, max_new_tokens: int) -> None:
        """``overlong_buffer`` against the env's ``max_new_tokens``: the buffer is a stretch before the limit."""
        if self.overlong_buffer is not None and self.overlong_buffer > max_new_tokens:
            raise ValueError(f"overlong_buffer={self.overlong_buffer} is longer than the env's max_new_tokens="
                             f"{max_new_tokens}: the penalty ramps over the last overlong_buffer tokens before the "
                             f"limit, so set overlong_buffer <= {max_new_tokens}.")

    # ---------------------------------------------------------------- derived settings
    @property
    def uses_reference(self) -> bool:
        """A frozen reference is kept (and scored) when the KL penalty can be non-zero."""
        return self.kl_coef > 0 or self.kl_target is not None

    @property
    def uses_critic(self) -> bool:
        """GAE needs the value head; the group baselines are critic-free."""
        return self.baseline == "gae"

    # ---------------------------------------------------------------- (de)serialisation
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's default value (``None`` for the fields without one)."""
        return {f.name: (None if f.default is dataclasses.MISSING else f.default) for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], what: str = "TokenPPOConfig") -> "TokenPPOConfig":
        """Build from a dict, e.g. the ``hyperparams`` of a saved ``token_ppo.json`` (a run saved by an older
        textgym holds a subset of the fields: the others take their defaults). An unknown key is a
        ``TypeError`` naming the accepted ones."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"{what} got unknown hyperparameter(s) {unknown}; accepted: {', '.join(cls.field_names())}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values, in declaration order (``token_ppo.json``'s ``hyperparams``): a
        ``peft.LoraConfig`` becomes its dict; anything else JSON cannot hold is saved as null with a warning."""
        return {f.name: _jsonable(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "TokenPPOConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def init_signature() -> inspect.Signature:
    """``TokenPPO(policy, env, <every TokenPPOConfig field>, device, distributed, fsdp)``: the fields' defaults
    are the dataclass's (``help(TokenPPO)`` and ``inspect.signature`` show them). ``config=`` is accepted besides
    (:func:`split_arguments`)."""
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    fields = [inspect.Parameter(name, keyword, default=TokenPPOConfig.__dataclass_fields__[name].default)
              for name in TokenPPOConfig.field_names()]
    seed_at = next(i for i, p in enumerate(fields) if p.name == "seed") + 1  # where device always stood
    return inspect.Signature([
        inspect.Parameter("self", keyword), inspect.Parameter("policy", keyword), inspect.Parameter("env", keyword),
        *fields[:seed_at], inspect.Parameter("device", keyword, default="auto"), *fields[seed_at:],
        inspect.Parameter("distributed", keyword, default=None), inspect.Parameter("fsdp", keyword, default=False),
    ])


#: ``TokenPPO.__init__``'s signature, built from the fields.
INIT_SIGNATURE = init_signature()


def split_arguments(args: tuple, kwargs: dict) -> tuple[TokenPPOConfig, dict[str, Any]]:
    """``TokenPPO``'s arguments after ``policy, env`` -> ``(config, {device, distributed, fsdp})``; keywords
    given with ``config=`` replace its fields. Unknown keywords are a ``TypeError``, as for any call."""
    base = kwargs.pop("config", None)
    bound = INIT_SIGNATURE.bind(None, None, None, *args, **kwargs).arguments
    launch = {k: bound.pop(k, INIT_SIGNATURE.parameters[k].default) for k in ("device", *LAUNCH_OPTIONS)}
    for name in ("self", "policy", "env"):
        bound.pop(name)
    if base is None:
        return TokenPPOConfig(**bound), launch
    if not isinstance(base, TokenPPOConfig):
        raise TypeError(f"config must be a TokenPPOConfig, got {type(base).__name__}.")
    return (base.replace(**bound) if bound else base), launch


def check_ppo_section(section: dict[str, Any], *, seed: int | None, num_envs: int) -> TokenPPOConfig:
    """The ``ppo:`` section of a ``textgym train`` config, checked before any work: its keys (the config fields
    and :data:`LAUNCH_OPTIONS`, less what the top level sets), their types (the defaults') and the fields'
    rules, with the run's top-level ``seed`` and ``num_envs``. Errors are ``textgym.config.ConfigError`` naming
    ``ppo.<key>``; returns the config the run will use."""
    from textgym.config import SET_ELSEWHERE, ConfigError, check_keys, check_type

    defaults = {name: f.default for name, f in TokenPPOConfig.__dataclass_fields__.items()}
    defaults.update(distributed=None, fsdp=False)
    check_keys("ppo", section, [k for k in defaults if k not in SET_ELSEWHERE])
    for key, value in section.items():
        check_type("ppo", key, value, defaults[key])
    try:
        config = TokenPPOConfig(seed=seed, num_envs=num_envs, **{k: v for k, v in section.items() if k not in LAUNCH_OPTIONS})
        config.check_slots(num_envs)
    except ValueError as e:
        raise ConfigError(f"In section 'ppo': {e}") from None
    return config


def _positive(name: str, value: Any, integer: bool = False, none_hint: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (integer and int(value) != value):
        alternative = " or None" if none_hint else ""
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}{alternative}, got {value!r}.")


def _choice(name: str, value: Any, choices: tuple[str, ...], none_hint: bool = False) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}{' or None' if none_hint else ''}, got {value!r}.")


def _jsonable(name: str, value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "to_dict"):  # peft.LoraConfig
            return _jsonable(name, {k: (sorted(v) if isinstance(v, set) else v) for k, v in value.to_dict().items()})
        warnings.warn(f"TokenPPO.save: hyperparameter {name}={value!r:.60} is not JSON-serialisable; saved as null.", stacklevel=4)
        return None


__all__ = ["BASELINES", "INIT_SIGNATURE", "LAUNCH_OPTIONS", "OLD_LOGPROBS", "TokenPPOConfig", "check_ppo_section",
           "split_arguments"]
