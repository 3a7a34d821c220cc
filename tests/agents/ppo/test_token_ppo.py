"""TokenPPO's SB3-style API: learn / callbacks / logger / save / load / predict / seeding / errors."""

import json
import os

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure

from agents.ppo import TokenPPO
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model


def make(env=None, **kwargs):
    kwargs = {"learning_rate": 1e-3, "n_epochs": 2, "batch_size": 4, "seed": 0, **kwargs}
    return TokenPPO(kwargs.pop("policy", None) or tiny_model(0), env or ToyVectorEnv(num_envs=8), **kwargs)


class Recorder(BaseCallback):
    def __init__(self, stop_after_steps=None):
        super().__init__()
        self.events, self.stop_after_steps, self.rollout_tokens = [], stop_after_steps, []

    def _on_training_start(self):
        self.events.append(("start", self.num_timesteps))

    def _on_rollout_start(self):
        self.events.append(("rollout_start", self.num_timesteps))

    def _on_step(self):
        assert "tokens" in self.locals and "rewards" in self.locals
        self.events.append(("step", self.num_timesteps))
        return self.stop_after_steps is None or self.n_calls < self.stop_after_steps

    def _on_rollout_end(self):
        self.events.append(("rollout_end", self.num_timesteps))
        self.rollout_tokens.append(self.model.buffer.num_tokens)

    def _on_training_end(self):
        self.events.append(("end", self.num_timesteps))


def test_learn_calls_sb3_callbacks_and_counts_tokens():
    algo, rec, other = make(), Recorder(), Recorder()
    algo.learn(40, callback=[rec, other])
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("rollout_start") == algo.iteration >= 2
    assert kinds.count("rollout_end") == algo.iteration and kinds.count("step") == rec.n_calls
    assert rec.events == other.events
    steps = [n for k, n in rec.events if k == "step"]
    assert steps == sorted(steps) and steps[-1] == algo.num_timesteps >= 40
    assert algo.num_timesteps == sum(rec.rollout_tokens)  # one timestep per generated token
    # A callback returning False stops training at once, mid-rollout.
    stopper = Recorder(stop_after_steps=2)
    make().learn(1000, callback=CallbackList([stopper]))
    assert [k for k, _ in stopper.events].count("step") == 2 and stopper.events[-1][0] == "end"


def test_metrics_reach_stdout_csv_and_tensorboard(tmp_path, capsys):
    algo = make()
    algo.set_logger(configure(str(tmp_path), ["stdout", "csv", "tensorboard"]))
    algo.learn(30)
    header = open(tmp_path / "progress.csv").readline().strip().split(",")
    for key in (*SB3_TAGS, "rollout/reward_std", "train/kl", "train/explained_variance", "train/ratio_mean",
                "train/kl_coef", "time/tokens_per_sec"):
        assert key in header, key
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))
    assert "ep_rew_mean" in capsys.readouterr().out


#: The tags SB3's PPO logs, which TokenPPO logs for the same quantities.
SB3_TAGS = ("rollout/ep_rew_mean", "rollout/ep_len_mean", "train/policy_gradient_loss", "train/value_loss",
            "train/entropy_loss", "train/approx_kl", "train/clip_fraction", "train/learning_rate", "train/clip_range",
            "train/loss", "time/fps")


def test_metrics_use_sb3_names_and_meanings():
    algo = make(learning_rate=2e-3, clip_range=0.3)
    algo.learn(30)
    m = algo.last_metrics  # what the logger recorded for the last iteration
    assert set(SB3_TAGS) <= set(m), sorted(set(SB3_TAGS) - set(m))
    assert m["train/learning_rate"] == 2e-3 and m["train/clip_range"] == 0.3
    assert m["train/entropy_loss"] < 0  # SB3's sign: minus the mean entropy
    assert m["rollout/ep_rew_mean"] == float(algo.buffer.scores.float().mean())
    assert not {"rollout/reward_mean", "train/policy_loss", "train/entropy"} & set(algo.last_metrics)


