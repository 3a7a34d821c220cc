"""Rollouts: batched KV-cached sampling that steps a textgym vector env, then ONE teacher-forced pass per
sequence for the old log-probs, values and reference log-probs.

Generation: the prompts of all ``N`` slots are prefilled once (one forward over ``[N, P]``); then each step
feeds only the ``N`` newly sampled tokens with the cache (``agents.ppo.decoder``; in a multi-turn env also the
text the env appended, as one block), and sends them to the env as one ``step``. The env
(``autoreset_mode=DISABLED``) freezes finished slots and scores every episode that finished on a step in one
batched reward call.

Scoring: with ``record_logprobs=True`` the sampling loop keeps each sampled token's log-prob (from the logits
it sampled from) and the value of the state it was sampled in, so the policy needs no second pass. Otherwise
each sequence goes through the model once afterwards, teacher-forced (:func:`evaluate_sequences`), which gives
every response token's log-prob, entropy and value in parallel. Because a causal LM's output at position ``i``
depends only on tokens ``<= i``, the two agree (``tests/agents/ppo/test_rollout.py`` checks it to 1e-4 in
float32); the teacher-forced pass is the exact computation the update repeats, so with it the importance ratio
is exactly 1 before the first gradient step (worth it where decode and full-sequence kernels round
differently, e.g. bf16). The reference model is always scored teacher-forced: one pass per sequence.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from agents.distributions import process_logits, sample_tokens, token_logprobs_and_entropy
from agents.models import position_ids_from_mask
from agents.ppo.buffer import first_used_column, layout_to_sequences
from agents.ppo.decoder import CachedDecoder, env_block
from agents.ppo.masking import LaggedMaskPolicy
from textgym.envs.core import split_flat_observation


@dataclass
class LogitsProcessor:
    """The token distribution: how logits become the distribution tokens are drawn from (temperature, top-k,
    top-p, the env's allowed actions, NLPO's mask). Rollouts, old log-probs and the update share one, so that
    all three score the same distribution; it draws nothing itself (``agents.distributions.sample_tokens`` does).

    Attributes:
        temperature, top_k, top_p: logits processing (``agents.distributions.process_logits``).
        allowed_tokens: optional bool ``[V]`` tensor, the env's allowed actions (``env.action_masks()``).
        nlpo: optional :class:`LaggedMaskPolicy`; its top-p set further restricts each step.
        chunk_size: tokens per chunk of the chunked log-softmax (memory ``chunk_size x V`` floats).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    allowed_tokens: torch.Tensor | None = None
    nlpo: LaggedMaskPolicy | None = None
    chunk_size: int = 1024

    def action_mask(self, mask_logits: torch.Tensor | None) -> torch.Tensor | None:
        """The bool mask of allowed tokens for rows whose mask-policy logits are ``mask_logits`` (or ``None``)."""
        mask = self.allowed_tokens
        if self.nlpo is not None and mask_logits is not None:
            nucleus = self.nlpo.mask_from_logits(mask_logits)
            mask = nucleus if mask is None else nucleus & mask
            # The env's constraint wins: if the nucleus has no allowed token left, fall back to the allowed set.
            if self.allowed_tokens is not None:
                empty = ~mask.any(dim=-1, keepdim=True)
                mask = torch.where(empty, self.allowed_tokens.expand_as(mask), mask)
        return mask

    def process(self, logits: torch.Tensor, mask_logits: torch.Tensor | None = None) -> torch.Tensor:
        return process_logits(
            logits, self.temperature, self.top_k, self.top_p, action_mask=self.action_mask(mask_logits)
        )

    def state_dict(self) -> dict[str, float | int]:
        """The settings a checkpoint keeps (``textgym generate`` may have changed them from the config's)."""
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.temperature, self.top_k, self.top_p = state["temperature"], state["top_k"], state["top_p"]


#: The former name (it never sampled: it processes logits).
Sampler = LogitsProcessor


