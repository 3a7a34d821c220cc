"""``TokenPPO.save`` / ``TokenPPO.load``: an export of a run for inference or fine-tuning (safetensors + JSON, no
pickle): ``policy/`` (a Hugging Face directory with the env's tokenizer), ``adapter/`` for a LoRA run and
``token_ppo.json`` (the hyperparameters of :class:`agents.ppo.config.TokenPPOConfig`, the env id, the KL
coefficient, the counters). A checkpoint (``agents.ppo.checkpoint``) is an export plus the training state."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from torch import nn

from agents.ppo.config import LAUNCH_OPTIONS, TokenPPOConfig
from agents.ppo.integrity import DIGEST_KEY, check_saved_state, file_digests, verify_file_digests

STATE_FILE = "token_ppo.json"
POLICY_DIR = "policy"


def save_export(path: str, policy: nn.Module, env: Any, config: TokenPPOConfig, *, kl_coef_now: float,
                num_timesteps: int, iteration: int, base_model_path: str | None = None) -> None:
    """Write the export of ``policy`` (trained on ``env`` with ``config``) to the directory ``path``, or to the zip
    archive ``path`` when it ends in ``.zip``."""
    path = os.fspath(path)
    args = (policy, env, config)
    counters = {"kl_coef_now": kl_coef_now, "num_timesteps": num_timesteps, "iteration": iteration,
                "base_model_path": base_model_path}
    if path.endswith(".zip"):  # SB3's convention (CheckpointCallback names its saves *.zip): a real archive
        _save_zip(path, lambda directory: save_export(directory, *args, **counters))
        return
    from agents.ppo.lora import ADAPTER_DIR, has_lora, merged_copy, save_adapter

    os.makedirs(path, exist_ok=True)
    lora = has_lora(policy)
    weights = merged_copy(policy) if lora else policy
    # The env's tokenizer goes with the weights, so AutoTokenizer and transformers.pipeline load policy/ alone.
    tokenizer = getattr(env.unwrapped, "tokenizer", None)
    tokenizer = tokenizer if callable(getattr(tokenizer, "save_pretrained", None)) else None
    weights.save_pretrained(os.path.join(path, POLICY_DIR), tokenizer=tokenizer)
    if lora:  # also as a PEFT adapter over the pre-LoRA model (peft.PeftModel.from_pretrained(base, path/adapter))
        save_adapter(policy, os.path.join(path, ADAPTER_DIR), base_model_path)
    spec = getattr(env.unwrapped, "spec", None) or getattr(env, "spec", None)
    state = {
        "format": "textgym.TokenPPO/1",
        "hyperparams": config.to_dict(),
        "env_id": getattr(spec, "id", None),
        "kl_coef_now": kl_coef_now,
        "num_timesteps": num_timesteps,
        "iteration": iteration,
        "lora_merged": lora,
        # The policy files were written above: their sums let load() notice a file changed on disk since.
        DIGEST_KEY: {f"{POLICY_DIR}/{name}": digest for name, digest in file_digests(os.path.join(path, POLICY_DIR)).items()},
    }
    with open(os.path.join(path, STATE_FILE), "w") as f:
        json.dump(state, f, indent=2)


def _save_zip(path: str, write: Any) -> None:
    """``write(directory)`` into a temporary directory, then zip it (stored, not compressed: weights do not compress) to
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
        write(os.path.join(tmp, "saved"))
        partial = os.path.join(tmp, "saved.zip")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for root, _, files in os.walk(os.path.join(tmp, "saved")):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    archive.write(full, os.path.relpath(full, os.path.join(tmp, "saved")))
        os.replace(partial, path)


@dataclass
class SavedRun:
    """What an export holds, read back: :meth:`TokenPPO.load` builds the algorithm from it.

    ``kl_coef_now`` is ``None`` when the caller overrode ``kl_coef`` (the override wins over the saved value).
    """

    policy: nn.Module
    env: Any
    config: TokenPPOConfig
    launch: dict[str, Any]
    kl_coef_now: float | None
    num_timesteps: int
    iteration: int


def read_export(path: str, env: Any, overrides: dict, verify: bool = True) -> SavedRun:
    """Read an export (a directory, or a ``.zip`` archive of one; as in SB3, ``"x"`` finds ``x.zip``).

    Args:
        path: what :func:`save_export` wrote.
        env: the env to train or act on; ``None``: the saved env id.
        overrides: hyperparameters (:class:`TokenPPOConfig` fields) and launch options that replace the saved ones.
        verify: check the policy files against the sha256 sums in ``token_ppo.json``.
    """
    import zipfile

    path = os.fspath(path)
    if not os.path.exists(path) and os.path.isfile(path + ".zip"):
        path += ".zip"  # as SB3's load does: the extension is optional
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="tokenppo-") as tmp:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(tmp)
            return _read_dir(tmp, env, overrides, verify)
    return _read_dir(path, env, overrides, verify)


def _read_dir(path: str, env: Any, overrides: dict, verify: bool) -> SavedRun:
    from agents.models import ActorCriticLM

    state_file = os.path.join(path, STATE_FILE)
    if not os.path.isfile(state_file):
        raise FileNotFoundError(f"{path!r} holds no {STATE_FILE}: it was not written by TokenPPO.save(path).")
    with open(state_file) as f:
        state = json.load(f)
    check_saved_state(state_file, state, TokenPPOConfig.defaults())  # a hand-edited type: CheckpointError naming the file and the key
    hyperparams = dict(state["hyperparams"])
    if state.get("lora_merged") and "lora" not in overrides:
        # The adapters were merged into the saved weights; fresh adapters start from them (and the reference
        # becomes the saved policy).
        hyperparams["lora"] = hyperparams.get("lora") or True
    accepted = TokenPPOConfig.field_names() + LAUNCH_OPTIONS  # launch options: how this process runs, never saved
    unknown = set(overrides) - set(accepted)
    if unknown:
        raise TypeError(f"TokenPPO.load got unknown override(s) {sorted(unknown)}; accepted: {', '.join(accepted)}.")
    hyperparams.update(overrides)
    if env is None:
        if state.get("env_id") is None:
            raise ValueError("The saved run has no env id (its env was not made from one): pass env=... to load().")
        env = state["env_id"]
    policy = ActorCriticLM.from_pretrained(os.path.join(path, POLICY_DIR))
    launch = {k: hyperparams.pop(k) for k in LAUNCH_OPTIONS if k in hyperparams}
    config = TokenPPOConfig.from_dict(hyperparams, what=f"TokenPPO.load({path!r})")
    if verify:
        verify_file_digests(path, state.get(DIGEST_KEY), STATE_FILE)
    return SavedRun(policy, env, config, launch, None if "kl_coef" in overrides else float(state["kl_coef_now"]),
                    int(state["num_timesteps"]), int(state["iteration"]))
