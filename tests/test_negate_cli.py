"""python -m data_pipeline.negate on small files: output records, alternation, bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_pipeline.negate import main
from data_pipeline.negation import set_parser

ROOT = Path(__file__).resolve().parents[1]


def item(id_, stem, key="A"):
    return {"id": id_, "question": {"stem": stem, "choices": [{"text": t, "label": l} for t, l in
                                                          zip(["w", "x", "y", "z"], "ABCD")]}, "answerKey": key}


ITEMS = [
    item("1", "The sun is a"),
    item("2", "Quartz crystals are made up of"),
    item("3", "A bird can fly over"),
    item("4", "Microscopes"),
    item("5", "What is an example of hunting?"),
    item("6", "Thermometers"),
    item("7", "Deserts rarely get"),
]


@pytest.fixture(autouse=True)
def restore_parser():
    yield
    set_parser("auto")


def write(path, lines):
    path.write_text("".join(l + "\n" for l in lines))
    return path


def test_negate_cli_output(tmp_path, capsys):
    src = write(tmp_path / "in.jsonl", [json.dumps(r) for r in ITEMS])
    out = tmp_path / "out.jsonl"
    assert main([str(src), str(out), "--parser", "fallback"]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in ITEMS]
    assert [r["rule"] for r in rows] == ["not/be", "not/be", "not/modal", "prompt", None, "prompt", "gold/un-in-"]
    # full and contracted forms alternate within a rule; so do the two prompt prefixes
    assert rows[0]["question"] == "The sun is not a"
    assert rows[1]["question"] == "Quartz crystals aren't made up of"
    assert rows[2]["question"] == "A bird can not fly over"
    assert rows[3]["question"] == "Which of the following is not true? Microscopes"
    assert rows[4]["question"] is None
    assert rows[5]["question"] == "Choose the incorrect answer. Thermometers"
    assert rows[6]["question"] == "Deserts rarely get"
    assert {r["parser"] for r in rows} == {"lemminflect-heuristic"}
    captured = capsys.readouterr()
    assert "not/be" in captured.out and "     2" in captured.out
    assert "parser: lemminflect-heuristic" in captured.err


@pytest.mark.parametrize("bad_line, line_no, field", [
    ("{not json", 2, None),
    (json.dumps({"id": "9", "question": {"choices": ITEMS[0]["question"]["choices"]}, "answerKey": "A"}), 2,
     "question.stem"),
    (json.dumps(item("9", "The moon is", key="E")), 2, "answerKey"),
])
def test_negate_cli_bad_input(tmp_path, capsys, bad_line, line_no, field):
    src = write(tmp_path / "in.jsonl", [json.dumps(ITEMS[0]), bad_line, json.dumps(ITEMS[1])])
    out = tmp_path / "out.jsonl"
    assert main([str(src), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert f"in.jsonl, line {line_no}" in err
    if field:
        assert f"field '{field}'" in err
    else:
        assert "malformed JSON" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]            # no temporary file left behind


@pytest.mark.slow
def test_negate_cli_runs_as_a_module(tmp_path):
    src = write(tmp_path / "in.jsonl", [json.dumps(r) for r in ITEMS[:2]])
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "data_pipeline.negate", str(src), str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 2
    missing = subprocess.run([sys.executable, "-m", "data_pipeline.negate", str(tmp_path / "nope.jsonl"),
                              str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr and "file not found" in missing.stderr
