"""Rollout throughput (issue 8, item 1): generated tokens per second for the same model and batch.

Compared, each at ``--batch`` slots x ``--new-tokens`` tokens after a ``--prompt``-token prompt:

* ``TokenPPO.collect_rollout``: KV-cached sampling that steps the textgym env, the reward, then the scoring
  pass (old log-probs, values, reference log-probs). Its generation part alone is shown too.
* ``lm.generate`` (Hugging Face, KV cache, sampling, exactly ``new_tokens`` tokens): the ceiling, no env, no RL.
* Stock SB3 ``PPO.collect_rollouts`` with ``agents.policies.TransformerPolicy`` on a ``DummyVecEnv`` of the same
  single envs, for the same number of transitions (with and without the policy's per-slot KV cache).
* Naive re-encoding: a sampling loop that runs the whole prefix through the model at every step.

Run: ``python -m benchmarks.rollout_throughput`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import torch

from benchmarks.common import (BATCH, NEW_TOKENS, PROMPT_TOKENS, SYNTHETIC_VOCAB, env_kwargs, make_model, make_vec_env,
                               median_seconds, num_params, parser, print_table, setup_torch)


def token_ppo_rollout(model, batch: int, prompt: int, new: int):
    """A callable that runs one ``TokenPPO.collect_rollout`` and returns (tokens generated, generation seconds)."""
    from agents.ppo import TokenPPO

    ppo = TokenPPO(model, make_vec_env(batch, prompt_tokens=prompt, new_tokens=new), kl_coef=0.05, baseline="gae",
                   batch_size=batch, seed=0, device="cpu")

    def run():
        ppo.collect_rollout()
        return int(ppo.buffer.response_mask.sum()), ppo.last_rollout["generate_s"]

    return run


def hf_generate(model, batch: int, prompt: int, new: int):
    """A callable that samples ``new`` tokens for ``batch`` prompts with ``lm.generate`` (KV cache)."""
    from benchmarks.common import prompts
    from textgym.tokenizers import default_tokenizer

    tok = default_tokenizer()
    ids = [tok.encode(p["prompt"])[-prompt:] for p in prompts(batch)]
    input_ids = torch.tensor(ids)
    mask = torch.ones_like(input_ids)
    cfg = model.config

    def run():
        with torch.no_grad():
            out = model.lm.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, use_cache=True,
                                    max_new_tokens=new, min_new_tokens=new, pad_token_id=cfg.pad_token_id,
                                    top_k=0, top_p=1.0)
        return (out.shape[1] - prompt) * batch

    return run


def naive_reencode(model, batch: int, prompt: int, new: int):
    """A callable that samples ``new`` tokens by re-running the full prefix every step (no cache, no env)."""
    from agents.distributions import sample_tokens

    input_ids = torch.randint(5, 4000, (batch, prompt))

    def run():
        ids = input_ids
        with torch.no_grad():
            for _ in range(new):
                out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
                ids = torch.cat([ids, sample_tokens(model.logits(out.hidden[:, -1]))[:, None]], dim=1)
        return batch * new

    return run


def sb3_rollout(model, batch: int, prompt: int, new: int, use_cache: bool):
    """A callable that runs stock SB3 ``PPO.collect_rollouts`` for ``batch * new`` transitions."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    import textgym  # noqa: F401
    from agents.policies import TransformerPolicy

    kwargs = env_kwargs(prompt, new)
    venv = DummyVecEnv([lambda: gym.make("textgym/Sentiment-v0", **kwargs) for _ in range(batch)])
    ppo = PPO(TransformerPolicy, venv, n_steps=new, batch_size=batch, seed=0, device="cpu",
              policy_kwargs={"model": model, "use_cache": use_cache})
    _, callback = ppo._setup_learn(batch * new, None)

    def run():
        ppo.collect_rollouts(ppo.env, callback, ppo.rollout_buffer, n_rollout_steps=new)
        return batch * new

    return run


def main() -> None:
    p = parser(__doc__.splitlines()[0], shape=('batch', 'prompt', 'new_tokens'))
    p.add_argument("--vocabs", default=f"4096,{SYNTHETIC_VOCAB}", help="model vocabularies, comma-separated")
    p.add_argument("--skip-slow", action="store_true", help="skip naive re-encoding and uncached SB3")
    args = p.parse_args()
    setup_torch(args.threads)
    batch, prompt, new, repeats = args.batch, args.prompt, args.new_tokens, args.repeats
    size = "small"
    if args.quick:
        batch, prompt, new, repeats, size = 4, 8, 4, 1, "tiny"
    for vocab in (int(v) for v in args.vocabs.split(",")):
        model = make_model(vocab, size=size)
        rows = []
        secs, (tokens, gen_s) = median_seconds(token_ppo_rollout(model, batch, prompt, new), repeats)
        ppo_tps = tokens / secs
        rows.append(["TokenPPO collect_rollout (gen + env + reward + ref + values)", tokens, secs, ppo_tps, 1.0])
        gen_tps = tokens / gen_s
        rows.append(["  of which KV-cached generation + env steps", tokens, gen_s, gen_tps, ppo_tps / gen_tps])
        candidates = [("HF lm.generate (KV cache, sampling): ceiling", hf_generate(model, batch, prompt, new)),
                      ("stock SB3 PPO.collect_rollouts + TransformerPolicy (slot KV cache)",
                       sb3_rollout(model, batch, prompt, new, use_cache=True))]
        if not args.skip_slow:
            candidates += [("stock SB3 PPO.collect_rollouts + TransformerPolicy (use_cache=False)",
                            sb3_rollout(model, batch, prompt, new, use_cache=False)),
                           ("naive re-encoding of the prefix every step", naive_reencode(model, batch, prompt, new))]
        for name, fn in candidates:
            slow = "naive" in name or "False" in name  # tens of seconds per call: one run, no warm-up
            secs, tokens = median_seconds(fn, 1 if slow else repeats, warmup=0 if slow else 1)
            rows.append([name, tokens, secs, tokens / secs, ppo_tps / (tokens / secs)])
        print_table(
            f"Rollout throughput: vocab {vocab}, {num_params(model) / 1e6:.1f}M params, batch {batch}, "
            f"prompt {prompt}, "
            f"{new} new tokens (median of {repeats})",
            ["method", "tokens", "seconds", "tokens/s", "TokenPPO speed-up (x)"], rows)


if __name__ == "__main__":
    main()
