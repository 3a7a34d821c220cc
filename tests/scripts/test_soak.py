"""scripts/soak.py runs end to end at a tiny size and reports its RSS table (the real soak: 10k episodes)."""

import importlib.util
from pathlib import Path


def test_soak_smoke(capsys):
    import torch

    threads = torch.get_num_threads()  # the script sets one thread; give the rest of the suite its count back
    path = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"
    spec = importlib.util.spec_from_file_location("soak", path)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    try:
        code = soak.main(["--episodes", "48", "--num-envs", "16", "--max-new-tokens", "2", "--samples", "2", "--max-growth", "1000"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert code == 0
    assert "RSS MiB" in out and "48 episodes (3 TokenPPO iterations of 16)" in out and "growth" in out
