"""TRL's reward-function shapes (from its GRPO docs, written here) score the right text, called as TRL calls them.

Each test asserts the reward's value on known text, so a reward can never silently score the prompt instead of
the completion (issue 16, item 1).
"""

from __future__ import annotations

import asyncio
import re
import threading

import numpy as np
import pytest

from textgym import rewards
from textgym.rewards import RewardError, RewardInputError, RewardState, combine, score

PROMPTS = ["What is 2+2? Think step by step please.", "Name a colour:"]
COMPLETIONS = ["4", "blue sky"]


def test_completions_and_kwargs_only():
    def reward_len(completions, **kwargs):
        return [float(len(c)) for c in completions]

    rewards.make(reward_len)  # accepted at make (it used to be refused)
    total, _ = score(reward_len, PROMPTS, COMPLETIONS)
    assert total.tolist() == [1.0, 8.0]  # len(completion), never len(prompt)


def test_a_named_record_field_arrives_as_its_column():
    def boxed(completions, ground_truth, **kwargs):
        found = [re.search(r"\\boxed\{(.*?)\}", c) for c in completions]
        return [float(m is not None and m.group(1) == gt) for m, gt in zip(found, ground_truth)]

    total, _ = score(boxed, PROMPTS, [r"so \boxed{4}", r"\boxed{red}"], {"ground_truth": ["4", "blue"]})
    assert total.tolist() == [1.0, 0.0]


def test_trainer_state_parameter_scores_the_completion_not_the_prompt():
    seen = []

    def curriculum(completions, trainer_state=None, **kwargs):
        seen.append(trainer_state)
        return [float(len(c)) for c in completions]

    state = RewardState(global_step=12, num_episodes=3)
    total, _ = score(curriculum, PROMPTS, COMPLETIONS, trainer_state=state)
    assert total.tolist() == [1.0, 8.0]
    assert seen == [state] and seen[0].global_step == 12


def test_keyword_only_signature():
    def kw_only(*, prompts, completions, **kwargs):
        return [float(len(p) - len(c)) for p, c in zip(prompts, completions)]

    total, _ = score(kw_only, PROMPTS, COMPLETIONS)
    assert total.tolist() == [len(PROMPTS[0]) - 1.0, len(PROMPTS[1]) - 8.0]


def test_completion_ids_are_passed_as_lists_of_ints():
    seen = []

    def num_tokens(completion_ids, **kwargs):
        seen.append(completion_ids)
        return [float(len(ids)) for ids in completion_ids]

    total, _ = score(num_tokens, PROMPTS, COMPLETIONS, completion_ids=[np.array([5]), [7, 8, 9]])
    assert total.tolist() == [1.0, 3.0]
    assert seen == [[[5], [7, 8, 9]]] and all(type(i) is int for ids in seen[0] for i in ids)


def test_async_reward_is_awaited():
    async def judge(prompts, completions, **kwargs):
        await asyncio.sleep(0)
        return [float(len(c)) for c in completions]

    total, _ = score(judge, PROMPTS, COMPLETIONS)
    assert total.tolist() == [1.0, 8.0]


def test_async_components_of_a_combination_run_concurrently():
    both_started = threading.Barrier(2, timeout=5)  # deadlocks (BrokenBarrierError) unless both run at once

    async def wait_for_other():
        await asyncio.get_running_loop().run_in_executor(None, both_started.wait)

    async def first(completions, **kwargs):
        await wait_for_other()
        return [1.0] * len(completions)

    async def second(completions, **kwargs):
        await wait_for_other()
        return [float(len(c)) for c in completions]

    total, components = score(combine({first: 1.0, second: 2.0}), PROMPTS, COMPLETIONS)
    assert total.tolist() == [3.0, 17.0]


def test_async_reward_inside_a_running_event_loop():
    async def judge(completions, **kwargs):
        return [float(len(c)) for c in completions]

    async def main():
        return score(judge, PROMPTS, COMPLETIONS)[0].tolist()

    assert asyncio.run(main()) == [1.0, 8.0]


def test_none_means_not_applicable_in_a_weighted_combination():
    def math_only(prompts, completions, task, **kwargs):
        return [float(c.strip() == "4") if t == "math" else None for c, t in zip(completions, task)]

    def colour_only(completions, task, **kwargs):
        return [float("blue" in c) if t == "colour" else None for c, t in zip(completions, task)]

    reward = combine({math_only: 2.0, colour_only: 3.0})
    total, components = score(reward, PROMPTS, COMPLETIONS, {"task": ["math", "colour"]})
    assert total.tolist() == [2.0, 3.0]  # each sample's sum skips the component that returned None
    math_scores = components[rewards.reward_name(math_only)]
    assert math_scores[0] == 1.0 and np.isnan(math_scores[1])  # NaN marks "not applicable", as in TRL's logs


