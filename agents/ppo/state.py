"""``TrainingState``: everything of a TokenPPO run that changes while it trains, behind one interface.

The modules (the policy, the frozen reference, NLPO's lagged copy), the optimizer, the controllers (KL
coefficient, non-finite streak, the sampling settings), every random stream (Python, numpy, torch, the run's
token ``generator`` and ``np_random``, the env's) and the counters. ``state_dict()`` returns it as JSON values
plus named tensors, ``load_state_dict`` puts it back: a checkpoint (``agents.ppo.checkpoint``) is those two
written as ``training_state.json`` and ``training_state.safetensors``, and nothing else reaches into the run.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

#: The checkpoint names of the modules, in the order they are saved.
MODULE_NAMES = ("policy", "reference", "nlpo")


@dataclass
class TrainingState:
    """What a run needs to continue exactly where it stopped.

    Attributes:
        policy: the ``ActorCriticLM`` being trained (LoRA adapters unmerged).
        reference: the frozen KL reference, or ``None`` (no KL penalty, or LoRA: the policy with adapters off).
        nlpo: NLPO's ``LaggedMaskPolicy``, or ``None``.
        optimizer: the AdamW over the policy's trainable parameters.
        kl_controller: the KL coefficient's controller (fixed or adaptive).
        nonfinite_guard: the non-finite guard (its streak of skipped updates).
        sampler: the token distribution's settings (temperature, top-k, top-p).
        generator: torch RNG for token sampling.
        np_random: numpy RNG for prompts and minibatch order.
        env: the vector env (its own RNG draws prompts when none are given).
        num_timesteps: tokens generated so far (env transitions, summed over slots and ranks).
        iteration: completed PPO updates.
        first_reset: the next rollout is the run's first: it seeds the env.
    """

    policy: nn.Module
    reference: nn.Module | None
    nlpo: Any
    optimizer: torch.optim.Optimizer
    kl_controller: Any
    nonfinite_guard: Any
    sampler: Any
    generator: torch.Generator
    np_random: np.random.Generator
    env: Any
    num_timesteps: int = 0
    iteration: int = 0
    first_reset: bool = True

    def modules(self) -> dict[str, nn.Module]:
        """Checkpoint name -> module, for the modules this run has."""
        found = {"policy": self.policy, "reference": self.reference, "nlpo": self.nlpo.model if self.nlpo else None}
        return {name: found[name] for name in MODULE_NAMES if found[name] is not None}

    # ------------------------------------------------------------------ the whole state
    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(json_part, tensors)``: the checkpoint's ``training_state.json`` (less its format and digests) and
        ``training_state.safetensors``."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self.modules().items():
            # clone(): tied weights share storage, which safetensors refuses; cpu(): one file whatever the device.
            tensors.update({f"{prefix}/{k}": v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()})
        optimizer_json, optimizer_tensors = _split_optimizer_state(self.optimizer.state_dict())
        tensors.update(optimizer_tensors)
        rng_json, rng_tensors = self.rng_state()
        tensors.update(rng_tensors)
        state = {
            "num_timesteps": self.num_timesteps,
            "iteration": self.iteration,
            "first_reset": self.first_reset,
            "kl_controller": self.kl_controller.state_dict(),
            "sampler": self.sampler.state_dict(),
            "nonfinite": self.nonfinite_guard.state_dict(),
            "optimizer": optimizer_json,
            "rng": rng_json,
            "modules": sorted(self.modules()),
        }
        return state, tensors

    def load_state_dict(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Put back what :meth:`state_dict` returned (a ``KeyError`` / ``RuntimeError`` when it does not fit)."""
        for prefix, module in self.modules().items():
            weights = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + "/")}
            if not weights:
                raise KeyError(f"no {prefix!r} weights")
            module.load_state_dict(weights, strict=True)
        self.optimizer.load_state_dict(_join_optimizer_state(state["optimizer"], tensors))
        self.load_rng_state(state["rng"], tensors)
        self.num_timesteps, self.iteration = int(state["num_timesteps"]), int(state["iteration"])
        self.first_reset = bool(state["first_reset"])
        self.kl_controller.load_state_dict(state["kl_controller"])
        self.sampler.load_state_dict(state["sampler"])
        self.nonfinite_guard.load_state_dict(state["nonfinite"])

    # ------------------------------------------------------------------ random streams
    def rng_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Every random state the run draws from: ``(json_part, tensor_part)``. Python's ``random``, numpy's
        global generator, torch's global CPU (and CUDA) generators, ``generator`` (token sampling),
        ``np_random`` (prompts, minibatch order) and the env's (its own prompt draws; a reward may also use the
        global generators)."""
        np_state = np.random.get_state(legacy=False)
        env_json = _env_rng_state(self.env.unwrapped)
        json_part = {
            "python": _jsonable_python_state(random.getstate()),
            "numpy_global": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
            "np_random": self.np_random.bit_generator.state,
            **env_json,
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_initialized() else 0,
        }
        tensors = {"rng/torch_cpu": torch.get_rng_state(), "rng/generator": self.generator.get_state()}
        for i in range(json_part["cuda_devices"]):
            tensors[f"rng/torch_cuda/{i}"] = torch.cuda.get_rng_state(i)
        return json_part, tensors

    def load_rng_state(self, json_part: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Put back what :meth:`rng_state` recorded."""
        version, internal, gauss = json_part["python"]
        random.setstate((version, tuple(internal), gauss))
        g = json_part["numpy_global"]
        np.random.set_state({**g, "state": {"key": np.asarray(g["state"]["key"], dtype=np.uint32), "pos": g["state"]["pos"]}})
        self.np_random.bit_generator.state = json_part["np_random"]
        base = self.env.unwrapped
        if json_part["env_np_random"] is not None:
            base.np_random.bit_generator.state = json_part["env_np_random"]  # the property creates one if needed
            if hasattr(base, "_np_random_seed"):
                base._np_random_seed = json_part["env_np_random_seed"]
        torch.set_rng_state(tensors["rng/torch_cpu"])
        self.generator.set_state(tensors["rng/generator"])
        for i in range(min(json_part.get("cuda_devices", 0), torch.cuda.device_count() if torch.cuda.is_available() else 0)):
            torch.cuda.set_rng_state(tensors[f"rng/torch_cuda/{i}"], i)

    def reseed_streams(self, seed: int) -> None:
        """Give the run's own streams (``generator``, ``np_random``) a new seed (a distributed resume: each rank
        takes its own streams again)."""
        self.generator.manual_seed(seed)
        self.np_random = np.random.default_rng(seed)

    @contextlib.contextmanager
    def preserved_rng(self) -> Iterator[None]:
        """Run the body (e.g. sample generations shown to the user) without moving any of the run's random
        states, so that showing samples before training changes neither the run nor a resumed one."""
        json_part, tensors = self.rng_state()
        try:
            yield
        finally:
            self.load_rng_state(json_part, tensors)


