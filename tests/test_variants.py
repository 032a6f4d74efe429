"""Task-1 and task-2 variants: hand-made items and the published 100-item files."""
from __future__ import annotations

from pathlib import Path

import pytest

from data_pipeline import variants as V
from data_pipeline.schema import load_neqa
from neqa.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data_pipeline"


def test_strip_blank_drops_the_trailing_blank_only():
    assert V.strip_blank("Eden Roc is not a ___ ?") == "Eden Roc is not a"
    assert V.strip_blank("Moths do not have ___?") == "Moths do not have"
    assert V.strip_blank("Hot 8 Brass Band plays ___ music ?") == "Hot 8 Brass Band plays ___ music?"
    assert V.strip_blank("Which isn't recyclable?") == "Which isn't recyclable?"
    assert V.strip_blank("Predators do not eat") == "Predators do not eat"


def test_strip_blank_reproduces_the_published_normalised_files():
    for raw, norm in (("neqa_100.jsonl", "neqa_100_normalized.jsonl"),
                      ("neqa_100_nonnegated.jsonl", "neqa_100_normalized_nonnegated.jsonl")):
        a, b = load_neqa(DATA / raw), load_neqa(DATA / norm)
        same = sum(V.strip_blank(x["question"]) == y["question"] for x, y in zip(a, b))
        assert same >= 99  # the one other item was also re-worded ("do not have" vs "have not")


def test_task1_by_rule_flips_the_answer():
    item = {"question": "Horses do not run ___?", "choices": ["hard", "fast"], "answer": 0, "metadata": {"idx": 3}}
    t1 = V.task1_item(item, remove=lambda q: q.replace("do not run", "run"))
    assert t1["question"] == "Horses run ___?" and t1["answer"] == 1 and t1["choices"] == ["hard", "fast"]
    assert t1["metadata"]["idx"] == 3
    assert V.task1_item(item, remove=lambda q: None) is None
    assert V.task1_item(item, remove=lambda q: q) is None  # nothing removed


def test_task1_prefers_the_original_stem_and_its_right_answer():
    original = {"id": "9-1", "answerKey": "B", "question": {"stem": "Worms are decomposers because", "choices": [
        {"text": "they glow", "label": "A"}, {"text": "they eat dead matter", "label": "B"},
        {"text": "they fly", "label": "C"}, {"text": "they sing", "label": "D"}]}}
    item = {"question": "Worms are decomposers not because", "choices": ["they eat dead matter", "they fly"],
            "answer": 1, "metadata": {"id": "9-1", "negation_rule": "not/because"}}
    t1 = V.task1_item(item, originals={"9-1": original}, remove=lambda q: pytest.fail("rule used"))
    assert t1["question"] == "Worms are decomposers because" and t1["answer"] == 0
    gold = {**item, "question": original["question"]["stem"], "answer": 0,
            "metadata": {"id": "9-1", "negation_rule": "gold/un-in-"}}
    assert V.task1_item(gold, originals={"9-1": original}) is None  # the stem was never negated


def test_task2_pairs_and_alternating_choices():
    negated = [{"question": f"X{i} is not a ___ ?", "choices": ["a", "b"], "answer": i % 2} for i in range(5)]
    plain = [{"question": f"X{i} is a ___ ?", "choices": ["a", "b"], "answer": 1 - i % 2} for i in range(5)]
    plain[2] = None
    pairs = V.task2_items(negated, plain)
    assert len(pairs) == 4
    assert pairs[0]["sentence1"] == "X0 is a b." and pairs[0]["sentence2"] == "X0 is not a b."
    assert [p["choices"] for p in pairs] == [["the same", "different"], ["different", "the same"]] * 2
    assert all(p["choices"][p["answer"]] == "different" for p in pairs)
    assert [p["metadata"]["source_index"] for p in pairs] == [0, 1, 3, 4]
    with pytest.raises(ValueError):
        V.task2_items(negated, plain[:3])


def test_task1_of_neqa_100_agrees_with_the_release():
    ours = V.task1_items(load_neqa(DATA / "neqa_100.jsonl"))
    stats = V.agreement(ours, load_neqa(DATA / "neqa_100_nonnegated.jsonl"))
    assert stats["answer"] >= 0.85
    assert stats["question_normalised"] >= 0.85


def test_committed_variant_files_match_the_cli(tmp_path):
    assert V.main([str(DATA / "neqa_100_normalized.jsonl"), "--plain",
                   str(DATA / "neqa_100_normalized_nonnegated.jsonl"), "--name", "neqa_100",
                   "--out-dir", str(tmp_path)]) == 0
    pairs = read_jsonl(tmp_path / "neqa_100_task2.jsonl")
    assert len(pairs) == 100 and not (tmp_path / "neqa_100_task1.jsonl").exists()
    assert pairs[0]["sentence1"] == "Eden Roc Renaissance Hotel Miami Beach is a hotel."
    assert pairs[0]["sentence2"] == "Eden Roc Renaissance Hotel Miami Beach is not a hotel."
    assert (DATA / "neqa_100_task2.jsonl").read_bytes() == (tmp_path / "neqa_100_task2.jsonl").read_bytes()


def test_cli_on_neqa_writes_both_tasks(tmp_path, capsys):
    assert V.main([str(DATA / "neqa.jsonl"), "--out-dir", str(tmp_path)]) == 0
    t1 = load_neqa(tmp_path / "neqa_task1.jsonl")
    t2 = read_jsonl(tmp_path / "neqa_task2.jsonl")
    assert len(t1) == len(t2) >= 1600
    src = load_neqa(DATA / "neqa.jsonl")
    for p in t1[:50]:
        assert p["choices"] == src[p["metadata"]["source_index"]]["choices"]
        assert p["answer"] != src[p["metadata"]["source_index"]]["answer"] or \
            p["metadata"].get("negation_rule") == "manual/un-in-"
    assert "had no negation to remove" in capsys.readouterr().out
    # the committed files are this command's output (stale after a change to negation.py: bash data_pipeline/run.sh)
    for name in ("neqa_task1.jsonl", "neqa_task2.jsonl"):
        assert (DATA / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.parametrize("line, field", [
    ('{"question": "x", "choices": ["a", "b"], "answer": 0', None),
    ('{"choices": ["a", "b"], "answer": 0}', "question"),
    ('{"question": "x", "choices": ["a", "b", "c"], "answer": 0}', "choices"),
    ('{"question": "x", "choices": ["a", "b"], "answer": 2}', "answer"),
])
def test_bad_input(tmp_path, capsys, line, field):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Cats are not ___ ?", "choices": ["a", "b"], "answer": 0}\n' + line + "\n")
    out = tmp_path / "out"
    assert V.main([str(bad), "--out-dir", str(out), "--no-originals"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{bad}, line 2" in err
    if field:
        assert f"field '{field}'" in err
    assert not out.exists()