def token_logprobs(
    hidden: torch.Tensor,
    tokens: torch.Tensor,
    lm_head: nn.Module,
    sampler: LogitsProcessor,
    mask_hidden: torch.Tensor | None = None,
    checkpoint: bool = True,
    with_entropy: bool = True,
    entropy_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob and entropy of each token under the sampler's processed distribution, vocabulary in chunks
    (``agents.distributions.token_logprobs_and_entropy``: memory ``sampler.chunk_size x V`` whatever ``N``).

    Args:
        hidden: ``[N, H]`` final hidden states at the positions that predict ``tokens``.
        tokens: ``[N]`` token ids.
        lm_head: the policy's output projection.
        sampler: temperature / top-k / top-p / masks.
        mask_hidden: ``[N, H]`` hidden states of the NLPO mask policy at the same positions (or ``None``).
        checkpoint: recompute chunk logits in backward (only matters when ``hidden`` requires grad).
        with_entropy: compute the entropy; ``False`` returns zeros for it (the rollout's scoring pass only
            needs log-probs).
        entropy_grad: ``False`` returns the entropy without a gradient (``ent_coef=0``: a metric only).

    Returns:
        ``(logp [N], entropy [N])``, float32.
    """

    def process(logits: torch.Tensor, rows: slice) -> torch.Tensor:
        mask_logits = None
        if sampler.nlpo is not None and mask_hidden is not None:
            with torch.no_grad():
                mask_logits = sampler.nlpo.mask_logits(mask_hidden[rows])
        return sampler.process(logits, mask_logits)

    return token_logprobs_and_entropy(
        hidden, lm_head, tokens, chunk_size=sampler.chunk_size, checkpoint=checkpoint, process=process,
        with_entropy=with_entropy, entropy_grad=entropy_grad,
    )


def _response_hidden(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int, num_tokens: int):
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask))
    # Response token t sits at column prompt_length + t and is predicted from column prompt_length - 1 + t.
    window = slice(prompt_length - 1, prompt_length - 1 + num_tokens)
    return out.hidden[:, window], out.values[:, window]


def evaluate_sequences(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    response_ids: torch.Tensor,
    response_mask: torch.Tensor,
    sampler: LogitsProcessor,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    checkpoint: bool = True,
    with_entropy: bool = True,
    entropy_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The teacher-forced pass: one forward over whole sequences gives each response token's log-prob,
    entropy and the value of the state before it.

    Args:
        model: an ``ActorCriticLM`` (causal).
        input_ids: ``[B, L]`` prompt (left-padded) then response (right-padded) ids.
        attention_mask: ``[B, L]``, 1 on real tokens.
        prompt_length: number of prompt columns; response token ``t`` is column ``prompt_length + t``.
        response_ids: ``[B, T]``.
        response_mask: ``[B, T]`` bool, True on generated tokens.
        sampler: the sampling distribution the log-probs are taken under.
        autocast: a context-manager factory (bf16 autocast on CUDA; a no-op otherwise).
        checkpoint: activation checkpointing of the chunked vocabulary projection.
        with_entropy: compute the entropy (``False``: zeros, and the vocabulary pass is ~25% cheaper).
        entropy_grad: ``False`` returns the entropy without a gradient (PPO with ``ent_coef=0`` only logs it).

    Returns:
        ``(logp, entropy, values)``, each ``[B, T]`` float32 and 0 on padding.
    """
    num_tokens = response_ids.shape[1]
    with autocast():
        hidden, values = _response_hidden(model, input_ids, attention_mask, prompt_length, num_tokens)
        mask_hidden = None
        if sampler.nlpo is not None:
            with torch.no_grad():
                mask_hidden, _ = _response_hidden(sampler.nlpo.model, input_ids, attention_mask, prompt_length, num_tokens)
                mask_hidden = mask_hidden[response_mask]
        logp_valid, ent_valid = token_logprobs(
            hidden[response_mask], response_ids[response_mask], model.lm_head, sampler, mask_hidden, checkpoint,
            with_entropy, entropy_grad,
        )
    logp = torch.zeros(response_ids.shape, dtype=torch.float32, device=hidden.device)
    entropy = torch.zeros_like(logp)
    logp = logp.masked_scatter(response_mask, logp_valid)
    entropy = entropy.masked_scatter(response_mask, ent_valid)
    return logp, entropy, values.float() * response_mask


@dataclass
class Episodes:
    """What a rollout returns: the finished episodes in buffer layout plus the env's infos.

    Attributes:
        prompt_ids, prompt_mask, response_ids, response_mask: as in :class:`SequenceRolloutBuffer`.
        env_rewards: ``[N, T]`` float32, each token's env reward.
        terminated: ``[N]`` bool (EOS), else truncated.
        completions: the decoded completions (from the env's infos).
        reward_components: name -> ``[N]`` float array.
        num_steps: env steps taken (``<= T``).
        logp: ``[N, T]`` float32 log-prob of each generated token under the sampler's distribution, taken while
            sampling (0 on padding); ``None`` unless ``record_logprobs``.
        values: ``[N, T]`` float32 value of the state each token was sampled in (0 on padding); ``None`` unless
            ``record_logprobs``.
        agent_mask: ``[N, T]`` bool, True on the tokens the policy sampled, where the env wrote tokens of its own
            (a multi-turn env: a tool's output, a user's reply); ``None`` when every response token is the
            policy's (``response_mask``).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    env_rewards: torch.Tensor
    terminated: torch.Tensor
    completions: list[str]
    reward_components: dict[str, np.ndarray]
    num_steps: int
    logp: torch.Tensor | None = None
    values: torch.Tensor | None = None
    agent_mask: torch.Tensor | None = None


@torch.no_grad()
def generate_episodes(
    model: nn.Module,
    env: Any,
    sampler: LogitsProcessor,
    *,
    prompt_indices: np.ndarray | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    on_step: Callable[[int, dict], bool] | None = None,
    record_logprobs: bool = False,
    all_done: Callable[[bool], bool] | None = None,
) -> Episodes | None:
    """Run one synchronised batch of ``env.num_envs`` episodes with KV-cached batched sampling.

    Args:
        model: the ``ActorCriticLM`` policy.
        env: a textgym vector env in ``AutoresetMode.DISABLED``.
        sampler: the token distribution (also applied with ``deterministic``, which takes its argmax).
        prompt_indices: the prompt of each slot (``None``: the env draws them).
        seed: passed to ``env.reset`` (only the first rollout of a run needs it).
        generator: torch RNG for sampling.
        deterministic: greedy decoding.
        autocast: context-manager factory for the forwards.
        on_step: called after each env step with (number of slots that took a token, the step's locals);
            returning ``False`` aborts the rollout, which then returns ``None`` (SB3's callback protocol).
        record_logprobs: keep each sampled token's log-prob and the value before it (``Episodes.logp`` /
            ``Episodes.values``): one ``[N, V]`` log-softmax per step instead of a teacher-forced pass later.
        all_done: ``all_done(done_here) -> bool``, asked before stopping: an FSDP-sharded policy gathers its
            weights with the other ranks on every forward, so the rollout stops only once every rank is done
            (``DistributedContext.all_done``); ``None``: stop when this env's episodes are.

    Returns:
        The finished :class:`Episodes` (or ``None`` if ``on_step`` aborted).
    """
    num_slots, P = env.num_envs, env.max_prompt_tokens
    device = next(model.parameters()).device
    options = {"prompt_indices": np.asarray(prompt_indices)} if prompt_indices is not None else None
    obs, _ = env.reset(seed=seed, options=options)
    obs = split_flat_observation(obs)  # an observation="flat" env: the same ids and mask
    prompt_ids, prompt_mask, _, _ = layout_to_sequences(obs["input_ids"], obs["attention_mask"], P)
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.long().to(device)
    # The model never sees the columns that are padding in every slot (exact: positions come from the mask).
    first = first_used_column(prompt_mask)
    with autocast():
        policy = CachedDecoder(model, prompt_ids[:, first:], prompt_mask[:, first:])
        masker = CachedDecoder(sampler.nlpo.model, prompt_ids[:, first:], prompt_mask[:, first:]) if sampler.nlpo is not None else None
    T = env.max_new_tokens
    env_rewards = np.zeros((num_slots, T), dtype=np.float32)
    done = np.zeros(num_slots, dtype=bool)
    completions = [""] * num_slots
    components: dict[str, np.ndarray] = {}
    next_position = prompt_mask.sum(dim=1)  # position id of the next token of each slot
    attention_mask = prompt_mask[:, first:]
    # Response tokens so far per slot: the column the next agent token lands in. In a multi-turn env a step can
    # add the env's tokens after the agent's (the observation grows by 1 + k), so columns and steps part ways.
    length = np.zeros(num_slots, dtype=np.int64)
    agent_mask = np.zeros((num_slots, T), dtype=bool)
    # Kept on the model's device while sampling and moved to the CPU once at the end (no copy per step).
    logp = torch.zeros(num_slots, T, device=device) if record_logprobs else None
    values = torch.zeros(num_slots, T, device=device) if record_logprobs else None
    step = 0
    for step in range(T):
        mask_logits = sampler.nlpo.mask_logits(masker.hidden) if masker is not None else None
        logits = sampler.process(model_logits(model, policy.hidden), mask_logits)
        tokens = logits.argmax(dim=-1) if deterministic else sample_tokens(logits, generator=generator)
        active = ~done
        slots, columns = np.flatnonzero(active), length[active]
        if record_logprobs:  # the distribution the token was just drawn from: the update's pi_old
            at = (torch.as_tensor(slots, device=device), torch.as_tensor(columns, device=device))
            logp[at] = torch.log_softmax(logits, dim=-1).gather(-1, tokens[:, None]).squeeze(-1).float()[at[0]]
            values[at] = policy.values.float()[at[0]]
        obs, rewards, terminated, truncated, infos = env.step(tokens.cpu().numpy().astype(np.int64))
        env_rewards[slots, columns] = rewards[active]  # on the agent's token, the one that ended the turn
        agent_mask[slots, columns] = True
        _collect_infos(infos, completions, components, num_slots)
        done = np.asarray(terminated | truncated, dtype=bool)
        if on_step is not None and on_step(int(active.sum()), locals()) is False:
            return None
        if all_done(bool(done.all())) if all_done is not None else done.all():
            break
        # The agent's token, then whatever the env appended (0 tokens outside multi-turn turns).
        grown = np.asarray(split_flat_observation(obs)["attention_mask"])[:, P:].sum(axis=1) - length
        counts = np.where(active, grown, 1)  # a finished slot keeps stepping its last token (never read)
        with autocast():
            if (counts == 1).all():
                attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
                policy.step(tokens, attention_mask, next_position)
                if masker is not None:
                    masker.step(tokens, attention_mask, next_position)
            else:
                block, block_mask = env_block(obs, P, length, counts, active, tokens, attention_mask.device)
                attention_mask = torch.cat([attention_mask, block_mask], dim=1)
                counts_t = torch.as_tensor(counts, device=attention_mask.device)
                policy.extend(block, counts_t, attention_mask, next_position)
                if masker is not None:
                    masker.extend(block, counts_t, attention_mask, next_position)
        next_position = next_position + torch.as_tensor(counts, device=next_position.device)
        length = length + np.where(active, grown, 0)
    obs = split_flat_observation(obs)
    _, _, response_ids, response_mask = layout_to_sequences(obs["input_ids"], obs["attention_mask"], P)
    if record_logprobs:
        logp, values = logp.cpu() * response_mask, values.cpu() * response_mask
    agent = torch.from_numpy(agent_mask) & response_mask
    return Episodes(
        prompt_ids=prompt_ids.cpu(),
        prompt_mask=prompt_mask.bool().cpu(),
        response_ids=response_ids,
        response_mask=response_mask,
        env_rewards=torch.from_numpy(env_rewards),
        terminated=torch.from_numpy(np.asarray(terminated, dtype=bool)),
        completions=completions,
        reward_components=components,
        num_steps=step + 1,
        logp=logp,
        values=values,
        agent_mask=None if torch.equal(agent, response_mask) else agent,
    )


@torch.no_grad()
def next_tokens(model: nn.Module, sampler: LogitsProcessor, observation: dict, generator: torch.Generator | None,
                deterministic: bool, autocast: Callable[[], Any] = contextlib.nullcontext) -> np.ndarray:
    """The next token of each observation (``TokenPPO.predict``): int64 ``[N]``, or a scalar for one ``[L]``
    observation. ``observation`` is textgym's dict (floats from SB3 wrappers are accepted: ids are exact below
    2**24); no KV cache, one full forward."""
    if not isinstance(observation, dict) or not {"input_ids", "attention_mask"} <= set(observation):
        raise TypeError("observation must be textgym's dict with 'input_ids' and 'attention_mask' (see docs/design.md).")
    device = next(model.parameters()).device
    ids, mask = (torch.as_tensor(np.asarray(observation[k]), device=device) for k in ("input_ids", "attention_mask"))
    single = ids.ndim == 1
    ids, mask = (ids[None], mask[None]) if single else (ids, mask)
    ids, mask = ids.round().long(), mask.round().long()  # SB3 may have cast the ids to float32 (exact < 2**24)
    if (mask.sum(1) == 0).any():
        raise ValueError("An observation has an all-zero attention_mask: reset the env before predicting.")
    last = mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)  # index of each row's last real token
    rows, positions = torch.arange(ids.shape[0], device=device), position_ids_from_mask(mask)
    with autocast():
        hidden = model(input_ids=ids, attention_mask=mask, position_ids=positions).hidden[rows, last]
        mask_logits = None
        if sampler.nlpo is not None:
            mask_hidden = sampler.nlpo.model(input_ids=ids, attention_mask=mask, position_ids=positions).hidden[rows, last]
            mask_logits = sampler.nlpo.mask_logits(mask_hidden)
    logits = sampler.process(model_logits(model, hidden), mask_logits)
    tokens = logits.argmax(-1) if deterministic else sample_tokens(logits, generator=generator)
    actions = tokens.cpu().numpy().astype(np.int64)
    return actions[0] if single else actions


def model_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary logits of the last position only (``[N, V]``, float32): one row per slot per step."""
    return model.lm_head(hidden).float()


def _collect_infos(infos: dict, completions: list[str], components: dict[str, np.ndarray], num_slots: int) -> None:
    if "completion" in infos:
        for i in np.flatnonzero(infos.get("_completion", np.ones(num_slots, dtype=bool))):
            completions[i] = infos["completion"][i]
    if "reward_components" in infos:
        comps = infos["reward_components"]
        for name, values in comps.items():
            if name.startswith("_"):
                continue
            where = comps.get("_" + name, np.ones(num_slots, dtype=bool))
            store = components.setdefault(name, np.full(num_slots, np.nan))
            store[where] = np.asarray(values, dtype=np.float64)[where]
