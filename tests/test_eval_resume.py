"""Interrupted runs resume to the same records; a folder never mixes two runs."""
from __future__ import annotations

import json

import pytest
from conftest import REPO

from data_pipeline.schema import load_neqa
from eval_pipeline.backends.base import Backend
from eval_pipeline.backends.hf import HFBackend
from eval_pipeline.evaluate import evaluate_run
from eval_pipeline.runs import RunFolder, RunMismatchError, run_key
from eval_pipeline.tasks import get_task
from neqa.io import DataError, sha256

DATA = REPO / "data_pipeline" / "neqa_100.jsonl"
ITEMS = load_neqa(DATA)[:9]
TASK = get_task("neqa")


class Killed(RuntimeError):
    pass


class DiesAfter(Backend):
    """Wraps a backend and raises on its (n+1)-th call, like a process killed part-way."""

    def __init__(self, backend, n_calls):
        self.backend, self.left = backend, n_calls

    def score(self, requests, shared_prefix=""):
        if self.left == 0:
            raise Killed()
        self.left -= 1
        return self.backend.score(requests, shared_prefix)

    def generate(self, requests, shared_prefix=""):
        raise NotImplementedError

    def describe(self):
        return self.backend.describe()


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend(str(tiny_model_dir), device="cpu", dtype="float32", batch_size=4)


def info(model, data=DATA):
    return {"model": str(model), "revision": None, "dtype": "float32", "data_file": str(data),
            "data_sha256": sha256(data), "member": "tiny"}


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_killed_run_resumes_to_the_same_records(tmp_path, backend, tiny_model_dir):
    whole = RunFolder(tmp_path / "whole")
    s1 = evaluate_run(backend, TASK, "fewshot", ITEMS, whole, info(tiny_model_dir), chunk=3, progress=False)

    part = RunFolder(tmp_path / "part")
    with pytest.raises(Killed):
        evaluate_run(DiesAfter(backend, 2), TASK, "fewshot", ITEMS, part, info(tiny_model_dir), chunk=3,
                     progress=False)
    assert len(lines(part.items_path)) == 6 and not part.summary_path.exists()   # kept what was computed
    # the kill also cut the next record in half
    with open(part.items_path, "a") as f:
        f.write('{"index": 6, "question": "half a rec')
    calls = DiesAfter(backend, 1)   # one more call is all the remaining 3 items need
    s2 = evaluate_run(calls, TASK, "fewshot", ITEMS, part, info(tiny_model_dir), chunk=3, progress=False)

    a, b = lines(whole.items_path), lines(part.items_path)
    assert [r["index"] for r in b] == list(range(9))
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            if isinstance(ra[k], list):
                assert ra[k] == pytest.approx(rb[k], abs=1e-6)
            elif isinstance(ra[k], float):
                assert ra[k] == pytest.approx(rb[k], abs=1e-6)
            else:
                assert ra[k] == rb[k]
    for k in ("key", "accuracy", "accuracy_ci", "n_items", "strict_accuracy", "scoring_path"):
        assert s1[k] == s2[k]
    assert json.loads(part.summary_path.read_text())["key"] == s1["key"]


def test_a_finished_run_is_not_recomputed(tmp_path, backend, tiny_model_dir):
    folder = RunFolder(tmp_path / "r")
    s1 = evaluate_run(backend, TASK, "zeroshot", ITEMS, folder, info(tiny_model_dir), chunk=4, progress=False)
    s2 = evaluate_run(DiesAfter(backend, 0), TASK, "zeroshot", ITEMS, folder, info(tiny_model_dir), progress=False)
    assert s2["accuracy"] == s1["accuracy"] and s2["scoring_path"] == s1["scoring_path"]


def test_other_model_prompt_or_data_is_refused(tmp_path, backend, tiny_model_dir, tiny_model_dir_2):
    folder = RunFolder(tmp_path / "r")
    evaluate_run(backend, TASK, "zeroshot", ITEMS[:3], folder, info(tiny_model_dir), progress=False)
    before = folder.items_path.read_text()
    other = HFBackend(str(tiny_model_dir_2), device="cpu", dtype="float32")
    with pytest.raises(RunMismatchError, match=r"\(model: '"):
        evaluate_run(other, TASK, "zeroshot", ITEMS, folder, info(tiny_model_dir_2), progress=False)
    with pytest.raises(RunMismatchError, match=r"\(prompt: 'zeroshot' here, 'fewshot' asked\)"):
        evaluate_run(backend, TASK, "fewshot", ITEMS, folder, info(tiny_model_dir), progress=False)
    other_data = REPO / "data_pipeline" / "neqa_100_nonnegated.jsonl"
    with pytest.raises(RunMismatchError, match=r"\(data_sha256: '"):
        evaluate_run(backend, TASK, "zeroshot", ITEMS, folder, info(tiny_model_dir, other_data), progress=False)
    assert folder.items_path.read_text() == before


def test_results_without_run_json_or_with_a_broken_middle_are_refused(tmp_path):
    meta = {"model": "m", "revision": None, "dtype": "float32", "task": "neqa", "prompt": "zeroshot",
            "data_sha256": "0" * 64}
    stray = RunFolder(tmp_path / "stray")
    stray.append([{"index": 0}])
    with pytest.raises(RunMismatchError, match="without run.json"):
        stray.open(meta)
    broken = RunFolder(tmp_path / "broken")
    broken.open(meta)
    broken.items_path.write_text('{"index": 0}\nnot json\n{"index": 2}\n')
    with pytest.raises(DataError, match="line 2"):
        broken.open(meta)
    gap = RunFolder(tmp_path / "gap")
    gap.open(meta)
    gap.items_path.write_text('{"index": 0}\n{"index": 2}\n')
    with pytest.raises(DataError, match="index"):
        gap.open(meta)


def test_run_key_depends_on_every_field():
    meta = {"model": "m", "revision": None, "dtype": "float32", "task": "neqa", "prompt": "zeroshot",
            "data_sha256": "0" * 64}
    keys = {run_key(meta)}
    for field, value in [("model", "m2"), ("revision", "step1"), ("dtype", "bfloat16"), ("task", "task1"),
                         ("prompt", "fewshot"), ("data_sha256", "1" * 64)]:
        keys.add(run_key({**meta, field: value}))
    assert len(keys) == 7
    assert run_key({**meta, "code_version": "abc"}) == run_key(meta)   # code version is recorded, not keyed


def test_an_older_run_json_gets_its_shared_prefix_on_resume(tmp_path):
    meta = {"model": "m", "revision": None, "dtype": "float32", "task": "neqa", "prompt": "fewshot",
            "data_sha256": "0" * 64}
    folder = RunFolder(tmp_path / "run")
    folder.open(meta)
    folder.close()
    old = json.loads(folder.run_path.read_text())
    del old["shared_prefix"]                      # as run.json was written before it held the prefix
    folder.run_path.write_text(json.dumps(old))
    folder.open({**meta, "shared_prefix": "Header\n\n"})
    folder.close()
    now = json.loads(folder.run_path.read_text())
    assert now["shared_prefix"] == "Header\n\n" and now["key"] == old["key"]
    folder.open({**meta, "shared_prefix": "Other\n\n"})   # an existing prefix is never rewritten
    folder.close()
    assert json.loads(folder.run_path.read_text())["shared_prefix"] == "Header\n\n"