def test_same_seed_same_metrics_different_seed_differs():
    def run(seed):
        algo = make(seed=seed)
        history = []
        for _ in range(2):
            algo.collect_rollout()
            history.append(algo.train())
        return history

    a, b, c = run(3), run(3), run(4)
    assert a == b
    assert a != c


def test_save_load_roundtrip(tmp_path):
    algo = make(kl_target=1.0)
    algo.learn(20)
    algo.save(str(tmp_path / "run"))
    files = set(os.listdir(tmp_path / "run")) | set(os.listdir(tmp_path / "run" / "policy"))
    assert "token_ppo.json" in files and any(f.endswith(".safetensors") for f in files)
    assert not any(f.endswith((".pkl", ".pt", ".bin", ".zip")) for f in files)
    state = json.load(open(tmp_path / "run" / "token_ppo.json"))
    assert state["hyperparams"]["kl_target"] == 1.0 and state["num_timesteps"] == algo.num_timesteps
    loaded = TokenPPO.load(str(tmp_path / "run"), env=ToyVectorEnv(num_envs=8), device="cpu")
    assert loaded.kl_controller.value == algo.kl_controller.value and loaded.learning_rate == algo.learning_rate
    obs, _ = algo.env.reset(seed=1)
    assert np.array_equal(algo.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    for p, q in zip(algo.policy.parameters(), loaded.policy.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(FileNotFoundError, match="token_ppo.json"):
        TokenPPO.load(str(tmp_path))
    with pytest.raises(TypeError, match="unknown override"):
        TokenPPO.load(str(tmp_path / "run"), env=ToyVectorEnv(), learning_rat=1.0)


def test_predict_is_sb3_shaped():
    algo = make()
    obs, _ = algo.env.reset(seed=0)
    actions, state = algo.predict(obs)
    assert actions.shape == (8,) and actions.dtype == np.int64 and state is None
    single = {k: v[0] for k, v in obs.items()}
    action, _ = algo.predict(single, deterministic=True)
    assert np.ndim(action) == 0
    as_float = {k: v.astype(np.float32) for k, v in obs.items()}  # what SB3 wrappers hand over
    assert np.array_equal(algo.predict(as_float, deterministic=True)[0], algo.predict(obs, deterministic=True)[0])
    with pytest.raises(TypeError, match="input_ids"):
        algo.predict(obs["input_ids"])


def test_evaluate_reports_reward_without_training():
    algo = make()
    before = [p.clone() for p in algo.policy.parameters()]
    result = algo.evaluate(num_episodes=12)
    assert result["num_episodes"] == 12 and 0.0 <= result["reward_mean"] <= 1.0
    assert all(torch.equal(p, q) for p, q in zip(before, algo.policy.parameters()))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"baseline": "ppo"}, ValueError, "baseline must be one of"),
        ({"baseline": "grpo"}, ValueError, "group_size >= 2"),
        ({"baseline": "grpo", "group_size": 3}, ValueError, "multiple of group_size"),
        ({"kl_estimator": "k2"}, ValueError, "kl_estimator"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"gamma": 1.5}, ValueError, "gamma and gae_lambda"),
        ({"kl_coef": 0.0, "kl_target": 1.0}, ValueError, "kl_coef > 0"),
        ({"nlpo_top_p": 1.5}, ValueError, "nlpo_top_p"),
        ({"device": "cuda:0"} if not torch.cuda.is_available() else {"baseline": "x"}, ValueError, "."),
    ],
)
def test_bad_arguments_name_the_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_bad_policy_and_env():
    with pytest.raises(ValueError, match="Unknown env id"):
        TokenPPO(tiny_model(0), "textgym/NoSuchTask-v0")
    import gymnasium as gym

    with pytest.raises(TypeError, match="make_vec"):
        TokenPPO(tiny_model(0), gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="neither 'default' nor a local model directory"):
        TokenPPO("gpt2", ToyVectorEnv())
    from agents.models import ActorCriticLM, default_model_config

    small = ActorCriticLM.from_config(default_model_config(vocab_size=8, pad_token_id=0, eos_token_id=1, size="tiny"))
    with pytest.raises(ValueError, match="vocabulary"):
        TokenPPO(small, ToyVectorEnv())


