"""Shared set-up for the benchmark scripts: one model shape, one env, one timing rule, one table format.

Every script compares alternatives *in the same process and run* and prints ratios next to absolute numbers,
so machine noise moves both sides together. Timing rule: warm up once, then take the median of ``repeats``
timed calls (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np
import torch

#: Default benchmark shape (issue 8): batch 32, prompt 32, 64 new tokens, GPT-2 "small" (~5.3M params at 8000).
BATCH, PROMPT_TOKENS, NEW_TOKENS = 32, 32, 64
SYNTHETIC_VOCAB = 8000

_PROMPT_TEXT = (
    "The reviewer wrote a long and careful note about the new headphones, the battery, the case, the sound on "
    "trains and in quiet rooms, and what the price should have been for a product like this one. Then"
)


def setup_torch(threads: int = 2, seed: int = 0) -> None:
    """Pin the thread count (the benchmarks are written for a 2-core machine) and seed torch and numpy."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    warnings.filterwarnings("ignore", message=".*max_prompt_tokens.*")  # prompts are truncated to P on purpose
    # make_model(vocab_size=...) pads the vocabulary beyond the tokenizer's on purpose (the cost of a big one).
    warnings.filterwarnings("ignore", message=".*much larger than the tokenizer's.*")


def cheap_reward(prompts: list[str], completions: list[str], **fields: Any) -> list[float]:
    """A reward that costs nothing next to the model (the benchmarks measure the RL machinery, not a scorer)."""
    return [len(c) / 100.0 for c in completions]


def prompts(count: int = 64) -> list[dict]:
    """Prompt records long enough to fill ``PROMPT_TOKENS`` tokens after truncation (every slot has P tokens)."""
    return [{"prompt": f"{_PROMPT_TEXT} {i}."} for i in range(count)]


def env_kwargs(prompt_tokens: int = PROMPT_TOKENS, new_tokens: int = NEW_TOKENS, reward: Any = cheap_reward) -> dict:
    """``gym.make``/``gym.make_vec`` arguments of the benchmark env (custom prompts, cheap reward)."""
    return {"prompts": prompts(), "reward": reward, "max_prompt_tokens": prompt_tokens, "max_new_tokens": new_tokens}


def make_vec_env(num_envs: int, **kwargs: Any):
    """A textgym vector env in ``AutoresetMode.DISABLED`` (what TokenPPO runs on)."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    import textgym  # noqa: F401  (registers the ids)

    return gym.make_vec("textgym/Sentiment-v0", num_envs=num_envs, autoreset_mode=AutoresetMode.DISABLED,
                        **env_kwargs(**kwargs))


def make_model(vocab_size: int | None = None, size: str = "small", seed: int = 0):
    """The default GPT-2-shaped ``ActorCriticLM``; ``vocab_size`` pads the vocabulary beyond the tokenizer's
    4096 (the env then masks the extra ids), ``None`` keeps the tokenizer's."""
    from agents.models import ActorCriticLM, build_default_model, default_model_config

    model = build_default_model(size=size, seed=seed)
    if vocab_size is not None and vocab_size != model.vocab_size:
        cfg = model.config
        config = default_model_config(vocab_size, cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id, size=size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = ActorCriticLM.from_config(config)
    return model.eval()


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls; also the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def machine() -> str:
    """One line naming the machine and library versions, for the record."""
    import transformers

    cpu = platform.processor() or platform.machine()
    return (f"{cpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"transformers {transformers.__version__}, python {platform.python_version()}, "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A GitHub-markdown table (pastes straight into BENCHMARKS.md)."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    print(f"\n### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(fmt(v) for v in row) + " |")
    print(f"\n{machine()}\n", flush=True)


def parser(description: str, shape: Sequence[str] = ()) -> argparse.ArgumentParser:
    """An argument parser with the options every script shares.

    Args:
        description: the script's one-line purpose.
        shape: which of the common workload options to add: ``"batch"``, ``"prompt"``, ``"new_tokens"``,
            ``"vocab"`` (defaults: ``BATCH``, ``PROMPT_TOKENS``, ``NEW_TOKENS``, ``SYNTHETIC_VOCAB``).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test, not a measurement")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    defaults = {"batch": BATCH, "prompt": PROMPT_TOKENS, "new_tokens": NEW_TOKENS, "vocab": SYNTHETIC_VOCAB}
    for name in shape:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=defaults[name])
    return p