def test_a_sample_every_component_skips_has_no_score():
    def never(completions, **kwargs):
        return [None] * len(completions)

    def first_only(completions, **kwargs):
        return [1.0] + [None] * (len(completions) - 1)

    reward = combine({never: 1.0, first_only: 1.0})
    with pytest.raises(RewardError, match=r"Every component .* returned None .* sample 1 .*'blue sky'"):
        score(reward, PROMPTS, COMPLETIONS)
    with pytest.warns(rewards.RewardWarning, match="fallback -1.0 for 1 of 2"):
        total, _ = score(reward, PROMPTS, COMPLETIONS, fallback=-1.0)
    assert total.tolist() == [1.0, -1.0]


def test_conversational_wrapper_passes_message_lists():
    def format_reward(completions, **kwargs):
        contents = [completion[0]["content"] for completion in completions]
        return [float(bool(re.match(r"^<think>.*</think>", c))) for c in contents]

    def user_text_length(prompts, completions, **kwargs):
        assert completions[0] == [{"role": "assistant", "content": "<think>x</think>"}]
        return [float(len(p[-1]["content"])) for p in prompts]

    chat = rewards.conversational(format_reward)
    total, _ = score(chat, PROMPTS, ["<think>x</think>", "no"])
    assert total.tolist() == [1.0, 0.0]
    total, _ = score(rewards.conversational(user_text_length), PROMPTS, ["<think>x</think>", "no"])
    assert total.tolist() == [float(len(PROMPTS[0])), float(len(PROMPTS[1]))]


def test_builtins_score_conversational_completions_on_their_text():
    chat = [[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "7"}]]
    total, _ = score("numeric_match", PROMPTS, chat, {"answer": ["4", "5"]})
    assert total.tolist() == [1.0, 0.0]


def test_textgym_positional_shapes_keep_working():
    def old_style(prompts, completions, **fields):
        return [float(len(c)) for c in completions]

    total, _ = score(old_style, PROMPTS, COMPLETIONS, {"answer": ["1", "2"]})
    assert total.tolist() == [1.0, 8.0]
    total, _ = score(lambda p, c, **kw: [float(len(x)) for x in c], PROMPTS, COMPLETIONS, {"answer": ["1", "2"]})
    assert total.tolist() == [1.0, 8.0]  # textgym's old positional lambdas: (prompts, completions) by position


def test_a_parameter_no_field_provides_is_a_clear_error():
    def needs_solution(completions, solution, **kwargs):
        return [0.0] * len(completions)

    with pytest.raises(RewardInputError, match=r"'solution'.*record keys: \['answer', 'prompt'\]"):
        score(needs_solution, PROMPTS, COMPLETIONS, {"answer": ["1", "2"]})


def test_a_singular_prompt_or_completion_parameter_says_to_use_the_batched_name():
    def per_sample(completion, **kwargs):
        return [0.0]

    with pytest.raises(RewardInputError, match=r"parameter 'completion'.*Rename it 'completions'"):
        score(per_sample, PROMPTS[:1], COMPLETIONS[:1])


@pytest.mark.parametrize("value, what", [(10**400, "too large for a float"), (float("inf"), "inf")])
def test_an_overflowing_or_infinite_value_is_handled_like_any_non_finite_reward(value, what):
    def huge(completions, **kwargs):
        return [1.0, value]

    with pytest.raises(RewardError, match=rf"Reward '.*huge' returned .*{what}.* at index 1 for completion 'blue sky'"):
        score(huge, PROMPTS, COMPLETIONS)
    with pytest.warns(rewards.RewardWarning, match="fallback 0.0 for 1 of 2"):
        total, _ = score(huge, PROMPTS, COMPLETIONS, fallback=0.0)
    assert total.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("field", ["prompts", "completions", "completion_ids", "trainer_state"])
def test_a_field_named_like_a_standard_input_is_rejected(field):
    with pytest.raises(ValueError, match=rf"may not be named '{field}'"):
        score(lambda completions, **kw: [0.0, 0.0], PROMPTS, COMPLETIONS, {field: [1, 2]})
