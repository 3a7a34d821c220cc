"""agents.commands helpers that the CLI tests do not reach directly."""

from agents.commands import _records_fingerprint


def test_the_warm_start_cache_key_changes_with_the_demonstrations():
    records = [{"prompt": "Q: 1 + 1 = ? A:", "completion": " 2", "answer": "2"}]
    same = [dict(records[0])]
    new_demo = [{**records[0], "completion": " two"}]
    new_prompt = [{**records[0], "prompt": "Q: 1 + 2 = ? A:"}]
    assert _records_fingerprint(records) == _records_fingerprint(same)
    assert len({_records_fingerprint(r) for r in (records, new_demo, new_prompt)}) == 3
