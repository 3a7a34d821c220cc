"""How the envs call rewards: TRL's keyword call with completion_ids and trainer_state, copies nobody can corrupt,
and records that cannot feed the reward refused at make (issue 16 item 1; issue 15 items 7 and 11)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym
from tests.conftest import run_episode
from textgym import rewards
from textgym.envs.text_env import TextGenerationEnv
from textgym.envs.vector_env import TextGenerationVectorEnv

PROMPTS = [{"prompt": "Describe the sea in a few words:", "ground_truth": "calm"}]


def episode(env, tokenizer, text):
    """Generate ``text`` then EOS; return (reward, info, the completion's ids)."""
    ids = tokenizer.encode(text)
    _, step_rewards, info, _ = run_episode(env, [*ids, tokenizer.eos_token_id], options={"prompt_index": 0})
    return step_rewards[-1], info, ids


def test_completions_only_reward_scores_the_completion_in_an_env(tokenizer):
    def length(completions, trainer_state=None, **kwargs):
        return [float(len(c)) for c in completions]

    env_id = textgym.register_reward_env("testtasks/TrlLength-v0", length, prompts=PROMPTS, max_new_tokens=8,
                                         overwrite=True)
    reward, info, _ = episode(gym.make(env_id), tokenizer, " calm blue")
    assert reward == len(info["completion"]) == len(tokenizer.decode(tokenizer.encode(" calm blue")))
    assert reward != len(PROMPTS[0]["prompt"])


def test_a_record_field_parameter_gets_the_records_value(tokenizer):
    def matches(completions, ground_truth, **kwargs):
        return [float(c.strip() == gt) for c, gt in zip(completions, ground_truth)]

    env_id = textgym.register_reward_env("testtasks/TrlTruth-v0", matches, prompts=PROMPTS, max_new_tokens=8,
                                         overwrite=True)
    assert episode(gym.make(env_id), tokenizer, " calm")[0] == 1.0
    assert episode(gym.make(env_id), tokenizer, " rough")[0] == 0.0


def test_env_passes_completion_ids_and_a_trainer_state(tokenizer):
    seen = []

    def spy(completions, completion_ids, trainer_state, **kwargs):
        seen.append((completion_ids, trainer_state))
        return [float(len(ids)) for ids in completion_ids]

    env = TextGenerationEnv(prompts=PROMPTS, reward=spy, max_new_tokens=8)
    reward, _, ids = episode(env, tokenizer, " calm blue")
    assert seen[0][0] == [ids] and reward == len(ids)  # the generated ids, EOS excluded
    state = seen[0][1]
    assert isinstance(state, rewards.RewardState)
    assert (state.global_step, state.num_episodes) == (len(ids) + 1, 0)  # every step so far, EOS included
    episode(env, tokenizer, " calm")
    assert (seen[1][1].global_step, seen[1][1].num_episodes) == (len(ids) + 1 + 2, 1)


def test_vector_env_trainer_state_counts_every_slot(tokenizer):
    states = []

    def spy(completions, trainer_state, **kwargs):
        states.append(trainer_state)
        return [0.0] * len(completions)

    env = TextGenerationVectorEnv(num_envs=3, prompts=PROMPTS, reward=spy, max_new_tokens=4)
    env.reset(seed=0)
    for _ in range(4):
        env.step(np.full(3, tokenizer.encode(" a")[0]))
    assert [(s.global_step, s.num_episodes) for s in states] == [(12, 0)]  # 3 slots x 4 steps, one batch of 3


def test_conversational_option_passes_message_lists(tokenizer):
    def first_message(completions, **kwargs):
        assert completions[0][0]["role"] == "assistant"
        return [float(len(c[0]["content"])) for c in completions]

    env_id = textgym.register_reward_env("testtasks/TrlChat-v0", first_message, prompts=PROMPTS, max_new_tokens=8,
                                         conversational=True, overwrite=True)
    reward, info, _ = episode(gym.make(env_id), tokenizer, " calm")
    assert reward == len(info["completion"])


# -------------------------------------------------------------- validation at make (issue 15 item 11)
def test_a_reward_parameter_no_record_provides_fails_at_registration():
    def needs_solution(completions, solution, **kwargs):
        return [0.0] * len(completions)

    with pytest.raises(rewards.RewardInputError, match=r"'solution'.*\['ground_truth', 'prompt'\]"):
        textgym.register_reward_env("testtasks/TrlMissing-v0", needs_solution, prompts=PROMPTS, overwrite=True)
    assert "testtasks/TrlMissing-v0" not in gym.registry


def test_a_builtin_reward_missing_its_field_fails_at_make():
    with pytest.raises(rewards.RewardInputError, match=r"'answer'.*\['prompt'\]"):
        gym.make("textgym/QA-v0", prompts=[{"prompt": "Who wrote Hamlet?"}])


@pytest.mark.parametrize("field", ["prompts", "completions", "completion_ids", "trainer_state"])
def test_a_record_field_that_collides_with_an_input_fails_at_make(field):
    records = [{"prompt": "Describe the sea:", field: "x"}]
    with pytest.raises(rewards.RewardInputError, match=rf"field named '{field}'.*collides.*Rename"):
        TextGenerationEnv(prompts=records, reward=lambda prompts, completions, **kw: [0.0] * len(completions))


@pytest.mark.parametrize("fallback", [float("nan"), float("inf"), "0", True])
def test_a_non_finite_reward_fallback_is_rejected_at_make(fallback):
    with pytest.raises(ValueError, match=r"reward_fallback must be None or a finite float"):
        TextGenerationEnv(prompts=PROMPTS, reward=lambda prompts, completions, **kw: [0.0], reward_fallback=fallback)


def test_an_overflowing_reward_uses_the_fallback(tokenizer):
    def huge(prompts, completions, **kwargs):
        return [10**400] * len(completions)

    env = TextGenerationEnv(prompts=PROMPTS, reward=huge, max_new_tokens=4, reward_fallback=-1.0)
    with pytest.warns(rewards.RewardWarning, match="too large for a float"):
        assert episode(env, tokenizer, " a")[0] == -1.0
    env = TextGenerationEnv(prompts=PROMPTS, reward=huge, max_new_tokens=4)
    with pytest.raises(rewards.RewardError, match=r"Reward '.*huge' returned a number too large .* index 0"):
        episode(env, tokenizer, " a")


# -------------------------------------------------------------- inputs nobody can corrupt (issue 15 item 7)
def test_a_reward_mutating_its_fields_does_not_change_the_prompt_source(tokenizer):
    records = [{"prompt": "Describe the sea:", "references": ["calm", "blue"]}]

    def greedy(prompts, completions, references, **kwargs):
        for refs in references:
            refs.append("stolen")
        return [float(len(r)) for r in references]

    env = TextGenerationEnv(prompts=records, reward=greedy, max_new_tokens=4)
    scores = [episode(env, tokenizer, " a")[0] for _ in range(3)]
    assert scores == [3.0, 3.0, 3.0]  # 2 references + the one appended this call, every episode
    assert env.unwrapped.prompt_source[0]["references"] == ["calm", "blue"]
    assert records[0]["references"] == ["calm", "blue"]


def test_one_component_clearing_its_inputs_does_not_affect_the_next():
    def vandal(prompts, completions, answer, **kwargs):
        n = len(completions)
        completions.clear()
        prompts.clear()
        answer[0] = "wrong"
        return [0.0] * n

    def exact(prompts, completions, answer, **kwargs):
        return [float(c == a) for c, a in zip(completions, answer)]

    total, components = rewards.score(
        rewards.combine({vandal: 1.0, exact: 1.0}), ["q1", "q2"], ["4", "7"], {"answer": ["4", "7"]}
    )
    assert total.tolist() == [1.0, 1.0]


def test_an_async_reward_scores_episodes_in_the_vector_env(tokenizer):
    async def judge(completions, **kwargs):
        return [float(len(c)) for c in completions]

    env = TextGenerationVectorEnv(num_envs=2, prompts=PROMPTS, reward=judge, max_new_tokens=4)
    env.reset(seed=0)
    token = tokenizer.encode(" calm")[0]
    env.step(np.full(2, token))
    _, step_rewards, terminated, _, infos = env.step(np.full(2, tokenizer.eos_token_id))
    assert terminated.all() and step_rewards.tolist() == [float(len(tokenizer.decode([token])))] * 2
