"""TokenPPOConfig: the one declaration of TokenPPO's hyperparameters (agents/ppo/config.py)."""

import dataclasses
import inspect
import json
import warnings

import pytest

from agents.ppo import TokenPPO
from agents.ppo.config import TokenPPOConfig, check_ppo_section
from tests.agents.ppo.conftest import ToyVectorEnv, tiny_model
from textgym.config import ConfigError


def test_keywords_and_a_config_object_build_the_same_run():
    by_keywords = TokenPPO(tiny_model(), ToyVectorEnv(), learning_rate=3e-4, batch_size=4, seed=0, device="cpu")
    by_config = TokenPPO(tiny_model(), ToyVectorEnv(), config=TokenPPOConfig(learning_rate=3e-4, batch_size=4, seed=0),
                         device="cpu")
    assert by_keywords.config == by_config.config and by_keywords.hyperparams == by_config.hyperparams
    assert by_config.learning_rate == 3e-4 and by_config.batch_size == 4  # the fields read as attributes
    # Keywords given with config= replace its fields; the config object itself is left as it was.
    base = TokenPPOConfig(learning_rate=3e-4)
    changed = TokenPPO(tiny_model(), ToyVectorEnv(), config=base, n_epochs=2, device="cpu")
    assert changed.config.n_epochs == 2 and changed.config.learning_rate == 3e-4 and base.n_epochs == 4


def test_the_signature_and_the_saved_json_come_from_the_dataclass():
    params = inspect.signature(TokenPPO).parameters
    fields = {f.name: f.default for f in dataclasses.fields(TokenPPOConfig)}
    assert {name: params[name].default for name in fields} == fields
    assert list(params)[:3] == ["policy", "env", "learning_rate"] and {"device", "distributed", "fsdp"} <= set(params)
    assert list(TokenPPOConfig().to_dict()) == list(fields)
    json.dumps(TokenPPOConfig().to_dict())  # JSON as it is


def test_validation_names_the_value_and_unknown_arguments_are_type_errors():
    with pytest.raises(ValueError, match="group_size >= 2"):
        TokenPPOConfig(baseline="rloo")
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        TokenPPOConfig(kl_estimator="k2")
    with pytest.raises(ValueError, match="n_epochs must be a positive integer"):
        TokenPPOConfig().replace(n_epochs=0)
    with pytest.raises(TypeError, match="learning_rat"):
        TokenPPO(tiny_model(), ToyVectorEnv(), learning_rat=1.0)
    with pytest.raises(TypeError, match="TokenPPOConfig"):
        TokenPPO(tiny_model(), ToyVectorEnv(), config={"learning_rate": 1.0})
    with pytest.raises(TypeError, match="unknown hyperparameter.*'nope'"):
        TokenPPOConfig.from_dict({"nope": 1})


def test_a_run_saved_with_fewer_hyperparameters_still_loads(tmp_path):
    algo = TokenPPO(tiny_model(), ToyVectorEnv(), kl_coef=0.1, seed=0, device="cpu")
    algo.save(str(tmp_path / "run"))
    state_file = tmp_path / "run" / "token_ppo.json"
    state = json.loads(state_file.read_text())
    # An older textgym saved fewer fields: the missing ones take their defaults.
    for name in ("old_logprobs", "max_consecutive_nonfinite", "logprob_chunk_size"):
        del state["hyperparams"][name]
    state_file.write_text(json.dumps(state))
    loaded = TokenPPO.load(str(tmp_path / "run"), env=ToyVectorEnv(), device="cpu")
    assert loaded.config.kl_coef == 0.1 and loaded.config.old_logprobs == TokenPPOConfig().old_logprobs


def test_the_cli_ppo_section_is_checked_with_the_same_rules():
    assert check_ppo_section({"learning_rate": 1, "fsdp": False}, seed=0, num_envs=8).learning_rate == 1
    with pytest.raises(ConfigError, match="Did you mean 'learning_rate'"):
        check_ppo_section({"learning_rat": 1e-4}, seed=0, num_envs=8)
    with pytest.raises(ConfigError, match="ppo.n_epochs must be a int"):
        check_ppo_section({"n_epochs": "four"}, seed=0, num_envs=8)
    with pytest.raises(ConfigError, match="Unknown config key 'seed'"):
        check_ppo_section({"seed": 1}, seed=0, num_envs=8)  # set at the top level
    with pytest.raises(ConfigError, match="group_size >= 2"):
        check_ppo_section({"baseline": "grpo"}, seed=0, num_envs=8)
    with pytest.raises(ConfigError, match="multiple of group_size"):
        check_ppo_section({"baseline": "grpo", "group_size": 3}, seed=0, num_envs=8)


def test_clip_range_high_is_validated_and_read_from_the_cli_section():
    assert TokenPPOConfig().clip_range_high is None  # symmetric clipping unless asked
    with pytest.raises(ValueError, match="clip_range_high must be a positive number or None, got 0"):
        TokenPPOConfig(clip_range_high=0)
    assert check_ppo_section({"clip_range_high": 0.28}, seed=0, num_envs=8).clip_range_high == 0.28
    with pytest.raises(ConfigError, match="clip_range_high must be a positive number or None, got 'high'"):
        check_ppo_section({"clip_range_high": "high"}, seed=0, num_envs=8)


