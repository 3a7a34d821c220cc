"""Config loading, overrides and validation errors."""

import pytest

from textgym.config import ConfigError, apply_overrides, load_config, validate_config


def ppo_like(policy, env, learning_rate=3e-5, n_epochs=4, target_kl=None, use_lora=False):
    """Stands in for TokenPPO's signature."""


def test_overrides_parse_yaml_scalars_into_nested_keys():
    config = apply_overrides({"ppo": {"learning_rate": 1e-5}}, ["ppo.learning_rate=3e-4", "seed=7", "sft.epochs=0"])
    assert config == {"ppo": {"learning_rate": 3e-4}, "seed": 7, "sft": {"epochs": 0}}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["ppo.learning_rate"])


def test_unknown_keys_and_wrong_types_name_the_key_and_fix():
    with pytest.raises(ConfigError, match="Did you mean 'learning_rate'"):
        validate_config({"ppo": {"learning_rat": 1e-4}}, ppo_class=ppo_like)
    with pytest.raises(ConfigError, match="ppo.n_epochs must be a int"):
        validate_config({"ppo": {"n_epochs": "four"}}, ppo_class=ppo_like)
    with pytest.raises(ConfigError, match="Unknown config key 'sede'"):
        validate_config({"sede": 1})
    with pytest.raises(ConfigError, match="seed must be a int"):
        validate_config({"seed": "x"})
    validate_config({"ppo": {"learning_rate": 1, "target_kl": 0.1, "use_lora": True}}, ppo_class=ppo_like)


def test_missing_config_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="No config named"):
        load_config("no-such-task")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_every_shipped_config_validates_against_the_code_and_names_a_registered_env():
    import gymnasium as gym

    import textgym  # noqa: F401
    from agents.ppo import TokenPPO
    from agents.ppo.sft import supervised_warm_start
    from textgym.config import available_configs

    configs = available_configs()
    assert {"sentiment", "arithmetic"} <= set(configs)
    for name in configs:
        config = load_config(name)
        validate_config(config, ppo_class=TokenPPO, sft_class=supervised_warm_start)
        assert config["env"] in gym.registry, name
