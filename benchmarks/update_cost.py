"""Update cost (issue 8, item 3): forward + backward time per generated token, sequence-level vs per-transition.

All methods differentiate the same quantities (each generated token's log-prob under the policy and the value
of the state before it) for the same rollout of ``--batch`` sequences x ``--new-tokens`` tokens:

* TokenPPO, sequence level: ``agents.ppo.rollout.evaluate_sequences``, one teacher-forced pass per sequence
  (what ``TokenPPO.train`` runs per minibatch). ``TokenPPO.train()`` (one epoch, one minibatch, optimiser step
  included) is shown as well.
* Per transition, RL4LMs style: one forward pass per generated token over its prefix (the ``batch`` transitions
  of the same step share a pass, the most favourable batching for this method).
* Stock SB3: ``TransformerPolicy.evaluate_actions`` on the rollout's observations (each one the padded
  ``P + T`` layout), in minibatches of ``--sb3-minibatch`` transitions, as ``PPO.train`` calls it.

Run: ``python -m benchmarks.update_cost`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import torch

from benchmarks.common import (BATCH, NEW_TOKENS, PROMPT_TOKENS, SYNTHETIC_VOCAB, make_model, make_vec_env,
                               median_seconds, num_params, parser, print_table, setup_torch)


def filled_token_ppo(model, batch: int, prompt: int, new: int):
    """A TokenPPO with one rollout in its buffer (one epoch, one minibatch of all sequences)."""
    from agents.ppo import TokenPPO

    ppo = TokenPPO(model, make_vec_env(batch, prompt_tokens=prompt, new_tokens=new), n_epochs=1, batch_size=batch,
                   kl_coef=0.05, baseline="gae", seed=0, device="cpu", learning_rate=1e-6)
    ppo.collect_rollout()
    return ppo


def sequence_level(ppo):
    """Forward + backward of one teacher-forced pass over every sequence of the buffer."""
    from agents.ppo.rollout import evaluate_sequences

    buf = ppo.buffer
    batch = buf.get(torch.arange(buf.num_sequences))

    def run():
        ppo.policy.zero_grad(set_to_none=True)
        logp, entropy, values = evaluate_sequences(ppo.policy, batch.input_ids, batch.attention_mask,
                                                   batch.prompt_length, batch.response_ids, batch.response_mask,
                                                   ppo.sampler)
        (logp.sum() + values.sum()).backward()
        return int(batch.response_mask.sum())

    return run


def per_transition(ppo):
    """Forward + backward of one pass per generated token over its prefix (RL4LMs' per-transition evaluation)."""
    buf = ppo.buffer
    batch = buf.get(torch.arange(buf.num_sequences))
    P, model = batch.prompt_length, ppo.policy

    def run():
        model.zero_grad(set_to_none=True)
        for t in range(batch.response_ids.shape[1]):
            rows = batch.response_mask[:, t]
            if not rows.any():
                break
            ids, mask = batch.input_ids[rows, : P + t], batch.attention_mask[rows, : P + t]
            out = model(input_ids=ids, attention_mask=mask)
            logp = torch.log_softmax(model.logits(out.hidden[:, -1]).float(), dim=-1)
            token_logp = logp.gather(-1, batch.response_ids[rows, t, None]).squeeze(-1)
            (token_logp.sum() + out.values[:, -1].sum()).backward()
        return int(batch.response_mask.sum())

    return run


def sb3_evaluate_actions(ppo, minibatch: int):
    """Forward + backward of SB3's ``TransformerPolicy.evaluate_actions`` over every transition of the rollout."""
    from agents.policies import TransformerPolicy

    env = ppo.env.unwrapped
    policy = TransformerPolicy(env.single_observation_space, env.single_action_space, lambda _: 1e-6, model=ppo.policy)
    buf = ppo.buffer
    batch = buf.get(torch.arange(buf.num_sequences))
    P, T = batch.prompt_length, batch.response_ids.shape[1]
    full_ids = torch.cat([batch.input_ids, torch.zeros(len(batch.input_ids), P + T - batch.input_ids.shape[1],
                                                       dtype=torch.long)], dim=1)
    obs_ids, obs_mask, actions = [], [], []
    for t in range(T):  # the observation before token t: the prompt and the first t response tokens, padded to P+T
        rows = batch.response_mask[:, t]
        mask = torch.zeros_like(full_ids)
        mask[:, : P + t] = batch.attention_mask[:, : P + t]
        obs_ids.append(full_ids[rows] * mask[rows])
        obs_mask.append(mask[rows])
        actions.append(batch.response_ids[rows, t])
    obs_ids, obs_mask, actions = torch.cat(obs_ids).float(), torch.cat(obs_mask).float(), torch.cat(actions)

    def run():
        policy.zero_grad(set_to_none=True)
        for start in range(0, len(actions), minibatch):
            part = slice(start, start + minibatch)
            values, logp, _ = policy.evaluate_actions({"input_ids": obs_ids[part], "attention_mask": obs_mask[part]},
                                                      actions[part])
            (logp.sum() + values.sum()).backward()
        return len(actions)

    return run


def token_ppo_train(ppo):
    def run():
        ppo.train()
        return ppo.buffer.num_tokens

    return run


def main() -> None:
    p = parser(__doc__.splitlines()[0], shape=('batch', 'prompt', 'new_tokens', 'vocab'))
    p.add_argument("--sb3-minibatch", type=int, default=64, help="transitions per SB3 evaluate_actions call")
    args = p.parse_args()
    setup_torch(args.threads)
    batch, prompt, new, repeats, size = args.batch, args.prompt, args.new_tokens, args.repeats, "small"
    if args.quick:
        batch, prompt, new, repeats, size = 4, 8, 4, 1, "tiny"
    model = make_model(args.vocab, size=size)
    ppo = filled_token_ppo(model, batch, prompt, new)
    rows = []
    secs, tokens = median_seconds(sequence_level(ppo), repeats)
    base = secs / tokens
    rows.append(["TokenPPO evaluate_sequences fwd+bwd (sequence level)", tokens, secs, base * 1e3, 1.0])
    for name, fn, reps in (
        ("TokenPPO.train(): 1 epoch, 1 minibatch, optimiser step", token_ppo_train(ppo), repeats),
        ("per transition (RL4LMs): 1 fwd+bwd per token over its prefix", per_transition(ppo), 1),
        (f"stock SB3 TransformerPolicy.evaluate_actions, minibatch {args.sb3_minibatch}",
         sb3_evaluate_actions(ppo, args.sb3_minibatch), 1),
    ):
        secs, tokens = median_seconds(fn, reps)
        rows.append([name, tokens, secs, secs / tokens * 1e3, base / (secs / tokens)])
    print_table(
        f"Update cost: vocab {args.vocab}, {num_params(model) / 1e6:.1f}M params, {batch} sequences, prompt {prompt}, "
        f"{new} new tokens",
        ["method", "tokens", "seconds", "ms/token", "TokenPPO time ratio (x, goal <= 0.1)"], rows)


if __name__ == "__main__":
    main()