def _env_rng_state(base: Any) -> dict[str, Any]:
    # Gymnasium's public np_random / np_random_seed create a generator when the env has none yet; reading the
    # attributes behind them records "none yet" without changing the env.
    env_rng = getattr(base, "_np_random", None)
    seed = getattr(base, "_np_random_seed", None)
    return {"env_np_random": env_rng.bit_generator.state if env_rng is not None else None,
            "env_np_random_seed": None if seed is None else int(seed)}


def _jsonable_python_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _split_optimizer_state(state_dict: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """``optimizer.state_dict()`` -> (JSON: param groups + non-tensor state, tensors named ``optimizer/<id>/<key>``)."""
    tensors, per_param = {}, {}
    for pid, entry in state_dict["state"].items():
        json_entry = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{pid}/{key}"] = value.detach().cpu().clone().contiguous()
                json_entry[key] = {"tensor": f"optimizer/{pid}/{key}"}
            else:
                json_entry[key] = {"value": value}
        per_param[str(pid)] = json_entry
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return {"state": per_param, "param_groups": groups}, tensors


def _join_optimizer_state(json_part: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {
        int(pid): {k: (tensors[v["tensor"]] if "tensor" in v else v["value"]) for k, v in entry.items()}
        for pid, entry in json_part["state"].items()
    }
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in json_part["param_groups"]]
    return {"state": state, "param_groups": groups}


class StateAttribute:
    """An attribute of the object owning a :class:`TrainingState` (as ``owner.state``) that lives in the state:
    ``TokenPPO.policy`` reads and writes ``TokenPPO.state.policy``."""

    ALIASES = {"ref_policy": "reference", "_first_reset": "first_reset"}

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.ALIASES.get(name, name)

    def __get__(self, owner: Any, owner_type: type | None = None) -> Any:
        return self if owner is None else getattr(owner.state, self.name)

    def __set__(self, owner: Any, value: Any) -> None:
        setattr(owner.state, self.name, value)
