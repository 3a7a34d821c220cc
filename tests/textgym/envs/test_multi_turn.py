"""Multi-turn episodes in the env core: turns end at EOS or a stop sequence, the env appends its text, the agent
mask marks the agent's tokens, rewards land per turn, the token budget truncates; single env and vector env agree."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from textgym.envs.multi_turn import MultiTurnTask, Turn
from textgym.envs.text_env import TextGenerationEnv
from textgym.envs.vector_env import TextGenerationVectorEnv

PROMPTS = [{"prompt": "Agent:", "target": "hi"}, {"prompt": "Start. Agent:", "target": "yes"}]


class Echo(MultiTurnTask):
    """Ends when the agent says the target; otherwise the user repeats the request (-0.1 per miss)."""

    stop_sequences = ("?",)

    def start(self, record):
        return {"turns": 0, "target": record["target"]}

    def turn(self, state, agent_text):
        state["turns"] += 1
        if state["target"] in agent_text:
            return Turn(reward=1.0, done=True, info={"solved": True})
        return Turn(env_text=f"\nUser: say {state['target']}\nAgent:", reward=-0.1)

    def budget_end(self, state, agent_text):
        return -0.5


def make_env(max_new_tokens=40, **kw):
    return TextGenerationEnv(prompts=PROMPTS, multi_turn=Echo(), max_new_tokens=max_new_tokens, **kw)


def test_a_stop_sequence_ends_the_turn_and_the_env_appends_its_text(tokenizer):
    env = make_env()
    obs, _ = env.reset(options={"prompt_index": 0})
    P = env.max_prompt_tokens
    what, mark = tokenizer.encode(" what?")
    obs, reward, term, trunc, info = env.step(what)
    assert (reward, term, trunc) == (0.0, False, False) and "turn" not in info
    obs, reward, term, trunc, info = env.step(mark)  # "?" is the stop sequence
    user = tokenizer.encode("\nUser: say hi\nAgent:")
    assert (reward, term, trunc) == (pytest.approx(-0.1), False, False)
    assert info["turn"] == 1 and info["agent_turn"] == " what?" and info["num_env_tokens"] == len(user)
    n = 2 + len(user)
    assert obs["input_ids"][P : P + n].tolist() == [what, mark, *user]
    assert obs["attention_mask"][P : P + n].all() and not obs["attention_mask"][P + n :].any()
    assert obs["agent_mask"][P : P + n].tolist() == [1, 1] + [0] * len(user)
    assert not obs["agent_mask"][:P].any()  # the prompt is not the agent's
    assert info["num_new_tokens"] == n


def test_eos_ends_a_turn_and_the_task_ends_the_episode_with_per_turn_rewards(tokenizer):
    env = make_env()
    env.reset(options={"prompt_index": 0})
    eos = tokenizer.eos_token_id
    rewards, infos = [], []
    for action in [*tokenizer.encode(" no"), eos, *tokenizer.encode(" hi"), eos]:
        obs, reward, term, trunc, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
    assert term and not trunc
    assert rewards == pytest.approx([0.0, -0.1, 0.0, 1.0])
    assert infos[-1]["solved"] is True and infos[-1]["turn"] == 2
    assert infos[-1]["reward_components"] == {"task": pytest.approx(0.9)}
    assert infos[-1]["completion"] == " no\nUser: say hi\nAgent: hi"  # EOS tokens are not text
    P = env.max_prompt_tokens
    assert obs["agent_mask"][P:].sum() == 4  # " no", EOS, " hi", EOS
    assert "[ no]<eos>" in env.render() and env.render().endswith("[ hi]<eos><done>")
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step(eos)


def test_the_budget_truncates_inside_an_agent_turn_with_the_tasks_budget_reward(tokenizer):
    env = make_env(max_new_tokens=3)
    env.reset(options={"prompt_index": 0})
    word = tokenizer.encode(" no")[0]
    out = [env.step(word) for _ in range(3)]
    reward, term, trunc, info = out[-1][1:]
    assert [o[1] for o in out] == [0.0, 0.0, -0.5] and trunc and not term
    assert info["reward_components"]["task"] == -0.5


def test_the_budget_truncates_inside_the_envs_text(tokenizer):
    env = make_env(max_new_tokens=6)  # the user's reply needs 11 tokens: it is cut, no room for the agent
    env.reset(options={"prompt_index": 0})
    obs, reward, term, trunc, info = env.step(tokenizer.eos_token_id)
    assert trunc and not term and reward == pytest.approx(-0.1 - 0.5)
    assert info["num_env_tokens"] == 5 and obs["attention_mask"][env.max_prompt_tokens :].all()


def test_an_extra_reward_scores_the_whole_conversation_at_the_end(tokenizer):
    def length(completions, **kwargs):
        return [float(len(c)) for c in completions]

    env = make_env(reward=length)
    env.reset(options={"prompt_index": 0})
    *_, info = env.step(tokenizer.encode(" hi")[0])
    _, reward, term, _, info = env.step(tokenizer.eos_token_id)
    assert term and reward == pytest.approx(1.0 + len(" hi"))
    assert info["reward_components"]["task"] == 1.0


def test_multi_turn_env_passes_both_env_checkers_without_warnings():
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_env()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)


def test_flat_observation_keeps_ids_and_mask_and_info_counts_env_tokens(tokenizer):
    env = make_env(observation="flat")
    obs, _ = env.reset(options={"prompt_index": 0})
    assert obs.shape == (2 * (env.max_prompt_tokens + env.max_new_tokens),)
    _, _, _, _, info = env.step(tokenizer.eos_token_id)
    assert info["num_env_tokens"] == len(tokenizer.encode("\nUser: say hi\nAgent:"))


def test_bad_tasks_are_clear_errors(tokenizer):
    with pytest.raises(TypeError, match="lacks start, turn"):
        TextGenerationEnv(prompts=PROMPTS, multi_turn=object())

    class NoStops(Echo):
        stop_sequences = "?"

    with pytest.raises(TypeError, match="tuple of non-empty strings"):
        TextGenerationEnv(prompts=PROMPTS, multi_turn=NoStops())

    class BadTurn(Echo):
        def turn(self, state, agent_text):
            return 1.0

    env = TextGenerationEnv(prompts=PROMPTS, multi_turn=BadTurn())
    env.reset()
    with pytest.raises(TypeError, match="must return a textgym Turn"):
        env.step(tokenizer.eos_token_id)

    class NanTurn(Echo):
        def turn(self, state, agent_text):
            return ("", float("nan"), False)

    env = TextGenerationEnv(prompts=PROMPTS, multi_turn=NanTurn())
    env.reset()
    with pytest.raises(ValueError, match="finite"):
        env.step(tokenizer.eos_token_id)


def scripted_actions(tokenizer):
    """Slot-dependent action streams: slot 0 misses once then answers, slot 1 answers at once."""
    eos = tokenizer.eos_token_id
    return [
        [*tokenizer.encode(" no"), eos, *tokenizer.encode(" hi"), eos],
        [*tokenizer.encode(" yes"), eos],
    ]


def slot_info(infos, slot):
    """One slot's entries of a vector env's info dict (Gymnasium's ``_key`` masks), nested dicts left out."""
    return {k: v[slot] for k, v in infos.items()
            if not k.startswith("_") and not isinstance(v, dict) and infos["_" + k][slot]}


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_vector_env_matches_the_single_env_slot_by_slot_in_every_autoreset_mode(tokenizer, mode):
    streams = scripted_actions(tokenizer)
    envs = TextGenerationVectorEnv(num_envs=2, prompts=PROMPTS, multi_turn=Echo(), max_new_tokens=40,
                                   autoreset_mode=mode)
    obs, _ = envs.reset(options={"prompt_indices": [0, 1]})
    assert envs.observation_space.contains(obs)
    single = make_env()
    expected = []
    for slot, actions in enumerate(streams):
        single.reset(options={"prompt_index": slot})
        expected.append([single.step(a) for a in actions])
    steps = max(len(s) for s in streams)
    for t in range(steps):
        # A slot that finished takes a filler action (ignored or starting its next episode).
        actions = np.array([s[t] if t < len(s) else tokenizer.eos_token_id for s in streams])
        obs, rewards, term, trunc, infos = envs.step(actions)
        for slot in range(2):
            if t >= len(streams[slot]):
                continue
            s_obs, s_reward, s_term, s_trunc, s_info = expected[slot][t]
            assert rewards[slot] == pytest.approx(s_reward) and term[slot] == s_term and trunc[slot] == s_trunc
            done_now = s_term or s_trunc
            if mode == AutoresetMode.SAME_STEP and done_now:
                final = infos["final_obs"][slot]
                got_info = slot_info(infos["final_info"], slot)
            else:
                final = {k: v[slot] for k, v in obs.items()}
                got_info = slot_info(infos, slot)
            for key in ("input_ids", "attention_mask", "agent_mask"):
                np.testing.assert_array_equal(final[key], s_obs[key])
            if "turn" in s_info:
                assert got_info["turn"] == s_info["turn"] and got_info["agent_turn"] == s_info["agent_turn"]
                assert got_info["num_env_tokens"] == s_info["num_env_tokens"]
            if done_now:
                assert got_info["completion"] == s_info["completion"]
    if mode == AutoresetMode.DISABLED:
        obs, rewards, term, _, _ = envs.step(np.full(2, tokenizer.eos_token_id))
        assert term.all() and (rewards == 0).all()  # frozen until reset
    if mode == AutoresetMode.NEXT_STEP:
        # Slot 1 finished at step 2 and reset at step 3: its new episode has no agent tokens yet or one.
        assert obs["agent_mask"][1, envs.max_prompt_tokens :].sum() <= 1
