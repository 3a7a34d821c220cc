"""Length scaling (issue 8, item 2): TokenPPO's rollout cost per generated token at growing completion lengths.

For each ``--lengths`` value the same model and batch run ``TokenPPO.collect_rollout`` (generation + env +
reward + reference + values) and, as the reference curve, Hugging Face ``lm.generate`` with its KV cache. The
table gives milliseconds per token and their ratio to the shortest length (goal for TokenPPO: <= 1.3x from 32 to
256 new tokens).

Run: ``python -m benchmarks.length_scaling`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

from benchmarks.common import (BATCH, PROMPT_TOKENS, SYNTHETIC_VOCAB, make_model, median_seconds, num_params, parser,
                               print_table, setup_torch)
from benchmarks.rollout_throughput import hf_generate, token_ppo_rollout


def main() -> None:
    p = parser(__doc__.splitlines()[0], shape=('batch', 'prompt', 'vocab'))
    p.add_argument("--lengths", default="32,64,128,256", help="new-token counts, comma-separated, shortest first")
    args = p.parse_args()
    setup_torch(args.threads)
    batch, prompt, repeats, size = args.batch, args.prompt, args.repeats, "small"
    lengths = [int(v) for v in args.lengths.split(",")]
    if args.quick:
        batch, prompt, repeats, size, lengths = 4, 8, 1, "tiny", [4, 8]
    model = make_model(args.vocab, size=size)
    rows, first = [], None
    for new in lengths:
        secs, (tokens, gen_s) = median_seconds(token_ppo_rollout(model, batch, prompt, new), repeats)
        hf_secs, hf_tokens = median_seconds(hf_generate(model, batch, prompt, new), repeats)
        per_token, gen_per_token, hf_per_token = secs / tokens * 1e3, gen_s / tokens * 1e3, hf_secs / hf_tokens * 1e3
        first = first or (per_token, gen_per_token, hf_per_token)
        rows.append([new, tokens, per_token, per_token / first[0], gen_per_token, gen_per_token / first[1],
                     hf_per_token, hf_per_token / first[2], hf_per_token / per_token])
    print_table(
        f"Rollout cost per token vs length: vocab {args.vocab}, {num_params(model) / 1e6:.1f}M params, batch {batch}, "
        f"prompt {prompt} (median of {repeats})",
        ["new tokens", "tokens", "TokenPPO ms/token", f"x at {lengths[0]} (goal <= 1.3)",
         "of which generation ms/token",
         f"x at {lengths[0]}", "HF generate ms/token", f"x at {lengths[0]}", "TokenPPO speed-up vs HF (x)"], rows)


if __name__ == "__main__":
    main()
