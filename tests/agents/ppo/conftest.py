"""Fixtures: a tiny stand-in for textgym's vector env (same contract, docs/design.md) and tiny models."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

VOCAB, PAD, EOS, TARGET = 16, 0, 1, 5


class ToyTokenizer:
    pad_token_id, eos_token_id, vocab_size = PAD, EOS, VOCAB

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(int(i)) for i in ids if not (skip_special_tokens and i in (PAD, EOS)))

    def encode(self, text):
        return [int(t) for t in text.split()]


def count_target(prompts, completions, **fields):
    """Known optimum: every one of the T tokens is TARGET (reward 1.0)."""
    return [c.split().count(str(TARGET)) / ToyVectorEnv.T for c in completions]


class ToyVectorEnv(VectorEnv):
    """The textgym vector-env contract in 80 lines: left-padded prompts, token t at P + t, DISABLED autoreset."""

    P, T = 4, 4

    def __init__(self, num_envs=8, reward=count_target, autoreset_mode=AutoresetMode.DISABLED, allowed=None):
        self.num_envs, self.reward, self.autoreset_mode = num_envs, reward, AutoresetMode(autoreset_mode)
        self.tokenizer = ToyTokenizer()
        self.prompt_source = [{"prompt": " ".join(str(2 + (i + j) % 13) for j in range(1 + i % 4))} for i in range(12)]
        self.max_prompt_tokens, self.max_new_tokens = self.P, self.T
        box = spaces.Box(0, VOCAB - 1, (self.P + self.T,), np.int64)
        self.single_observation_space = spaces.Dict({"input_ids": box, "attention_mask": spaces.Box(0, 1, (self.P + self.T,), np.int64)})
        self.single_action_space = spaces.Discrete(VOCAB)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.allowed = allowed
        self.reset_calls = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        self.reset_calls.append(options)
        idx = options.get("prompt_indices")
        idx = self.np_random.integers(0, len(self.prompt_source), self.num_envs) if idx is None else np.asarray(idx)
        self.ids = np.full((self.num_envs, self.P + self.T), PAD, np.int64)
        self.mask = np.zeros_like(self.ids)
        for s, i in enumerate(idx):
            toks = self.tokenizer.encode(self.prompt_source[i]["prompt"])
            self.ids[s, self.P - len(toks) : self.P], self.mask[s, self.P - len(toks) : self.P] = toks, 1
        self.idx, self.n = idx, np.zeros(self.num_envs, np.int64)
        self.term, self.trunc = np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool)
        return {"input_ids": self.ids.copy(), "attention_mask": self.mask.copy()}, {}

    def step(self, actions):
        actions = np.asarray(actions)
        assert actions.shape == (self.num_envs,) and actions.dtype == np.int64
        active = ~(self.term | self.trunc)
        rewards = np.zeros(self.num_envs)
        s = np.flatnonzero(active)
        self.ids[s, self.P + self.n[s]], self.mask[s, self.P + self.n[s]] = actions[s], 1
        self.n[s] += 1
        self.term[s] = actions[s] == EOS
        self.trunc[s] = ~self.term[s] & (self.n[s] >= self.T)
        fin = s[self.term[s] | self.trunc[s]]
        infos = {}
        if fin.size:
            comps = [self.tokenizer.decode(self.ids[f, self.P : self.P + self.n[f]]) for f in fin]
            rewards[fin] = self.reward([self.prompt_source[self.idx[f]]["prompt"] for f in fin], comps)
            completion = np.full(self.num_envs, None, object)
            completion[fin] = comps
            infos = {"completion": completion, "_completion": np.isin(np.arange(self.num_envs), fin)}
        return {"input_ids": self.ids.copy(), "attention_mask": self.mask.copy()}, rewards, self.term.copy(), self.trunc.copy(), infos

    def action_masks(self):
        mask = np.ones((self.num_envs, VOCAB), bool)
        if self.allowed is not None:
            mask[:] = False
            mask[:, self.allowed] = True
        return mask


@pytest.fixture
def toy_env():
    return ToyVectorEnv(num_envs=8)


def tiny_model(seed=0, critic="shared", vocab_size=VOCAB, pad_token_id=PAD, eos_token_id=EOS):
    """The project's "tiny" GPT-2 (2 layers, 64 wide) + value head, by default over the toy vocabulary."""
    from agents.models import ActorCriticLM, default_model_config

    import torch

    config = default_model_config(vocab_size=vocab_size, pad_token_id=pad_token_id, eos_token_id=eos_token_id, size="tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ActorCriticLM.from_config(config, critic=critic)
