"""Exports: prize CSVs and lm-eval task YAMLs round-trip to the repository's own prompts."""
from __future__ import annotations

import ast
import csv
from pathlib import Path

import jinja2
import pytest

from data_pipeline import export as E
from data_pipeline.prompts import neqa_prompt, task2_prompt
from data_pipeline.schema import load_neqa
from neqa.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data_pipeline"


def load_yaml(path):
    return E.read_harness_yaml(Path(path).read_text())


def load_module(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"neqa_data_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    items = load_neqa(DATA / "neqa.jsonl")
    sample = items[:5] + items[-5:]  # OpenBookQA and Negated-LAMA items
    (d / "neqa.jsonl").write_text("".join(__import__("json").dumps(it) + "\n" for it in sample))
    task2 = [{"sentence1": "Cats are animals.", "sentence2": "Cats are not animals.",
              "choices": ["the same", "different"], "answer": 1},
             {"sentence1": "Ice is cold.", "sentence2": "Ice is not cold.",
              "choices": ["different", "the same"], "answer": 0}]
    (d / "t2.jsonl").write_text("".join(__import__("json").dumps(t) + "\n" for t in task2))
    out = d / "exports"
    assert E.main([str(d / "neqa.jsonl"), "--task2", str(d / "t2.jsonl"), "--output-dir", str(out)]) == 0
    return {"items": sample, "task2": task2, "out": out}


def test_prize_tables_round_trip(small):
    files = sorted(p.name for p in small["out"].glob("*.csv"))
    assert files == ["neqa_fewshot.csv", "neqa_fewshot_hint.csv", "neqa_zeroshot.csv", "neqa_zeroshot_hint.csv",
                     "task2_strong.csv", "task2_weak.csv"]  # no chain of thought table
    for method in ("zeroshot", "zeroshot_hint", "fewshot", "fewshot_hint"):
        with open(small["out"] / f"neqa_{method}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["prompt", "classes", "answer_index"]
        assert [r["prompt"] for r in rows] == [neqa_prompt(it, method) for it in small["items"]]
        assert [int(r["answer_index"]) for r in rows] == [it["answer"] for it in small["items"]]
        assert all(ast.literal_eval(r["classes"]) == [" A", " B"] for r in rows)  # how the prize parsed it
    for method in ("weak", "strong"):
        rows = E.read_prize_csv(small["out"] / f"task2_{method}.csv")
        assert [r["prompt"] for r in rows] == [task2_prompt(t, method) for t in small["task2"]]
        assert [r["answer_index"] for r in rows] == [1, 0]


def test_harness_yaml_renders_the_zero_shot_prompt(small):
    config = load_yaml(small["out"] / "neqa.yaml")
    assert config["task"] == "neqa" and config["output_type"] == "multiple_choice"
    assert config["custom_dataset"] == "!function neqa_data.load_neqa"
    assert config["dataset_kwargs"] == {"data_file": "../neqa.jsonl"}     # relative to the YAML's folder
    assert config["doc_to_target"] == "answer"
    assert config["metric_list"][0]["metric"] == "acc"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    template = env.from_string(config["doc_to_text"])
    for it in small["items"]:
        context = template.render(**it)
        assert context == neqa_prompt(it, "zeroshot")
        # lm-eval scores context + target_delimiter + choice: the prompt followed by " A" / " B"
        continuations = [config["target_delimiter"] + c for c in config["doc_to_choice"]]
        assert continuations == [" A", " B"]
        assert config["doc_to_choice"][it["answer"]] == "AB"[it["answer"]]


@pytest.mark.parametrize("task, method", [("neqa_zeroshot_hint", "zeroshot_hint"), ("neqa_fewshot", "fewshot"),
                                          ("neqa_fewshot_hint", "fewshot_hint")])
def test_other_harness_tasks(small, task, method):
    config = load_yaml(small["out"] / f"{task}.yaml")
    assert config["task"] == task
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(config["doc_to_text"])
    assert all(template.render(**it) == neqa_prompt(it, method) for it in small["items"])


def test_committed_exports_are_current():
    out = DATA / "exports"  # committed; regenerate with bash data_pipeline/run.sh
    items = load_neqa(DATA / "neqa.jsonl")
    rows = E.read_prize_csv(out / "neqa_zeroshot.csv")
    assert len(rows) == len(items) == 1718
    assert all(r["prompt"] == neqa_prompt(it, "zeroshot") and r["answer_index"] == it["answer"]
               for r, it in zip(rows, items))
    assert load_yaml(out / "neqa.yaml")["dataset_kwargs"]["data_file"] == "../neqa.jsonl"
    assert (out / "neqa_data.py").read_text() == E.LOADER
    assert len(E.read_prize_csv(out / "task2_weak.csv")) == len(read_jsonl(DATA / "neqa_task2.jsonl"))


def test_exported_data_loads_from_any_directory(small, tmp_path, monkeypatch):
    """The loader beside the YAMLs reads the data relative to its own folder, wherever the harness runs."""
    monkeypatch.chdir(tmp_path)
    loader = load_module(small["out"] / "neqa_data.py")
    neqa = loader.load_neqa(**load_yaml(small["out"] / "neqa.yaml")["dataset_kwargs"], version=1.0)
    assert [dict(r) for r in neqa["test"]] == [{k: it[k] for k in neqa["test"].column_names} for it in small["items"]]
    for name, n in (("neqa_prize_zeroshot", len(small["items"])), ("task2_prize_weak", len(small["task2"]))):
        config = load_yaml(small["out"] / f"{name}.yaml")
        assert config["custom_dataset"] == "!function neqa_data.load_prize"
        assert (config["doc_to_choice"], config["doc_to_target"], config["target_delimiter"]) == \
            ("classes", "answer_index", "")     # the harness's generic inverse-scaling multiple-choice config
        table = loader.load_prize(**config["dataset_kwargs"])["test"]
        assert len(table) == n and all(row["classes"] == [" A", " B"] for row in table)   # lists, not strings


def test_exported_tasks_in_lm_evaluation_harness_from_another_directory(small, tmp_path, monkeypatch):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install lm-eval)")
    from lm_eval.tasks import TaskManager
    monkeypatch.chdir(tmp_path)
    tasks = TaskManager(include_path=str(small["out"])).load(["neqa", "neqa_prize_fewshot", "task2_prize_strong"])
    tasks = {name: task for name, task in _flatten(tasks).items()}
    neqa, prize, t2 = tasks["neqa"], tasks["neqa_prize_fewshot"], tasks["task2_prize_strong"]
    docs = list(neqa.test_docs())
    assert [neqa.doc_to_text(d) for d in docs] == [neqa_prompt(it, "zeroshot") for it in small["items"]]
    docs = list(prize.test_docs())
    assert [prize.doc_to_text(d) for d in docs] == [neqa_prompt(it, "fewshot") for it in small["items"]]
    assert all(prize.doc_to_choice(d) == [" A", " B"] for d in docs)
    assert [prize.doc_to_target(d) for d in docs] == [it["answer"] for it in small["items"]]
    assert [t2.doc_to_text(d) for d in t2.test_docs()] == [task2_prompt(t, "strong") for t in small["task2"]]


def _flatten(loaded):
    out = {}
    for key, value in (loaded.get("tasks", loaded) if isinstance(loaded, dict) else loaded).items():
        if isinstance(value, dict):
            out.update(_flatten(value))
        else:
            out[getattr(key, "task", key) if not isinstance(key, str) else key] = value
    return out


@pytest.mark.parametrize("line, field", [
    ('{"question": "x", "choices": ["a", "b"], "answer": 0', None),
    ('{"question": "x", "choices": ["a"], "answer": 0}', "choices"),
    ('{"question": "x", "choices": ["a", "b"], "answer": -1}', "answer"),
    ('{"question": "x", "choices": ["a", "b"]}', "answer"),
])
def test_bad_input(tmp_path, capsys, line, field):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "choices": ["a", "b"], "answer": 1}\n' + line + "\n")
    out = tmp_path / "out"
    assert E.main([str(bad), "--task2", "", "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{bad}, line 2" in err
    if field:
        assert f"field '{field}'" in err
    assert not out.exists()


def test_bad_task2_file(tmp_path, capsys):
    good = tmp_path / "n.jsonl"
    good.write_text('{"question": "x", "choices": ["a", "b"], "answer": 1}\n')
    t2 = tmp_path / "t2.jsonl"
    t2.write_text('{"sentence1": "a.", "choices": ["the same", "different"], "answer": 1}\n')
    assert E.main([str(good), "--task2", str(t2), "--out-dir", str(tmp_path / "out")]) == 2
    assert f"{t2}, line 1, field 'sentence2'" in capsys.readouterr().err
