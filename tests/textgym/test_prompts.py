"""PromptSource: every accepted input kind, sampling, and a clear error for each bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textgym.prompts import PromptSource, as_prompt_source

RECORDS = [
    {"prompt": "Q: 2 + 3 = ? A:", "answer": "5"},
    {"prompt": "Q: 4 + 4 = ? A:", "answer": "8"},
    {"prompt": "Café ? A:", "answer": "0"},
]


class FakeDataset:
    """Duck-types datasets.Dataset: __len__, __getitem__ -> dict, column_names."""

    def __init__(self, rows):
        self.rows = rows
        self.column_names = list(rows[0])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return dict(self.rows[index])


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_list_of_dicts():
    source = as_prompt_source(RECORDS)
    assert len(source) == 3 and source[2] == RECORDS[2] and source.field_names == ["answer"]
    assert source.prompts == [r["prompt"] for r in RECORDS]
    source[0]["answer"] = "changed"  # the source holds copies: the caller's list is untouched
    assert RECORDS[0]["answer"] == "5"


def test_builtin_task_by_name_or_by_task_argument():
    by_name = as_prompt_source("arithmetic")
    by_task = as_prompt_source(None, task="arithmetic")
    assert len(by_name) == len(by_task) > 3000
    assert by_name.field_names == ["answer"]  # the demonstration stays in the record but is no reward field
    assert by_name[0]["completion"].strip() == by_name[0]["answer"]
    assert by_name.prompts == by_task.prompts
    assert len(as_prompt_source("QA")) > 0  # case-insensitive


def test_jsonl_file(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [json.dumps(r, ensure_ascii=False) for r in RECORDS] + [""])
    for spec in (path, str(path)):
        source = as_prompt_source(spec)
        assert [source[i] for i in range(len(source))] == RECORDS


def test_dataset_like_object():
    source = as_prompt_source(FakeDataset(RECORDS))
    assert len(source) == 3 and source[1]["answer"] == "8" and source.field_names == ["answer"]
    with pytest.raises(ValueError, match="no 'prompt' column.*rename_column"):
        as_prompt_source(FakeDataset([{"text": "hi"}]))


def test_prompt_source_passes_through_and_samples_with_the_callers_rng():
    source = as_prompt_source(RECORDS)
    assert as_prompt_source(source) is source
    draws = [source.sample(np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]  # same seed, same draw
    rng = np.random.default_rng(0)
    counts = np.bincount([source.sample(rng)[0] for _ in range(3000)], minlength=3)
    assert counts.min() > 850  # uniform over the 3 records
    index, record = source.sample(rng)
    assert record is source[index]


def test_bad_records_name_the_record_and_the_fix():
    with pytest.raises(ValueError, match="record 1 has no 'prompt' key.*keys found: \\['text'\\]"):
        as_prompt_source([{"prompt": "ok"}, {"text": "no prompt"}])
    with pytest.raises(ValueError, match="record 0 has prompt '  '"):
        as_prompt_source([{"prompt": "  "}])
    with pytest.raises(ValueError, match="record 0 has prompt 3"):
        as_prompt_source([{"prompt": 3}])
    with pytest.raises(ValueError, match="record 1 is a str, not a dict"):
        as_prompt_source([{"prompt": "ok"}, "just a string"])
    with pytest.raises(ValueError, match=r"record 2 has different fields.*missing \['answer'\].*extra \['label'\]"):
        as_prompt_source([{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": "2"}, {"prompt": "c", "label": 1}])
    with pytest.raises(ValueError, match="holds no prompt records"):
        as_prompt_source([])
    with pytest.raises(ValueError, match="holds no prompt records"):
        PromptSource([])


def test_bad_jsonl_names_the_line(tmp_path):
    broken = write_jsonl(tmp_path / "broken.jsonl", ['{"prompt": "a"}', "", '{"prompt": "b",'])
    with pytest.raises(ValueError, match="broken.jsonl:3 is not valid JSON"):
        as_prompt_source(broken)
    no_prompt = write_jsonl(tmp_path / "np.jsonl", ['{"prompt": "a"}', '{"question": "b"}'])
    with pytest.raises(ValueError, match="line 2 has no 'prompt' key"):
        as_prompt_source(no_prompt)
    empty = write_jsonl(tmp_path / "empty.jsonl", [""])
    with pytest.raises(ValueError, match="holds no prompt records"):
        as_prompt_source(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        as_prompt_source(tmp_path / "missing.jsonl")


def test_a_jsonl_with_a_byte_order_mark_is_read_as_if_it_had_none(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"prompt": "Caf\u00e9?", "answer": "oui"}\n{"prompt": "b", "answer": "c"}\n'.encode())
    source = as_prompt_source(path)
    assert source.prompts == ["Caf\u00e9?", "b"] and source.field_names == ["answer"]


def test_a_latin1_jsonl_names_the_file_line_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"prompt": "ok"}\n{"prompt": "Caf\u00e9?"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.jsonl:2 is not UTF-8 \(byte 0xe9 at column 16\).*iconv -f latin1"):
        as_prompt_source(path)


def test_a_lone_surrogate_names_the_record_or_line(tmp_path):
    path = write_jsonl(tmp_path / "surrogate.jsonl", ['{"prompt": "fine"}', '{"prompt": "bad \\ud800 half"}'])
    with pytest.raises(ValueError, match=r"surrogate.jsonl: line 2 field 'prompt' holds a lone surrogate '\\ud800' at character 4"):
        as_prompt_source(path)
    with pytest.raises(ValueError, match=r"list: record 0 field 'completion' holds a lone surrogate"):
        as_prompt_source([{"prompt": "a", "completion": "b\udc80"}])
    assert as_prompt_source([{"prompt": "\U0001f600 a pair is fine"}]).prompts == ["\U0001f600 a pair is fine"]


def test_unsupported_inputs():
    with pytest.raises(ValueError, match="neither a built-in task"):
        as_prompt_source("poetry")
    with pytest.raises(ValueError, match="pass data"):
        as_prompt_source(None)
    with pytest.raises(TypeError, match="Got one dict"):
        as_prompt_source({"prompt": "a"})
    with pytest.raises(TypeError, match="Cannot read prompts from a int"):
        as_prompt_source(42)
