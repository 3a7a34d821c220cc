"""register / make / list_rewards / reward_name, and entry-point discovery from a real dist-info."""

import functools
import sys
import textwrap

import pytest

from textgym import rewards
from textgym.rewards import registry

BUILTINS = {
    "sentiment", "tone", "keywords", "length", "format", "format_or_length", "repetition",
    "bleu", "chrf", "rouge", "exact_match", "token_f1", "numeric_match", "classifier",
}


def brevity(prompts, completions, **kwargs):
    return [1.0 / (1 + len(c.split())) for c in completions]


def scaled(prompts, completions, scale=1.0, **kwargs):
    return [scale * len(c) for c in completions]


def test_builtins_are_listed():
    assert BUILTINS <= set(rewards.list_rewards())
    assert rewards.list_rewards() == sorted(rewards.list_rewards())


def test_register_then_make_returns_the_function_and_names_it():
    rewards.register("brevity", brevity)
    assert rewards.make("brevity") is brevity
    assert rewards.reward_name(brevity) == "brevity"
    assert "brevity" in rewards.list_rewards()


def test_register_as_decorator_keeps_the_function():
    @rewards.register("shout")
    def shout(prompts, completions, **kwargs):
        return [float(c.isupper()) for c in completions]

    assert callable(shout) and rewards.make("shout") is shout


def test_duplicate_name_is_an_error_unless_overwrite():
    rewards.register("brevity", brevity)
    rewards.register("brevity", brevity)  # the same object again: a no-op (module reloads)
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        rewards.register("brevity", scaled)
    with pytest.raises(ValueError, match="'bleu' is already registered"):
        rewards.register("bleu", brevity)
    rewards.register("brevity", scaled, overwrite=True)
    assert rewards.make("brevity") is scaled


@pytest.mark.parametrize("name, reward", [("", brevity), (3, brevity), ("x", 42)])
def test_register_rejects_bad_arguments(name, reward):
    with pytest.raises(TypeError):
        rewards.register(name, reward)


def test_unknown_name_suggests_close_matches_and_lists_all():
    with pytest.raises(ValueError) as err:
        rewards.make("sentimnet")
    message = str(err.value)
    assert "Did you mean 'sentiment'" in message
    assert "token_f1" in message and "classifier" in message  # every registered name
    assert "register(" in message  # how to add one


def test_make_class_with_options_and_bad_options():
    reward = rewards.make("rouge", rouge_type="rouge1")
    assert isinstance(reward, rewards.RougeReward) and reward.rouge_type == "rouge1"
    assert rewards.reward_name(reward) == "rouge"
    with pytest.raises(TypeError, match=r"Reward 'rouge'.*rouge_typ=.*Accepted parameters: rouge_type"):
        rewards.make("rouge", rouge_typ="rouge1")
    with pytest.raises(TypeError, match=r"Reward 'classifier'.*model_dir"):
        rewards.make("classifier")  # a required option is missing


def test_make_function_binds_options_with_partial():
    rewards.register("scaled", scaled)
    reward = rewards.make("scaled", scale=2.0)
    assert isinstance(reward, functools.partial)
    assert reward(["p"], ["abc"]) == [6.0]
    assert rewards.reward_name(reward) == "scaled"
    rewards.register("brevity", brevity)
    with pytest.raises(TypeError, match=r"'brevity' does not accept 'prompts'"):
        rewards.make("brevity", prompts=["x"])


def test_make_function_without_var_kwargs_rejects_unknown_options():
    def strict(prompts, completions, bonus=0.0):
        return [bonus] * len(completions)

    rewards.register("strict", strict)
    assert rewards.make("strict", bonus=1.0)(["p"], ["c"]) == [1.0]
    with pytest.raises(TypeError, match=r"'strict' does not accept 'bonsu'.*bonus=0.0"):
        rewards.make("strict", bonsu=1.0)


def test_make_callable_is_returned_unchanged_and_rejects_options():
    assert rewards.make(brevity) is brevity
    with pytest.raises(TypeError, match="only apply to a registered reward name"):
        rewards.make(brevity, scale=2)


def test_make_unregistered_class_instantiates_it():
    reward = rewards.make(rewards.RepetitionPenalty, n=3)
    assert isinstance(reward, rewards.RepetitionPenalty) and reward.n == 3


def test_make_rejects_callables_with_the_wrong_signature():
    with pytest.raises(TypeError, match=r"never receives the completions.*by keyword.*def my_reward\(completions"):
        rewards.make(lambda completion: 1.0)


