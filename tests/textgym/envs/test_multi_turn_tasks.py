"""The three built-in multi-turn tasks (their data: tests/textgym/test_data_multi_turn.py): the tasks' rules (a scripted good strategy earns the top return, degenerate ones do not), the safe calculator,
and every id under gym.make_vec in every mode."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import textgym  # noqa: F401  (registers the ids)
from envs_registry import BUILTIN_ENVS
from textgym.data import DATA_TASKS, MULTI_TURN_TASKS
from textgym.envs.multi_turn_tasks import CalculatorTask, ExpressionError, evaluate_arithmetic

IDS = {"calculator": "textgym/Calculator-v0", "guess_number": "textgym/GuessNumber-v0",
       "multi_turn_dialogue": "textgym/MultiTurnDialogue-v0"}


def play(env, next_turn):
    """Play one episode turn by turn: ``next_turn(k, env_text)`` gives the agent's k-th turn as text; its tokens
    are stepped, then EOS unless a stop sequence ended the turn. Returns (return, last info, last obs)."""
    tok = env.unwrapped.tokenizer
    total, env_text, k = 0.0, "", 0
    while True:
        for action in [*tok.encode(next_turn(k, env_text)), tok.eos_token_id]:
            obs, reward, term, trunc, info = env.step(action)
            total += reward
            if term or trunc:
                return total, info, obs
            if "turn" in info:
                break
        env_text, k = info["env_text"], k + 1


def good_strategy(task, record):
    """The strategy each task is built to reward (one tool call; binary search; one question, one confirmation)."""
    if task == "calculator":
        turns = [f" <calc>{record['expression'].replace(' ', '')}</calc>", f" {record['answer']}"]
        return lambda k, env_text: turns[k]
    if task == "guess_number":
        bounds = {"low": record["low"], "high": record["high"], "guess": None}

        def search(k, env_text):
            if "higher" in env_text:
                bounds["low"] = bounds["guess"] + 1
            elif "lower" in env_text:
                bounds["high"] = bounds["guess"] - 1
            bounds["guess"] = (bounds["low"] + bounds["high"]) // 2
            return f" {bounds['guess']}"

        return search
    turns = re.split(r"\nUser: .*?\nAgent:", record["completion"])  # the transcript without the user's lines
    assert turns == record["agent_turns"]
    return lambda k, env_text: turns[k]


def test_the_multi_turn_ids_are_registered_and_their_data_stays_out_of_the_tokenizer_corpus():
    assert set(IDS.values()) <= set(BUILTIN_ENVS) and set(IDS) == set(MULTI_TURN_TASKS)
    assert not set(MULTI_TURN_TASKS) & set(DATA_TASKS)  # corpus_text(), hence the default tokenizer, is unchanged
    for task, env_id in IDS.items():
        assert gym.make(env_id).unwrapped.config.multi_turn is not None


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("task", MULTI_TURN_TASKS)
def test_the_good_strategy_earns_the_top_return_within_the_budget(task, split):
    env = gym.make(IDS[task], split=split)
    records = env.unwrapped.prompt_source
    step = max(1, len(records) // 60)  # a spread of records: the whole calculator split takes seconds
    returns = []
    for index in range(0, len(records), step):
        env.reset(options={"prompt_index": index})
        total, info, _ = play(env, good_strategy(task, records[index]))
        assert not info.get("TimeLimit.truncated", False)
        returns.append(total)
        if task == "calculator":
            assert info["correct"] and info["tool_calls"] == 1 and total == pytest.approx(0.98)
        elif task == "guess_number":
            span = records[index]["high"] - records[index]["low"] + 1
            assert info["solved"] and info["guesses"] <= int(np.ceil(np.log2(span + 1)))
        else:
            assert info["goal_reached"] and total == pytest.approx(1.2)
    assert len(returns) >= 20


def test_calculator_rewards_the_answer_not_the_call(tokenizer):
    env = gym.make("textgym/Calculator-v0")
    record = env.unwrapped.prompt_source[0]
    env.reset(options={"prompt_index": 0})
    total, info, _ = play(env, lambda k, e: f" {int(record['answer']) + 1}")  # a wrong guess, no tool
    assert total == 0.0 and info["correct"] is False and info["tool_calls"] == 0
    env.reset(options={"prompt_index": 0})
    total, info, _ = play(env, lambda k, e: f" {record['answer']}")  # right without the tool: no call cost
    assert total == 1.0
    env.reset(options={"prompt_index": 0})
    total, info, _ = play(env, lambda k, e: " <calc>1+1</calc>")  # calls forever: the token budget stops it
    assert "correct" not in info and total == pytest.approx(-0.02 * 3)  # the 4th call is cut by the budget
    one_call = gym.make("textgym/Calculator-v0", multi_turn=CalculatorTask(call_cost=0.1, max_calls=1))
    one_call.reset(options={"prompt_index": 0})
    total, info, _ = play(one_call, lambda k, e: " <calc>1+1</calc>")  # the second call ends the episode
    assert info["correct"] is False and info["tool_calls"] == 2 and total == pytest.approx(-0.2)
    env.reset(options={"prompt_index": 0})
    *_, info = env.step(tokenizer.encode(" <calc>__import__('os')</calc>")[0])
    for action in tokenizer.encode(" <calc>__import__('os')</calc>")[1:]:
        *_, info = env.step(action)
    assert info["env_text"] == " = error\n"


@pytest.mark.parametrize("expression, value", [("37*48", 1776), (" 37 * 48 + 12", 1788), ("-(3-10)*2", 14),
                                               ("((2))", 2)])
def test_the_calculator_evaluates_integer_arithmetic(expression, value):
    assert evaluate_arithmetic(expression) == value


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "2**100", "9*" * 40 + "9", "1.5*2",
                                        "7/2", "x*2", "(1", "[1]*3", "'a'*3", "10**20*10**20"])
def test_the_calculator_refuses_anything_else_without_eval(expression):
    with pytest.raises(ExpressionError):
        evaluate_arithmetic(expression)


def test_guess_number_pays_more_for_fewer_guesses():
    env = gym.make("textgym/GuessNumber-v0")
    records = env.unwrapped.prompt_source
    index = next(i for i in range(len(records)) if records[i]["high"] == 20 and records[i]["target"] == 15)
    env.reset(options={"prompt_index": index})
    binary, _, _ = play(env, good_strategy("guess_number", records[index]))
    env.reset(options={"prompt_index": index})
    linear, info, _ = play(env, lambda k, e: f" {k + 1}")  # 1, 2, 3...: 10 misses, then out of guesses
    assert linear == 0.0 and info["solved"] is False and info["guesses"] == 10
    env.reset(options={"prompt_index": index})
    close, info, _ = play(env, lambda k, e: f" {13 + k}")  # 13, 14, 15
    assert close == pytest.approx(0.8) and binary > close > linear
    env.reset(options={"prompt_index": index})
    _, _, _, _, info = env.step(env.unwrapped.tokenizer.eos_token_id)  # an empty turn counts, asks for a number
    assert info["env_text"] == " a number, please\nGuess:"


def test_the_scripted_user_wants_the_goal_politely_and_briefly():
    env = gym.make("textgym/MultiTurnDialogue-v0")
    records = env.unwrapped.prompt_source
    index = next(i for i in range(len(records)) if records[i]["kind"] == "booking" and not records[i]["known"])
    goal = records[index]["goal"]
    confirm = f" Your table for {goal['people']} on {goal['day']} at {goal['time']} is booked."
    env.reset(options={"prompt_index": index})
    rude, _, _ = play(env, lambda k, e: [" How many people, which day and what time?", confirm][k])
    assert rude == pytest.approx(1.0)  # reached, not polite
    env.reset(options={"prompt_index": index})
    slow, _, _ = play(env, lambda k, e: [" How many people?", " Which day?", " What time?", confirm][k])
    assert slow == pytest.approx(1.0 - 0.2)  # two turns more than needed
    env.reset(options={"prompt_index": index})
    total, info, _ = play(env, lambda k, e: [" It is booked.", " Booked, thank you."][k % 2])
    assert total == 0.0 and not info.get("goal_reached")  # confirming without the details never ends well
    env.reset(options={"prompt_index": index})
    tok = env.unwrapped.tokenizer
    for action in [*tok.encode(" It is booked."), tok.eos_token_id]:
        *_, info = env.step(action)
    assert info["env_text"].startswith("\nUser: No, that is not right:") and goal["day"] in info["env_text"]


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync", "async"])
@pytest.mark.parametrize("env_id", sorted(IDS.values()))
def test_every_multi_turn_id_runs_under_make_vec_in_every_mode(env_id, mode, tokenizer):
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode)
    try:
        obs, _ = envs.reset(seed=0)
        assert "agent_mask" in obs
        ended = 0
        for step in range(2 * envs.unwrapped.max_new_tokens if mode == "vector_entry_point" else 60):
            obs, rewards, term, trunc, infos = envs.step(np.full(2, tokenizer.eos_token_id if step % 3 == 2 else 5))
            ended += int((term | trunc).sum())
            assert envs.observation_space.contains(obs)
        assert ended >= 1
    finally:
        envs.close()


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_every_multi_turn_id_runs_natively_in_every_autoreset_mode(mode, tokenizer):
    for env_id in IDS.values():
        envs = gym.make_vec(env_id, num_envs=3, autoreset_mode=mode)
        envs.reset(seed=1)
        for _ in range(30):
            obs, *_ = envs.step(np.full(3, tokenizer.eos_token_id))
        assert (obs["agent_mask"] <= obs["attention_mask"]).all()


@pytest.mark.parametrize("task", MULTI_TURN_TASKS)
def test_every_demonstration_replays_to_the_top_return_with_an_exact_agent_mask(task, tokenizer):
    from textgym.envs.text_actions import TextActionEnv, replay_turns

    for split in ("train", "test"):
        env = TextActionEnv(gym.make(IDS[task], split=split))
        records = env.unwrapped.prompt_source
        top = {"calculator": 0.98, "multi_turn_dialogue": 1.2}
        for index in range(0, len(records), max(1, len(records) // 50)):
            record = records[index]
            episode = replay_turns(env, record["agent_turns"], index)
            assert episode["turns_played"] == len(record["agent_turns"]) and episode["info"]
            if task in top:
                assert episode["return"] == pytest.approx(top[task])
            else:
                assert episode["info"]["solved"] and episode["return"] >= 0.1
            agent = episode["agent_mask"].astype(bool)
            assert (agent <= episode["attention_mask"].astype(bool)).all()
            agent_ids = episode["input_ids"][agent]
            assert tokenizer.decode(agent_ids.tolist()) == "".join(record["agent_turns"])  # EOS decodes to ""
            conversation = episode["input_ids"][env.unwrapped.max_prompt_tokens:][episode["attention_mask"][env.unwrapped.max_prompt_tokens:] == 1]
            assert tokenizer.decode(conversation.tolist()) == record["completion"]


def test_replay_turns_on_a_single_turn_task_marks_the_completion():
    from textgym.envs.text_actions import replay_turns

    env = gym.make("textgym/Arithmetic-v0")
    record = env.unwrapped.prompt_source[5]
    episode = replay_turns(env, [record["completion"]], 5)
    assert episode["return"] == 1.0 and episode["turns_played"] == 1
    P = env.unwrapped.max_prompt_tokens
    assert episode["agent_mask"][:P].sum() == 0 and (episode["agent_mask"][P:] == episode["attention_mask"][P:]).all()