def test_scale_rewards_is_validated_and_read_from_the_cli_section():
    assert TokenPPOConfig().scale_rewards is None  # each baseline's own scaling
    with pytest.raises(ValueError, match=r"scale_rewards must be one of \('group', 'batch', 'none'\) or None, got 'std'"):
        TokenPPOConfig(baseline="grpo", group_size=2, scale_rewards="std")
    with pytest.raises(ValueError, match="scale_rewards='none' scales a group baseline's advantages: set baseline"):
        TokenPPOConfig(scale_rewards="none")  # GAE has no group to scale by
    # Dr. GRPO: unscaled group advantages are whitened anyway unless normalize_advantage is off; say so.
    with pytest.warns(UserWarning, match="Set normalize_advantage=False to keep them unscaled"):
        TokenPPOConfig(baseline="grpo", group_size=2, scale_rewards="none")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TokenPPOConfig(baseline="grpo", group_size=2, scale_rewards="none", normalize_advantage=False)
        TokenPPOConfig(baseline="rloo", group_size=2)  # RLOO's own 'none' is implied, not asked for: no warning
    section = {"baseline": "grpo", "group_size": 2, "scale_rewards": "batch"}
    assert check_ppo_section(section, seed=0, num_envs=8).scale_rewards == "batch"
    with pytest.raises(ConfigError, match="In section 'ppo': scale_rewards must be one of"):
        check_ppo_section({**section, "scale_rewards": False}, seed=0, num_envs=8)  # YAML's bare `no`


def test_loss_aggregation_is_validated_and_read_from_the_cli_section():
    assert TokenPPOConfig().loss_aggregation == "token_mean"  # DAPO's / TRL's default, the loss as before
    with pytest.raises(ValueError, match=r"loss_aggregation must be one of \('token_mean', 'sequence_mean', 'constant'\), got 'sum'"):
        TokenPPOConfig(loss_aggregation="sum")
    assert check_ppo_section({"loss_aggregation": "constant"}, seed=0, num_envs=8).loss_aggregation == "constant"
    with pytest.raises(ConfigError, match="ppo.loss_aggregation must be a str"):
        check_ppo_section({"loss_aggregation": 1}, seed=0, num_envs=8)


def test_importance_ratio_baselines_and_overlong_options_are_validated():
    assert TokenPPOConfig().importance_ratio == "token" and not TokenPPOConfig().overlong_filter
    with pytest.raises(ValueError, match=r"importance_ratio must be one of \('token', 'sequence'\), got 'seq'"):
        TokenPPOConfig(importance_ratio="seq")
    TokenPPOConfig(baseline="reinforce++")  # critic-free, no group needed
    assert not TokenPPOConfig(baseline="reinforce++").uses_critic
    with pytest.raises(ValueError, match="baseline='reinforce\\+\\+_baseline' compares completions of the same prompt: set group_size >= 2"):
        TokenPPOConfig(baseline="reinforce++_baseline")
    with pytest.raises(ValueError, match="scale_rewards='group' scales a group baseline's advantages.*'reinforce\\+\\+'"):
        TokenPPOConfig(baseline="reinforce++", scale_rewards="group")
    with pytest.raises(ValueError, match="overlong_buffer must be a positive integer or None, got 0"):
        TokenPPOConfig(overlong_buffer=0)
    with pytest.raises(ValueError, match="overlong_penalty must be a number >= 0, got -1"):
        TokenPPOConfig(overlong_buffer=2, overlong_penalty=-1)
    with pytest.raises(ValueError, match="overlong_buffer=5 is longer than the env's max_new_tokens=4.*overlong_buffer <= 4"):
        TokenPPO(tiny_model(), ToyVectorEnv(), overlong_buffer=5, device="cpu")
    with pytest.raises(ConfigError, match="In section 'ppo': importance_ratio must be one of"):
        check_ppo_section({"importance_ratio": "tokens"}, seed=0, num_envs=8)
    assert check_ppo_section({"overlong_buffer": 8, "overlong_filter": True}, seed=0, num_envs=8).overlong_buffer == 8


def test_the_policy_gradient_options_round_trip_through_save_and_load(tmp_path):
    options = {"clip_range_high": 0.28, "loss_aggregation": "constant", "scale_rewards": "batch",
               "importance_ratio": "sequence", "overlong_buffer": 2, "overlong_penalty": 0.5, "overlong_filter": True}
    algo = TokenPPO(tiny_model(), ToyVectorEnv(), baseline="grpo", group_size=2, seed=0, device="cpu", **options)
    algo.save(str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "token_ppo.json").read_text())["hyperparams"]
    assert {k: saved[k] for k in options} == options
    loaded = TokenPPO.load(str(tmp_path / "run"), env=ToyVectorEnv(), device="cpu")
    assert {k: getattr(loaded.config, k) for k in options} == options and loaded.config == algo.config
