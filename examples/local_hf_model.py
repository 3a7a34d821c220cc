"""A local Hugging Face model directory as the policy, trained with TokenPPO and exported back to transformers.

    python examples/local_hf_model.py --model-dir path/to/your/model   # any local causal-LM directory
    python examples/local_hf_model.py                                  # builds a tiny Llama to stand in

textgym never downloads: point ``--model-dir`` at a directory that ``AutoModelForCausalLM.from_pretrained``
loads (safetensors; ``trust_remote_code`` stays off). Without one, this script builds a tiny Llama with
textgym's tokenizer and saves it, so the same real loading path runs. The model's tokenizer must be the env's:
pass ``tokenizer=<model dir>`` to the env when the model has its own.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import transformers

import textgym
from agents.ppo import TokenPPO


def build_stand_in_model(directory: Path) -> Path:
    """A tiny Llama with textgym's default tokenizer, saved like any downloaded model directory."""
    tok = textgym.default_tokenizer()
    config = transformers.LlamaConfig(
        vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="a local causal-LM directory (default: build a tiny Llama)")
    p.add_argument("--env", default="textgym/Sentiment-v0")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--num-envs", type=int, default=16)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model_dir) if args.model_dir else build_stand_in_model(Path(tmp) / "tiny-llama")
        env = gym.make_vec(args.env, num_envs=args.num_envs, tokenizer=str(model_dir), max_new_tokens=12)
        algo = TokenPPO(str(model_dir), env, learning_rate=1e-4, batch_size=8, n_epochs=1, seed=0, device="cpu")
        algo.learn(args.iterations * args.num_envs * 12)
        export = Path(tmp) / "exported"
        algo.policy.save_pretrained(export, tokenizer=env.unwrapped.tokenizer)
        generator = transformers.pipeline("text-generation", model=str(export))
        text = generator("Review: The film was", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    print(f"trained {type(algo.policy.lm).__name__} for {algo.num_timesteps} tokens; exported model says: {text!r}")
    return {"timesteps": algo.num_timesteps, "text": text}


if __name__ == "__main__":
    main()
