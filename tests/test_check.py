"""check_against_reference: the rules reproduce the published release."""
import json
from pathlib import Path

import pytest

from data_pipeline.check import check_against_reference, comparison_form, format_report, load_sources, main
from data_pipeline.negation import set_parser
from neqa.io import DataError

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "data_pipeline/neqa.jsonl"
SOURCES = ROOT / "data_pipeline/sources/openbookqa"


@pytest.fixture(autouse=True)
def fallback_parser():
    set_parser("fallback")
    yield
    set_parser("auto")


@pytest.fixture(scope="module")
def obqa():
    return load_sources(SOURCES)


def test_comparison_form_sets_contractions_and_prompt_variant_aside():
    assert comparison_form("Quartz crystals aren't made of") == comparison_form("Quartz crystals are not made of")
    assert comparison_form("A bird can't fly") == comparison_form("A bird cannot fly") == comparison_form("A bird can not fly")
    assert comparison_form("Choose the incorrect answer. X") == comparison_form("Which of the following is not true? X")
    assert comparison_form("the moon 's surface") == comparison_form("the moon's surface")
    assert comparison_form("The sun isn't a") != comparison_form("The sun is a")


def test_release_agreement_on_rule_made_items(obqa):
    report = check_against_reference(REFERENCE, obqa)
    assert report.parser == "lemminflect-heuristic"
    # 500 OpenBookQA items: 490 made by rules, 10 made by hand and counted apart
    assert report.rule_made.n == 490
    assert report.manual.n == 10
    assert set(report.per_rule) == {"gold/un-in-", "not/because", "not/be", "not/modal", "not/do", "prompt"}
    assert report.rate >= 0.95                                  # measured 0.988 (484/490)
    for rule in ("gold/un-in-", "not/because", "not/be", "not/modal"):
        assert report.per_rule[rule].rate == 1.0, format_report(report)
    assert report.per_rule["not/do"].rate >= 0.9
    assert report.per_rule["prompt"].rate >= 0.85
    for d in report.rule_made.disagreements:
        assert d.id and d.published and d.published_rule in report.per_rule


def test_disagreements_are_recorded_and_unknown_ids_fail(tmp_path):
    obqa = {
        "a": {"id": "a", "question": {"stem": "The sun is a"}},
        "b": {"id": "b", "question": {"stem": "Predators eat"}},
        "c": {"id": "c", "question": {"stem": "Deserts rarely get"}},
    }
    ref = tmp_path / "ref.jsonl"
    rows = [
        {"question": "The sun isn't a", "choices": ["x", "y"], "answer": 0,
         "metadata": {"id": "a", "split": "dev", "negation_rule": "not/be"}},
        {"question": "Predators never eat", "choices": ["x", "y"], "answer": 0,      # not what the rules make
         "metadata": {"id": "b", "split": "dev", "negation_rule": "not/do"}},
        {"question": "Deserts rarely get", "choices": ["x", "y"], "answer": 0,
         "metadata": {"id": "c", "split": "dev", "negation_rule": "gold/un-in-"}},
        {"question": "Drums is not made of ___?", "choices": ["x", "y"], "answer": 0,
         "metadata": {"dataset": "ConceptNet"}},                                    # not OpenBookQA: ignored
    ]
    ref.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check_against_reference(ref, obqa)
    assert report.rule_made.n == 3 and report.rule_made.agree == 2
    (d,) = report.per_rule["not/do"].disagreements
    assert (d.id, d.published_rule, d.our_rule, d.ours) == ("b", "not/do", "not/do", "Predators do not eat")
    assert "Predators never eat" in format_report(report)

    rows[0]["metadata"]["id"] = "missing"
    ref.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as e:
        check_against_reference(ref, obqa)
    assert "line 1" in str(e.value) and "metadata.id" in str(e.value)


def test_check_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["--parser", "fallback", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not/do" in printed and "lemminflect-heuristic" in printed
    data = json.loads(out.read_text())
    assert data["n"] == 490 and data["rate"] >= 0.95


def test_check_cli_bad_reference(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "metadata": {}}\n{not json\n')
    assert main(["--reference", str(bad), "--parser", "fallback"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "bad.jsonl, line 2" in err