@pytest.mark.parametrize("spec", [None, 3.5, object()])
def test_make_rejects_non_rewards(spec):
    with pytest.raises(TypeError, match="Cannot make a reward"):
        rewards.make(spec)


def test_trl_style_function_works_unchanged_through_make_and_score():
    def f(prompts, completions, **kw):
        return [len(c) for c in completions]

    reward = rewards.make(f)
    total, components = rewards.score(reward, ["a", "b"], ["xyz", "héllo"], {"answer": ["1", "2"]})
    assert total.tolist() == [3.0, 5.0] and total.dtype.name == "float64"
    assert list(components) == [rewards.reward_name(f)] and rewards.reward_name(f).endswith(".f")


# ------------------------------------------------------------------------------------------- entry points
PLUGIN = textwrap.dedent(
    '''
    def loud(prompts, completions, **kwargs):
        return [float(sum(ch.isupper() for ch in c)) for c in completions]

    class Exclaim:
        def __init__(self, bonus=1.0):
            self.bonus = bonus

        def __call__(self, prompts, completions, **kwargs):
            return [self.bonus * c.count("!") for c in completions]
    '''
)


def install_fake_plugin(tmp_path, monkeypatch, module, entry_points):
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    dist_info = tmp_path / "textgym_fake_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: textgym-fake-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[textgym.rewards]\n" + entry_points)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)


def test_entry_point_rewards_are_discovered_on_first_make(tmp_path, monkeypatch):
    install_fake_plugin(
        tmp_path, monkeypatch, "tg_plugin_ok", "loud = tg_plugin_ok:loud\nexclaim = tg_plugin_ok:Exclaim\n"
    )
    assert "loud" not in registry._REGISTRY  # nothing is read before the first make/list_rewards
    loud = rewards.make("loud")
    assert loud(["p"], ["ABc"]) == [2.0]
    assert rewards.make("exclaim", bonus=2.0)(["p"], ["hi!!"]) == [4.0]
    assert {"loud", "exclaim"} <= set(rewards.list_rewards())


def test_broken_entry_point_warns_with_distribution_and_name(tmp_path, monkeypatch):
    install_fake_plugin(
        tmp_path,
        monkeypatch,
        "tg_plugin_mixed",
        "loud = tg_plugin_mixed:loud\nghost = tg_plugin_missing_module:nope\n"
        "bleu = tg_plugin_mixed:loud\n",
    )
    with pytest.warns(rewards.RewardWarning) as caught:
        names = rewards.list_rewards()
    messages = " | ".join(str(w.message) for w in caught)
    assert "'ghost'" in messages and "textgym-fake-plugin" in messages and "ModuleNotFoundError" in messages
    assert "'bleu'" in messages and "already registered" in messages  # a plugin never replaces a built-in
    assert "loud" in names and "ghost" not in names
    assert isinstance(rewards.make("bleu"), rewards.BleuReward)


@pytest.mark.parametrize("raised", ["SystemExit(3)", "GeneratorExit()", "BaseException('plugin bug')"])
def test_a_plugin_raising_a_base_exception_at_import_is_skipped(tmp_path, monkeypatch, raised):
    (tmp_path / "tg_plugin_exits.py").write_text(f"raise {raised}\n")
    install_fake_plugin(tmp_path, monkeypatch, "tg_plugin_ok2", "exits = tg_plugin_exits:loud\nloud = tg_plugin_ok2:loud\n")
    monkeypatch.delitem(sys.modules, "tg_plugin_exits", raising=False)
    with pytest.warns(rewards.RewardWarning, match=r"skipped the reward entry point 'exits'.*" + raised.split("(")[0]):
        names = rewards.list_rewards()
    assert "exits" not in names and "loud" in names
    assert isinstance(rewards.make("bleu"), rewards.BleuReward)  # built-ins keep working


def test_a_keyboard_interrupt_during_plugin_import_is_not_swallowed(tmp_path, monkeypatch):
    (tmp_path / "tg_plugin_ctrlc.py").write_text("raise KeyboardInterrupt\n")
    install_fake_plugin(tmp_path, monkeypatch, "tg_plugin_ok3", "ctrlc = tg_plugin_ctrlc:loud\n")
    monkeypatch.delitem(sys.modules, "tg_plugin_ctrlc", raising=False)
    with pytest.raises(KeyboardInterrupt):
        rewards.list_rewards()
