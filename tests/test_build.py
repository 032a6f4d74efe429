"""Rebuilding NeQA from the vendored sources: determinism, make-up, answers, the check."""
from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from data_pipeline import build as B
from data_pipeline.negation import Negation
from data_pipeline.schema import load_neqa
from data_pipeline.sources import hub_to_record, load_negated_lama, load_openbookqa
from neqa.io import DataError, read_jsonl

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "data_pipeline" / "neqa.jsonl"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "neqa_rebuilt.jsonl"
    assert B.main(["--out", str(out), "--seed", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def obqa_by_id():
    return {r["id"]: r for r in load_openbookqa("all")}


def test_sources_load_and_validate():
    obqa = load_openbookqa("all")
    assert Counter(r["split"] for r in obqa) == {"train": 4957, "dev": 500, "test": 500}
    assert len(load_openbookqa("dev")) == 500
    lama = load_negated_lama()
    assert len(lama) == 1218 and all(len(r["question"]["choices"]) == 2 for r in lama)
    with pytest.raises(ValueError):
        load_openbookqa("validation")


def test_hub_row_conversion_matches_vendored_format():
    row = {"id": "7-980", "question_stem": "The sun is responsible for",
           "choices": {"text": ["puppies learning new tricks", "plants sprouting"], "label": ["A", "B"]},
           "answerKey": "B"}
    assert hub_to_record(row) == {"id": "7-980", "question": {"stem": "The sun is responsible for", "choices": [
        {"text": "puppies learning new tricks", "label": "A"}, {"text": "plants sprouting", "label": "B"}]},
        "answerKey": "B"}


def test_hub_falls_back_to_vendored(monkeypatch):
    def offline(*a, **k):
        raise ConnectionError("no network")
    monkeypatch.setattr("data_pipeline.sources._load_hub", offline)
    assert len(load_openbookqa("test", prefer_hub=True)) == 500


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_differs(built, tmp_path):
    again = tmp_path / "again.jsonl"
    other = tmp_path / "other.jsonl"
    assert B.main(["--out", str(again), "--seed", "1", "--quiet", "--no-variants"]) == 0
    assert B.main(["--out", str(other), "--seed", "2", "--quiet", "--no-variants"]) == 0
    assert again.read_bytes() == built.read_bytes()
    assert other.read_bytes() != built.read_bytes()


def test_makeup_and_balance(built):
    items = load_neqa(built)
    per_rule = defaultdict(list)
    for it in items:
        per_rule[it["metadata"].get("negation_rule", "lama")].append(it)
    for rule in ("not/be", "not/because", "not/do", "not/modal"):
        assert len(per_rule[rule]) == 100, rule
    assert len(per_rule["prompt"]) == 50
    # OpenBookQA holds only ~40 stems the gold/un-in- rule takes (the release adds 10 hand-made ones)
    assert 35 <= len(per_rule["gold/un-in-"]) <= 50
    assert len(per_rule["lama"]) == 1218
    for rule, group in per_rule.items():
        counts = Counter(it["answer"] for it in group)
        assert abs(counts[0] - counts[1]) <= len(group) % 2, (rule, counts)
    for it in items:
        if "id" in it["metadata"]:
            assert set(it["metadata"]) == {"id", "split", "negation_rule"}


def test_answers_follow_the_negation(built, obqa_by_id):
    for it in load_neqa(built):
        meta = it["metadata"]
        if "id" not in meta:
            continue
        src = obqa_by_id[meta["id"]]
        assert src["split"] == meta["split"]
        texts = {c["label"]: c["text"] for c in src["question"]["choices"]}
        right = texts[src["answerKey"]]
        assert right in it["choices"]
        wrong = it["choices"][1 - it["choices"].index(right)]
        assert wrong in texts.values() and wrong != right
        expected = right if meta["negation_rule"].startswith("gold/") else wrong
        assert it["choices"][it["answer"]] == expected
        if meta["negation_rule"].startswith("gold/"):
            assert it["question"] == src["question"]["stem"]
        else:
            assert it["question"] != src["question"]["stem"]


def test_contraction_alternates_within_a_rule(built):
    items = load_neqa(built)
    for rule in ("not/be", "not/modal", "not/do"):
        qs = [it["question"] for it in items if it["metadata"].get("negation_rule") == rule]
        contracted = ["n't" in q or re.search(r"\b(may|might) not\b", q) is not None for q in qs]
        assert not any("n't" in q for q in qs[0::2]), rule  # full forms first ...
        assert sum(contracted[1::2]) >= 0.9 * len(qs[1::2]), rule  # ... then contracted (no "mayn't")
    prompts = [it["question"] for it in items if it["metadata"].get("negation_rule") == "prompt"]
    assert all(q.startswith("Which of the following is not true? ") for q in prompts[0::2])
    assert all(q.startswith("Choose the incorrect answer. ") for q in prompts[1::2])


def test_negated_lama_part_equals_the_release_up_to_choice_order(built):
    ours = [it for it in load_neqa(built) if "dataset" in it["metadata"]]
    published = [it for it in load_neqa(PUBLISHED) if "dataset" in it["metadata"]]
    assert len(ours) == len(published) == 1218
    for a, b in zip(ours, published):
        assert a["question"] == b["question"] and a["metadata"] == b["metadata"]
        assert sorted(a["choices"]) == sorted(b["choices"])
        assert a["choices"][a["answer"]] == b["choices"][b["answer"]]


def test_tidy_lama_stem():
    assert B.tidy_lama_stem("Moths have not ___ ?") == "Moths do not have ___?"
    assert B.tidy_lama_stem("Dog has not  a ___?") == "Dog does not have a ___?"
    assert B.tidy_lama_stem("Hashes are not ___ ?") == "Hashes are not ___?"  # "has" inside a word untouched


def test_variants_written_beside_the_build(built):
    t1 = load_neqa(built.with_name("neqa_rebuilt_task1.jsonl"))
    t2 = read_jsonl(built.with_name("neqa_rebuilt_task2.jsonl"))
    assert len(t1) >= 1500 and len(t2) == len(t1)
    assert all(p["choices"][p["answer"]] == "different" for p in t2)


# --- selection logic alone, with a stand-in negation ------------------------------------------

def fake_negate(stem, contract=False, prompt_variant=0):
    rule = stem.split()[0]
    if rule == "none":
        return Negation(None, None)
    return Negation(rule, stem if rule.startswith("gold") else f"{stem} [neg{int(contract)}]")


def fake_obqa(rules: list[str]) -> list[dict]:
    return [{"id": f"q{i}", "split": "train", "answerKey": "C",
             "question": {"stem": f"{rule} stem {i}", "choices": [
                 {"text": f"w{i}a", "label": "A"}, {"text": f"w{i}b", "label": "B"},
                 {"text": f"right{i}", "label": "C"}, {"text": f"w{i}d", "label": "D"}]}}
            for i, rule in enumerate(rules)]


def test_selection_with_fake_negation(capsys):
    obqa = fake_obqa(["not/be"] * 9 + ["gold/un-in-"] * 3 + ["none"] * 5)
    quotas = {"not/be": 6, "gold/un-in-": 4}
    items = B.build(obqa, [], seed=3, quotas=quotas, negate=fake_negate)
    assert "too few" in capsys.readouterr().err
    rules = Counter(it["metadata"]["negation_rule"] for it in items)
    assert rules == {"not/be": 6, "gold/un-in-": 3}
    be = [it for it in items if it["metadata"]["negation_rule"] == "not/be"]
    assert Counter(it["answer"] for it in be) == {0: 3, 1: 3}
    assert [it["question"].endswith("[neg1]") for it in be] == [False, True] * 3
    for it in items:
        i = it["metadata"]["id"][1:]
        answer = it["choices"][it["answer"]]
        assert (answer == f"right{i}") == it["metadata"]["negation_rule"].startswith("gold/")
        assert f"right{i}" in it["choices"]
    with pytest.raises(B.BuildError, match="gold/un-in-"):
        B.build(obqa, [], seed=3, quotas=quotas, negate=fake_negate, strict=True)


def test_selection_depends_on_seed():
    obqa = fake_obqa(["not/be"] * 40)
    a = B.build(obqa, [], seed=0, quotas={"not/be": 10}, negate=fake_negate)
    b = B.build(obqa, [], seed=1, quotas={"not/be": 10}, negate=fake_negate)
    assert [x["metadata"]["id"] for x in a] != [x["metadata"]["id"] for x in b]


def test_balanced_positions_odd_and_even():
    rng = random.Random(0)
    for n in (0, 1, 2, 7, 50):
        pos = B.balanced_positions(n, rng)
        assert len(pos) == n and abs(pos.count(0) - pos.count(1)) == n % 2


# --- the check against the release --------------------------------------------------------------

def test_check_against_reference_agreement(obqa_by_id):
    from data_pipeline.check import check_against_reference
    report = check_against_reference(PUBLISHED, obqa_by_id)
    assert report.rule_made.n >= 480
    assert report.rule_made.rate >= 0.95


def test_cli_check_prints_the_report(tmp_path, capsys):
    out = tmp_path / "n.jsonl"
    assert B.main(["--out", str(out), "--quiet", "--no-variants", "--check", str(PUBLISHED)]) == 0
    text = capsys.readouterr().out
    assert "not/be" in text and "%" in text


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, field", [
    ('{"id": "1", "question": {"stem": "x", "choices": [', None),
    ('{"id": "1", "question": {"choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "A"}',
     "question.stem"),
    ('{"id": "1", "question": {"stem": "x", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "E"}',
     "answerKey"),
])
def test_bad_source_file_is_named_with_line_and_field(tmp_path, monkeypatch, capsys, line, field):
    good = (REPO / "data_pipeline/sources/openbookqa/dev.jsonl").read_text().splitlines()[0]
    src = tmp_path / "obqa"
    src.mkdir()
    for split in ("train", "dev"):
        (src / f"{split}.jsonl").write_text(good + "\n")
    (src / "test.jsonl").write_text(good + "\n" + good + "\n" + line + "\n")
    monkeypatch.setattr(B, "load_openbookqa", lambda *a, **k: load_openbookqa("all", directory=src))
    out = tmp_path / "out.jsonl"
    assert B.main(["--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "test.jsonl, line 3" in err
    if field:
        assert f"field '{field}'" in err
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))
    with pytest.raises(DataError):
        load_openbookqa("test", directory=src)


def test_bad_check_reference(tmp_path, capsys):
    ref = tmp_path / "ref.jsonl"
    ref.write_text('{"question": "x", "choices": ["a", "b"], "answer": 0, '
                   '"metadata": {"id": "7-980", "split": "train", "negation_rule": "not/be"}}\n{"question": 1}\n')
    out = tmp_path / "n.jsonl"
    assert B.main(["--out", str(out), "--quiet", "--no-variants", "--check", str(ref)]) == 2
    assert f"error: {ref}, line 2, field 'question'" in capsys.readouterr().err
    assert not out.exists()  # every input is checked before any output is written
