"""``TokenPPO``'s persistence (safetensors + JSON, no pickle), ``predict`` and ``evaluate``."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np
import torch

from agents.models import position_ids_from_mask
from agents.ppo.integrity import DIGEST_KEY, check_saved_state, file_digests, verify_file_digests

#: Constructor arguments written to ``token_ppo.json`` (the policy and env are saved separately).
SAVED_HYPERPARAMS = (
    "learning_rate", "n_epochs", "batch_size", "gradient_accumulation_steps", "clip_range", "clip_range_vf",
    "vf_coef", "ent_coef", "max_grad_norm", "gamma", "gae_lambda", "normalize_advantage", "target_kl", "kl_coef",
    "kl_target", "kl_estimator", "baseline", "group_size", "temperature", "top_k", "top_p", "missing_eos_penalty",
    "nlpo_top_p", "nlpo_min_tokens", "nlpo_update_interval", "lora", "bf16", "gradient_checkpointing",
    "logprob_chunk_size", "old_logprobs", "max_consecutive_nonfinite", "num_envs", "env_kwargs", "policy_kwargs", "seed",
    "verbose", "tensorboard_log",
)
STATE_FILE = "token_ppo.json"
POLICY_DIR = "policy"


def _jsonable(name: str, value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "to_dict"):  # peft.LoraConfig
            return _jsonable(name, {k: (sorted(v) if isinstance(v, set) else v) for k, v in value.to_dict().items()})
        warnings.warn(f"TokenPPO.save: hyperparameter {name}={value!r:.60} is not JSON-serialisable; saved as null.", stacklevel=4)
        return None


def save(algo: Any, path: str) -> None:
    path = os.fspath(path)
    if path.endswith(".zip"):  # SB3's convention (CheckpointCallback names its saves *.zip): a real archive
        _save_zip(algo, path)
        return
    from agents.ppo.lora import ADAPTER_DIR, has_lora, merged_copy, save_adapter

    os.makedirs(path, exist_ok=True)
    lora = has_lora(algo.policy)
    policy = merged_copy(algo.policy) if lora else algo.policy
    # The env's tokenizer goes with the weights, so AutoTokenizer and transformers.pipeline load policy/ alone.
    tokenizer = getattr(algo.env.unwrapped, "tokenizer", None)
    tokenizer = tokenizer if callable(getattr(tokenizer, "save_pretrained", None)) else None
    policy.save_pretrained(os.path.join(path, POLICY_DIR), tokenizer=tokenizer)
    if lora:  # also as a PEFT adapter over the pre-LoRA model (peft.PeftModel.from_pretrained(base, path/adapter))
        save_adapter(algo.policy, os.path.join(path, ADAPTER_DIR), getattr(algo, "base_model_path", None))
    spec = getattr(algo.env.unwrapped, "spec", None) or getattr(algo.env, "spec", None)
    state = {
        "format": "textgym.TokenPPO/1",
        "hyperparams": {k: _jsonable(k, v) for k, v in algo.hyperparams.items()},
        "env_id": getattr(spec, "id", None),
        "kl_coef_now": algo.kl_controller.value,
        "num_timesteps": algo.num_timesteps,
        "iteration": algo.iteration,
        "lora_merged": has_lora(algo.policy),
        # The policy files were written above: their sums let load() notice a file changed on disk since.
        DIGEST_KEY: {f"{POLICY_DIR}/{name}": digest for name, digest in file_digests(os.path.join(path, POLICY_DIR)).items()},
    }
    with open(os.path.join(path, STATE_FILE), "w") as f:
        json.dump(state, f, indent=2)


def _save_zip(algo: Any, path: str) -> None:
    """``save`` into a temporary directory, then zip it (stored, not compressed: weights do not compress) to
    ``path`` atomically; the archive holds the same files as a ``save`` directory."""
    import tempfile
    import zipfile

    if os.path.isdir(path):
        raise IsADirectoryError(
            f"TokenPPO.save({path!r}): a directory of that name exists (a save from before .zip meant an archive); "
            "TokenPPO.load still reads it. Move it away or save under another name: nothing was overwritten."
        )
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".tokenppo-") as tmp:
        save(algo, os.path.join(tmp, "saved"))
        partial = os.path.join(tmp, "saved.zip")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for root, _, files in os.walk(os.path.join(tmp, "saved")):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    archive.write(full, os.path.relpath(full, os.path.join(tmp, "saved")))
        os.replace(partial, path)


def load(cls: type, path: str, env: Any, device: Any, overrides: dict, verify: bool = True) -> Any:
    """``TokenPPO.load`` of a directory or a ``.zip`` archive of one; ``verify``: check the policy files against the
    sha256 sums in ``token_ppo.json``."""
    import zipfile

    path = os.fspath(path)
    if not os.path.exists(path) and os.path.isfile(path + ".zip"):
        path += ".zip"  # as SB3's load does: the extension is optional
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="tokenppo-") as tmp:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(tmp)
            return _load_dir(cls, tmp, env, device, overrides, verify)
    return _load_dir(cls, path, env, device, overrides, verify)


def _load_dir(cls: type, path: str, env: Any, device: Any, overrides: dict, verify: bool) -> Any:
    from agents.models import ActorCriticLM

    state_file = os.path.join(path, STATE_FILE)
    if not os.path.isfile(state_file):
        raise FileNotFoundError(f"{path!r} holds no {STATE_FILE}: it was not written by TokenPPO.save(path).")
    with open(state_file) as f:
        state = json.load(f)
    check_saved_state(state_file, state, cls)  # a hand-edited type: CheckpointError naming the file and the key
    hyperparams = dict(state["hyperparams"])
    if state.get("lora_merged") and "lora" not in overrides:
        # The adapters were merged into the saved weights; fresh adapters start from them (and the reference
        # becomes the saved policy).
        hyperparams["lora"] = hyperparams.get("lora") or True
    from agents.ppo.distributed import LAUNCH_OPTIONS  # how this process runs (distributed, fsdp): never saved

    unknown = set(overrides) - set(SAVED_HYPERPARAMS) - set(LAUNCH_OPTIONS)
    if unknown:
        raise TypeError(
            f"TokenPPO.load got unknown override(s) {sorted(unknown)}; accepted: {', '.join(SAVED_HYPERPARAMS + LAUNCH_OPTIONS)}."
        )
    hyperparams.update(overrides)
    if env is None:
        if state.get("env_id") is None:
            raise ValueError("The saved run has no env id (its env was not made from one): pass env=... to load().")
        env = state["env_id"]
    policy = ActorCriticLM.from_pretrained(os.path.join(path, POLICY_DIR))
    algo = cls(policy, env, device=device, **hyperparams)
    if "kl_coef" not in overrides:
        algo.kl_controller.value = float(state["kl_coef_now"])
    algo.num_timesteps, algo.iteration = int(state["num_timesteps"]), int(state["iteration"])
    if verify:
        verify_file_digests(path, state.get(DIGEST_KEY), STATE_FILE)
    return algo


def predict(algo: Any, observation: dict, deterministic: bool) -> tuple[np.ndarray, None]:
    if not isinstance(observation, dict) or not {"input_ids", "attention_mask"} <= set(observation):
        raise TypeError("observation must be textgym's dict with 'input_ids' and 'attention_mask' (see docs/design.md).")
    ids = torch.as_tensor(np.asarray(observation["input_ids"]), device=algo.device)
    mask = torch.as_tensor(np.asarray(observation["attention_mask"]), device=algo.device)
    single = ids.ndim == 1
    ids, mask = (ids[None], mask[None]) if single else (ids, mask)
    ids, mask = ids.round().long(), mask.round().long()  # SB3 may have cast the ids to float32 (exact < 2**24)
    if (mask.sum(1) == 0).any():
        raise ValueError("An observation has an all-zero attention_mask: reset the env before predicting.")
    last = mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)  # index of each row's last real token
    rows = torch.arange(ids.shape[0], device=algo.device)
    with algo._autocast():
        hidden = algo.policy(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).hidden[rows, last]
        mask_logits = None
        if algo.nlpo is not None:
            mh = algo.nlpo.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).hidden[rows, last]
            mask_logits = algo.nlpo.model.lm_head(mh).float()
    from agents.distributions import sample_tokens

    logits = algo.sampler.process(algo.policy.lm_head(hidden).float(), mask_logits)
    tokens = logits.argmax(-1) if deterministic else sample_tokens(logits, generator=algo.generator)
    actions = tokens.cpu().numpy().astype(np.int64)
    return (actions[0] if single else actions), None


def evaluate(algo: Any, env: Any, num_episodes: int | None, deterministic: bool) -> dict[str, float]:
    from agents.ppo.rollout import generate_episodes
    from agents.ppo.setup import make_env

    env = algo.env if env is None else make_env(env, algo.num_envs, None, warn=False)
    base = env.unwrapped
    n_slots, n_prompts = base.num_envs, len(base.prompt_source)
    num_episodes = n_slots if num_episodes is None else int(num_episodes)
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}.")
    was_training = algo.policy.training
    algo.policy.eval()
    scores, lengths, eos, components = [], [], [], {}
    order = np.arange(num_episodes) % n_prompts  # prompts in order: the same episodes every evaluation
    for start in range(0, num_episodes, n_slots):
        chunk = order[start : start + n_slots]
        indices = np.resize(chunk, n_slots)
        ep = generate_episodes(algo.policy, env, algo.sampler, prompt_indices=indices, generator=algo.generator,
                               deterministic=deterministic, autocast=algo._autocast)
        keep = slice(0, chunk.size)
        scores.append((ep.env_rewards * ep.response_mask).sum(1)[keep])
        lengths.append(ep.response_mask.sum(1)[keep].float())
        eos.append(ep.terminated[keep].float())
        for name, values in ep.reward_components.items():
            components.setdefault(name, []).append(values[keep])
    algo.policy.train(was_training)
    scores_t = torch.cat(scores)
    result = {
        "reward_mean": float(scores_t.mean()),
        "reward_std": float(scores_t.std()) if scores_t.numel() > 1 else 0.0,
        "ep_len_mean": float(torch.cat(lengths).mean()),
        "eos_rate": float(torch.cat(eos).mean()),
        "num_episodes": num_episodes,
    }
    result.update({f"reward_{k}": float(np.nanmean(np.concatenate(v))) for k, v in components.items()})
    return result
