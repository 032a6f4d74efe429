"""The hand-judged negation sample (tests/fixtures/negation_sample.md): the judgements are the ground truth,
read by a person; these tests keep the fallback's outputs equal to the judged ones and its error under 3%."""
import json
from pathlib import Path

import pytest

from data_pipeline import negation
from data_pipeline.check import sample_report
from data_pipeline.sources import load_openbookqa

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "negation_sample.jsonl"


@pytest.fixture
def fallback():
    negation.set_parser("fallback")
    yield
    negation.set_parser("auto")


def test_the_sample_is_outside_the_release_and_from_the_vendored_sources():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 200 and len({r["stem"] for r in rows}) == len(rows)
    release = {json.loads(line)["metadata"].get("id") for line in (REPO / "data_pipeline" / "neqa.jsonl").open()}
    stems = {it["id"]: it["question"]["stem"] for it in load_openbookqa("all")}
    for r in rows:
        assert r["id"] not in release
        assert stems[r["id"]] == r["stem"]
    assert sum(r["part"].startswith("heldout") for r in rows) >= 200      # judged once, after the rules were final


def test_fallback_outputs_are_the_judged_ones_and_under_three_percent_wrong(fallback):
    report = sample_report(SAMPLE)
    assert report["unjudged"] == []      # a changed output must be judged again by a person
    total = report["per_part"]["all"]
    assert total["n"] >= 200
    assert total["wrong"] / total["n"] < 0.03


def test_issue_examples(fallback):
    assert negation.negate_stem("Polar bears live in").question == "Polar bears do not live in"
    assert negation.negate_stem("tuna swim extremely fast to").question == "tuna do not swim extremely fast to"
