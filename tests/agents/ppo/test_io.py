"""TokenPPO.save's directory: a Hugging Face model that loads with no extra arguments, and LoRA's PEFT adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from agents.ppo import TokenPPO
from tests.agents.hf_exports import SAMPLE_TEXT, assert_loads_as_hf_model

ENV = "textgym/Arithmetic-v0"


def test_save_writes_a_policy_dir_with_its_tokenizer(tmp_path):
    algo = TokenPPO("default", ENV, num_envs=2, policy_kwargs={"size": "tiny"}, seed=0, device="cpu")
    algo.save(str(tmp_path / "saved"))
    assert_loads_as_hf_model(tmp_path / "saved" / "policy", algo.env.unwrapped.tokenizer)
    assert TokenPPO.load(str(tmp_path / "saved"), device="cpu").num_timesteps == 0


def test_lora_save_writes_a_peft_adapter_next_to_the_merged_weights(tmp_path):
    peft = pytest.importorskip("peft")
    from agents.models import build_default_model
    from textgym.tokenizers import default_tokenizer

    base_dir = tmp_path / "base"
    build_default_model(default_tokenizer(), size="tiny", seed=0).save_pretrained(base_dir, tokenizer=default_tokenizer())
    algo = TokenPPO(str(base_dir), ENV, num_envs=2, lora={"r": 4}, seed=0, device="cpu")
    with torch.no_grad():  # LoRA's B starts at 0 (adapter = identity): give it weights that change the logits
        for name, param in algo.policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    algo.save(str(tmp_path / "saved"))

    adapter_dir = tmp_path / "saved" / "adapter"
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
    adapted = peft.PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "saved" / "policy").eval()
    plain = transformers.AutoModelForCausalLM.from_pretrained(base_dir).eval()
    ids = torch.tensor([default_tokenizer().encode(SAMPLE_TEXT)])
    with torch.no_grad():
        adapted_logits, merged_logits, base_logits = (m(input_ids=ids).logits for m in (adapted, merged, plain))
    assert (adapted_logits - base_logits).abs().max() > 1e-3  # the adapter does something
    np.testing.assert_allclose(adapted_logits.numpy(), merged_logits.numpy(), atol=1e-5, rtol=0)
    assert peft.PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path == str(base_dir)
    assert_loads_as_hf_model(tmp_path / "saved" / "policy", default_tokenizer())