def test_a_model_built_for_a_much_larger_vocabulary_warns_at_setup():
    import warnings

    from agents.models import ActorCriticLM, default_model_config

    def model(vocab_size):
        return ActorCriticLM.from_config(default_model_config(vocab_size=vocab_size, pad_token_id=0, eos_token_id=1, size="tiny"))

    with pytest.warns(UserWarning, match=r"vocabulary \(4096 ids\) is much larger than the tokenizer's \(16\).*another tokenizer"):
        TokenPPO(model(4096), ToyVectorEnv())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # padding (GPT-2 pads 50257 ids to 50304) is no mismatch
        TokenPPO(model(64), ToyVectorEnv())


def test_env_with_other_autoreset_is_switched_with_warning():
    env = ToyVectorEnv(autoreset_mode="NextStep")
    with pytest.warns(UserWarning, match="DISABLED"):
        make(env=env)
    assert env.autoreset_mode.value == "Disabled"


def test_seq2seq_policy_is_refused_with_a_clear_error():
    import transformers

    from agents.models import ActorCriticLM

    config = transformers.T5Config(vocab_size=16, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
                                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    with pytest.raises(NotImplementedError, match="causal"):
        TokenPPO(ActorCriticLM.from_config(config), ToyVectorEnv())


def test_progress_bar_counts_generated_tokens():
    algo = make()
    algo.learn(20, progress_bar=True)
    assert algo.num_timesteps >= 20


def test_sb3_checkpoint_callback_writes_zips_that_load(tmp_path):
    import zipfile

    from stable_baselines3.common.callbacks import CheckpointCallback

    algo = make()
    algo.learn(30, callback=CheckpointCallback(save_freq=4, save_path=str(tmp_path), name_prefix="tokenppo"))
    saved = sorted(tmp_path.glob("tokenppo_*_steps.zip"))
    assert saved and all(zipfile.is_zipfile(path) for path in saved)  # real archives, as SB3 users expect
    loaded = TokenPPO.load(str(saved[-1]), env=ToyVectorEnv(num_envs=8), device="cpu")
    assert 0 < loaded.num_timesteps <= algo.num_timesteps
    algo.save(str(tmp_path / "final.zip"))
    again = TokenPPO.load(str(tmp_path / "final"), env=ToyVectorEnv(num_envs=8), device="cpu")  # SB3: ".zip" optional
    for p, q in zip(algo.policy.parameters(), again.policy.parameters()):
        torch.testing.assert_close(p, q)
    (tmp_path / "old.zip").mkdir()  # a directory an older textgym wrote under a .zip name is never overwritten
    with pytest.raises(IsADirectoryError, match="nothing was overwritten"):
        algo.save(str(tmp_path / "old.zip"))


def test_policy_kwargs_take_the_keys_transformer_policy_takes():
    """{"size": ...} and TransformerPolicy's {"model_config": {"size": ...}} build the same model."""
    def build(policy_kwargs):
        return TokenPPO("default", "textgym/Arithmetic-v0", num_envs=2, policy_kwargs=policy_kwargs, seed=0, device="cpu").policy

    flat, nested = build({"size": "tiny"}), build({"model_config": {"size": "tiny"}})
    assert flat.config.n_layer == nested.config.n_layer == 2 and flat.config.n_embd == 64
    for p, q in zip(flat.parameters(), nested.parameters()):
        torch.testing.assert_close(p, q)
    assert build({"model_config": {"size": "tiny", "n_layer": 1}}).config.n_layer == 1
    with pytest.raises(ValueError, match="size"):
        build({"size": "tiny", "model_config": {"size": "small"}})
