"""The shared reader and writers fail loudly and leave nothing half-written."""
from __future__ import annotations

import json

import pytest

from data_pipeline.schema import check_neqa, check_obqa, load_neqa, load_obqa
from neqa.io import DataError, FieldError, atomic_open, read_jsonl, write_jsonl


def write(tmp_path, *lines):
    p = tmp_path / "f.jsonl"
    p.write_text("".join(line + "\n" for line in lines))
    return p


GOOD = '{"question": "q", "choices": ["a", "b"], "answer": 1}'


@pytest.mark.parametrize("line, field, words", [
    ('{"question": "q", "choices": ["a", "b"], "answer": 1', None, "malformed JSON"),
    ('["q", "a", "b"]', None, "expected a JSON object"),
    ('{"choices": ["a", "b"], "answer": 1}', "question", "missing"),
    ('{"question": "q", "choices": ["a", "b", "c"], "answer": 1}', "choices", "expected 2 choices"),
    ('{"question": "q", "choices": ["a", 3], "answer": 1}', "choices", "not a list of strings"),
    ('{"question": "q", "choices": ["a", "b"], "answer": 2}', "answer", "out of range"),
    ('{"question": "q", "choices": ["a", "b"], "answer": true}', "answer", "not an integer"),
    ('{"question": "q", "choices": ["a", "b"], "answer": "1"}', "answer", "not an integer"),
])
def test_neqa_errors_name_file_line_and_field(tmp_path, line, field, words):
    p = write(tmp_path, GOOD, "", line)  # the blank line still counts
    with pytest.raises(DataError) as e:
        load_neqa(p)
    assert e.value.line == 3 and e.value.field == field and str(p) in str(e.value)
    assert words in str(e.value)
    if field:
        assert f"line 3, field '{field}'" in str(e.value)


def test_obqa_errors(tmp_path):
    ok = {"id": "1", "question": {"stem": "s", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]},
          "answerKey": "A"}
    check_obqa(ok)
    for broken, field in ((dict(ok, answerKey="C"), "answerKey"),
                          ({k: v for k, v in ok.items() if k != "id"}, "id"),
                          (dict(ok, question={"stem": "s", "choices": [{"text": "a", "label": "A"}]}),
                           "question.choices"),
                          (dict(ok, question={"stem": "s", "choices": [{"text": "a"}, {"text": "b", "label": "B"}]}),
                           "question.choices[0]")):
        with pytest.raises(FieldError) as e:
            check_obqa(broken)
        assert e.value.field == field
        p = write(tmp_path, json.dumps(ok), json.dumps(broken))
        with pytest.raises(DataError, match=rf"line 2, field '{field.replace('[', '.').replace(']', '.')}'"):
            load_obqa(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_check_neqa_accepts_good_records():
    check_neqa({"question": "q", "choices": ["a", "b"], "answer": 0})
    check_neqa({"question": "q", "choices": ["a", "b", "c", "d"], "answer": 3}, n_choices=4)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    p = tmp_path / "out.jsonl"
    write_jsonl(p, [{"a": 1}])
    before = p.read_bytes()

    def records():
        yield {"a": 2}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(p, records())
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left
    with atomic_open(tmp_path / "new" / "x.txt") as f:
        f.write("done")
    assert (tmp_path / "new" / "x.txt").read_text() == "done"
