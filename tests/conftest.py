"""Shared fixtures. Everything here is built offline from what textgym ships or generates."""

from __future__ import annotations

import signal

import numpy as np
import pytest


def pytest_configure(config):
    # A shell starts a background job (`make test &`, `nohup`) with SIGINT ignored, and Python then leaves it
    # ignored: the Ctrl-C tests (and the subprocesses they start, which inherit the disposition) would see no
    # signal at all. Give the suite Python's usual Ctrl-C handler whatever launched it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tokenizer():
    from textgym.tokenizers import default_tokenizer

    return default_tokenizer()


def count_words(prompts, completions, **fields):
    """A TRL-style reward: plain function, batched, ignores fields it does not use."""
    return [float(len(c.split())) for c in completions]


@pytest.fixture
def small_prompts():
    return [
        {"prompt": "The movie was", "answer": "1"},
        {"prompt": "Q: 2 + 3 = ? A:", "answer": "5"},
        {"prompt": "Café au lait, s'il vous plaît:", "answer": "7"},
    ]


def run_episode(env, actions, **reset_kwargs):
    """Step `env` with `actions` until the episode ends; return (observations, rewards, last info, flags)."""
    obs, info = env.reset(**reset_kwargs)
    observations, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, info = env.step(np.int64(a))
        observations.append(obs)
        rewards.append(r)
        if term or trunc:
            return observations, rewards, info, (term, trunc)
    raise AssertionError("episode did not end")
