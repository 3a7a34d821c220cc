"""``textgym sft | eval | generate``: the commands that train a warm start or use a saved model (``textgym train``
is in :mod:`agents.commands`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from agents.evaluation import is_multi_turn
from agents.models import ActorCriticLM, build_default_model
from agents.ppo import TokenPPO
from agents.ppo.sft import supervised_warm_start
from textgym.config import load_config
from textgym.errors import UsageError
from textgym.evaluation import diversity_warnings, is_collapsed


def tokenizer_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The ``gym.make_vec`` argument for a config's top-level ``tokenizer`` (none when it names none)."""
    return {"tokenizer": config["tokenizer"]} if config.get("tokenizer") is not None else {}


def sample_generations(algo: TokenPPO, env: Any, prompt_indices: np.ndarray, deterministic: bool = False) -> list[dict]:
    """Complete the given prompts with the current policy: ``[{prompt, completion, reward}]``."""
    base = env.unwrapped
    ep = algo.generate(env, np.resize(np.asarray(prompt_indices), base.num_envs), deterministic=deterministic)
    rewards = (ep.env_rewards * ep.response_mask).sum(1)
    return [
        {"prompt": base.prompt_source[int(i)]["prompt"], "completion": ep.completions[j], "reward": float(rewards[j])}
        for j, i in enumerate(prompt_indices)
    ]


def sft(args: argparse.Namespace) -> dict[str, Any]:
    """``textgym sft``: supervised warm start on a task's demonstrations or a text file; saves a HF model dir."""
    env = gym.make_vec(args.env, num_envs=1, autoreset_mode=AutoresetMode.DISABLED)
    base = env.unwrapped
    replay_env = None
    if args.text_file:
        path = Path(args.text_file)
        if not path.is_file():
            raise SystemExit(f"textgym sft: --text-file {path} does not exist.")
        lines = [line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines()]
        # Language modelling on plain lines: each line's first word is the prompt, the rest its completion.
        records = [{"prompt": w[0], "completion": " " + w[1]} for w in lines if len(w) == 2]
        if not records:
            raise SystemExit(f"textgym sft: {path} has no line with at least two words to learn from.")
    else:
        records = base.prompt_source
        # A multi-turn task's demonstrations are replayed through a single env of it (the agent's tokens trained).
        replay_env = gym.make(args.env) if is_multi_turn(env) else None
    model = build_default_model(tokenizer=base.tokenizer, seed=args.seed) if args.model == "default" else ActorCriticLM.from_pretrained(args.model)
    options = {k: v for k in ("steps", "learning_rate", "batch_size") if (v := getattr(args, k)) is not None}
    losses = supervised_warm_start(
        model, base.tokenizer, records, max_prompt_tokens=base.max_prompt_tokens, max_new_tokens=base.max_new_tokens,
        seed=args.seed, replay_env=replay_env, **options,
    )
    model.save_pretrained(args.output_dir, tokenizer=base.tokenizer)
    window = max(1, len(losses) // 10)
    return {"output_dir": args.output_dir, "loss_first": float(np.mean(losses[:window])), "loss_last": float(np.mean(losses[-window:]))}


def _load_for_inference(model_or_run: str, env_id: str | None, num_envs: int, split: str = "test", prompts: Any = None,
                        max_new_tokens: int | None = None):
    """(TokenPPO, env, the run's config or ``{}``) for a run directory or a model directory; ``max_new_tokens``
    overrides the env's new-token limit."""
    path = Path(model_or_run)
    if not path.exists():
        raise UsageError(f"{model_or_run} does not exist: pass a run directory made by `textgym train` or a local model directory.")
    config = {}
    if (path / "config.yaml").is_file() and (path / "final").is_dir():
        config = load_config(path / "config.yaml")
        path = path / "final"
    if (path / "token_ppo.json").is_file():  # a TokenPPO.save directory: its model is in policy/
        path = path / "policy"
    env_id = env_id or config.get("env", "textgym/Sentiment-v0")
    env_kwargs = {**tokenizer_kwargs(config), **config.get("env_kwargs", {})}  # the run's tokenizer, if it set one
    if prompts is not None:
        env_kwargs.update(prompts=prompts, reward=lambda prompts, completions, **kw: [0.0] * len(completions))
    if max_new_tokens is not None:
        env_kwargs["max_new_tokens"] = max_new_tokens
    env = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode=AutoresetMode.DISABLED, split=split, **env_kwargs)
    if prompts is not None and is_multi_turn(env):
        raise UsageError(
            f"{env_id} is a multi-turn env: its turns read each record's own fields (a question's answer, a hidden "
            "number), which a bare --prompt does not have. Leave out the prompts to complete the env's test prompts."
        )
    model = ActorCriticLM.from_pretrained(path)
    # A run is evaluated with the sampling settings it trained with (its top-k / top-p / temperature).
    sampling = {k: v for k, v in config.get("ppo", {}).items() if k in ("temperature", "top_k", "top_p")}
    algo = TokenPPO(model, env, kl_coef=0.0, device=config.get("device", "auto"), seed=0, **sampling)
    return algo, env, config


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """``textgym eval``: reward next to its diversity (distinct-n, self-BLEU, distinct completions), EOS rate, length,
    perplexity and KL under the reference; for a run directory, the warm start (the run's reference) is scored the
    same way as the "before" column, and collapse or drift is said in plain words (also under ``"warnings"``)."""
    from agents.evaluation import evaluate_policy_text

    num_envs = min(args.episodes, 64)
    algo, env, config = _load_for_inference(args.model, args.env, num_envs, split=args.split)
    reference = args.reference
    if reference is None and (Path(args.model) / "reference").is_dir():
        reference = Path(args.model) / "reference"  # a run keeps its warm-start model as the reference
    ref_model = ActorCriticLM.from_pretrained(reference) if reference else None
    torch.manual_seed(args.seed)
    algo.generator.manual_seed(args.seed)
    result = evaluate_policy_text(algo, env, args.episodes, deterministic=args.greedy, reference=ref_model)
    before = None
    if ref_model is not None and not getattr(args, "no_compare", False):
        ref_algo = TokenPPO(ActorCriticLM.from_pretrained(reference), env, kl_coef=0.0, device=config.get("device", "auto"), seed=0)
        ref_algo.sampler.load_state_dict(algo.sampler.state_dict())
        ref_algo.generator.manual_seed(args.seed)
        before = evaluate_policy_text(ref_algo, env, args.episodes, deterministic=args.greedy, reference=ref_model)
        result["reference"] = before
    mode = "greedy" if args.greedy else "sampled"
    result["warnings"] = diversity_warnings(result, before, label=f"{mode}: ")
    result["collapsed"] = is_collapsed(result)
    for warning in result["warnings"]:
        print(f"textgym eval: WARNING {warning}", file=sys.stderr)
    return result


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """``textgym generate``: sample completions for the given prompts (or an env's test prompts)."""
    prompts = [{"prompt": p} for p in args.prompts] or None
    num = len(prompts) if prompts else args.num
    algo, env, _ = _load_for_inference(args.model, args.env, num, prompts=prompts, max_new_tokens=args.max_new_tokens)
    if args.temperature is not None:
        algo.sampler.temperature = args.temperature
    if args.top_p is not None:
        algo.sampler.top_p = args.top_p
    torch.manual_seed(args.seed)
    algo.generator.manual_seed(args.seed)
    samples = sample_generations(algo, env, np.arange(num), deterministic=args.greedy)
    for s in samples:
        print(f"{s['prompt']}[{s['completion']}]")
    return None
