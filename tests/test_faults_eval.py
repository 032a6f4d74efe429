"""Fault injection, evaluation side: two writers, other weights at the same path, family files that try
to enable code or redirect the API key, names that escape the output folder, API failures mid-run,
mistyped model paths and devices. Counted with the rest by `pytest -m fault`."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO
from fake_openai_server import FakeOpenAI

from data_pipeline.schema import load_neqa
from eval_pipeline import evaluate
from eval_pipeline.backends.base import Backend, ScoreResult
from eval_pipeline.evaluate import evaluate_run, main
from eval_pipeline.runs import RunFolder, RunMismatchError
from eval_pipeline.tasks import get_task
from neqa.io import DataError, write_jsonl

pytestmark = pytest.mark.fault

NEQA_100 = REPO / "data_pipeline" / "neqa_100.jsonl"
TASK = get_task("neqa")


@pytest.fixture
def small_neqa(tmp_path):
    path = tmp_path / "small.jsonl"
    write_jsonl(path, load_neqa(NEQA_100)[:6])
    return path


def run(capsys, *argv):
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1] if err.strip() else ""


def indices(folder):
    return [json.loads(x)["index"] for x in (folder / "items.jsonl").read_text().splitlines()]


# -- 1. one writer per run folder ----------------------------------------------------------------------

def test_a_second_writer_is_refused_at_once(tmp_path, capsys, tiny_model_dir, small_neqa):
    folder = tmp_path / "out" / "tiny" / "neqa__zeroshot"
    folder.mkdir(parents=True)
    with open(folder / ".lock", "a") as held:   # another process holds the folder
        fcntl.flock(held, fcntl.LOCK_EX)
        rc, _, err = run(capsys, "--model", tiny_model_dir, "--member", "tiny", "--data", small_neqa,
                         "--output-dir", tmp_path / "out")
    assert rc == 2
    assert last_line(err).startswith("error: ") and "another process" in err and "--wait" in err
    assert not (folder / "items.jsonl").exists()


WRITER = """
import glob, os, sys, time
from pathlib import Path
from data_pipeline.schema import load_neqa
from eval_pipeline.backends.base import Backend, ScoreResult
from eval_pipeline.evaluate import evaluate_run
from eval_pipeline.runs import RunFolder
from eval_pipeline.tasks import get_task

folder, data, mode = sys.argv[1:4]
signals = Path(folder + ".arrived")
signals.mkdir(exist_ok=True)

class Slow(Backend):   # after its first batch, waits until the other process has arrived too
    calls = 0
    def score(self, requests, shared_prefix=""):
        Slow.calls += 1
        deadline = time.time() + 60
        while Slow.calls == 2 and len(list(signals.iterdir())) < 2 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.02 * len(requests))
        return [ScoreResult(logprobs=[-0.1, -3.0], top_token=" A") for _ in requests]
    def generate(self, requests, shared_prefix=""):
        raise NotImplementedError
    def describe(self):
        return {"scoring_path": "slow"}

items = load_neqa(data)[:60]
info = {"model": "m", "revision": None, "dtype": None, "data_file": "x", "data_sha256": "x"}
(signals / str(os.getpid())).touch()
evaluate_run(Slow(), get_task("neqa"), "zeroshot", items, RunFolder(folder), info, chunk=8, progress=False,
             wait=mode == "wait")
"""


@pytest.mark.parametrize("mode", ["wait", "refuse"])
def test_two_processes_on_one_run_folder_leave_one_record_per_item(tmp_path, mode):
    """The issue's reproduction, in two real processes writing one run folder at the same time: with
    --wait both finish and every item has one record; without, the second stops and the first finishes."""
    folder = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(NEQA_100), mode], cwd=REPO,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    if mode == "wait":
        assert codes == [0, 0], results
    else:
        assert codes[0] == 0 and codes[1] != 0, results
        assert any("being written by another process" in err for _, err in results)
    assert indices(folder) == list(range(60))


def _write_run(folder, records, meta):
    folder.mkdir(parents=True)
    from eval_pipeline.runs import KEY_FIELDS, run_key
    (folder / "run.json").write_text(json.dumps({"key": run_key(meta), **{k: meta[k] for k in KEY_FIELDS}}))
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


META = {"model": "m", "revision": None, "dtype": "float32", "task": "neqa", "prompt": "zeroshot", "data_sha256": "d"}


def test_resume_rejects_duplicate_indices(tmp_path):
    folder = tmp_path / "run"
    _write_run(folder, [{"index": 0, "correct": True}, {"index": 1, "correct": False}, {"index": 0, "correct": True}],
               META)
    with pytest.raises(DataError, match="duplicate index 0"):
        RunFolder(folder).open(META)


def test_load_items_rejects_duplicate_indices(tmp_path):
    from neqa.results import load_items
    folder = tmp_path / "fam" / "m" / "neqa__zeroshot"
    _write_run(folder, [{"index": 0, "correct": True}, {"index": 1, "correct": False}, {"index": 0, "correct": True}],
               META)
    (folder / "summary.json").write_text(json.dumps({"family": "fam", "member": "m", "task": "neqa",
                                                     "prompt": "zeroshot", "accuracy": 0.5, "n_items": 3}))
    with pytest.raises(DataError, match="duplicate index 0"):
        load_items(tmp_path)


# -- 2. a run's key covers the weights (local) and the server (API) -------------------------------------

def test_other_weights_at_the_same_path_are_refused_naming_the_file(tmp_path, capsys, tiny_model_dir,
                                                                     tiny_model_dir_2, small_neqa):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    args = ("--model", model, "--member", "m", "--data", small_neqa, "--output-dir", tmp_path / "out")
    assert run(capsys, *args)[0] == 0
    folder = tmp_path / "out" / "m" / "neqa__zeroshot"
    before = (folder / "items.jsonl").read_bytes()
    shutil.copy(tiny_model_dir_2 / "model.safetensors", model / "model.safetensors")   # retrained in place
    rc, _, err = run(capsys, *args)
    assert rc == 2
    assert "model.safetensors changed" in last_line(err) and "--replace" in last_line(err)
    assert (folder / "items.jsonl").read_bytes() == before


def test_replace_recomputes_a_run_of_other_weights(tmp_path, capsys, tiny_model_dir, tiny_model_dir_2, small_neqa):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    args = ("--model", model, "--member", "m", "--data", small_neqa, "--output-dir", tmp_path / "out")
    assert run(capsys, *args)[0] == 0
    shutil.copy(tiny_model_dir_2 / "model.safetensors", model / "model.safetensors")
    assert run(capsys, *args, "--replace")[0] == 0
    assert run(capsys, "--model", tiny_model_dir_2, "--member", "m", "--data", small_neqa,
               "--output-dir", tmp_path / "fresh")[0] == 0
    got = [json.loads(x)["choice_logprobs"] for x in
           (tmp_path / "out/m/neqa__zeroshot/items.jsonl").read_text().splitlines()]
    want = [json.loads(x)["choice_logprobs"] for x in
            (tmp_path / "fresh/m/neqa__zeroshot/items.jsonl").read_text().splitlines()]
    assert got == want


def test_unchanged_weights_are_not_hashed_again_on_resume(tmp_path, capsys, tiny_model_dir, small_neqa, monkeypatch):
    args = ("--model", tiny_model_dir, "--member", "m", "--data", small_neqa, "--output-dir", tmp_path / "out")
    assert run(capsys, *args)[0] == 0
    hashed = []
    import eval_pipeline.runs as runs
    real = runs.sha256
    monkeypatch.setattr(runs, "sha256", lambda p: (hashed.append(p), real(p))[1])
    assert run(capsys, *args)[0] == 0
    assert hashed == []
    os.utime(tiny_model_dir / "config.json")          # touched, same bytes: hashed again, accepted
    assert run(capsys, *args)[0] == 0
    assert hashed


def test_api_runs_are_keyed_by_base_url(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.open({**META, "base_url": "http://server-a/v1"})
    folder.close()
    with pytest.raises(RunMismatchError, match="base_url"):
        RunFolder(tmp_path / "run").open({**META, "base_url": "http://server-b/v1"})


# -- 3. the command line wins over the family file; data never enables code ------------------------------

def _family(tmp_path, model, options: str, backend="hf", name="fam", member="m"):
    path = tmp_path / f"{name}.yaml".replace("/", "_")
    path.write_text(f"name: {name!r}\nbackend: {backend}\nbackend_options: {options}\n"
                    f"members:\n  - name: {member!r}\n    model: {model}\n    params: 1000\n")
    return path


def test_family_file_cannot_enable_remote_code(tmp_path, capsys, tiny_model_dir, small_neqa):
    fam = _family(tmp_path, tiny_model_dir, "{trust_remote_code: true}")
    rc, _, err = run(capsys, "--family", fam, "--data", small_neqa, "--output-dir", tmp_path / "out")
    assert rc == 2
    assert str(fam) in last_line(err) and "trust_remote_code" in last_line(err)
    assert not (tmp_path / "out").exists()


def test_flags_win_over_the_family_file(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(evaluate, "get_backend", lambda name, **kw: seen.update(kw))
    fam_opts = {"base_url": "http://yaml-server/v1", "concurrency": 9}
    args = evaluate.parse_args(["--model", "gpt-x", "--backend", "openai", "--base-url", "http://mine/v1",
                                "--output-dir", str(tmp_path)])
    evaluate.build_backend("openai", "gpt-x", args, fam_opts)
    assert seen["base_url"] == "http://mine/v1"    # the key goes where the command line says
    assert seen["concurrency"] == 9                # not given on the command line: the family's value


def test_registry_shows_backend_options(tmp_path, capsys):
    from eval_pipeline.registry import main as registry
    fam = _family(tmp_path, "gpt-x", "{base_url: 'http://yaml-server/v1'}", backend="openai")
    assert registry([str(fam)]) == 0
    assert "base_url='http://yaml-server/v1'" in capsys.readouterr().out


# -- 4. (training side: test_faults_train.py) ----------------------------------------------------------
# -- 6. mistyped model paths, bad devices -----------------------------------------------------------------

def test_mistyped_local_model_path_fails_at_once(tmp_path, capsys, small_neqa, monkeypatch):
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.time()
    rc, _, err = run(capsys, "--model", "runs/tw-1mm", "--data", small_neqa, "--output-dir", tmp_path / "out")
    assert rc == 2 and time.time() - t0 < 10
    assert "runs/tw-1mm does not exist" in last_line(err)


@pytest.mark.parametrize("dev", ["bogus", "cuda:99"])
def test_bogus_device_is_an_argument_error(tmp_path, capsys, tiny_model_dir, small_neqa, dev):
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tiny_model_dir), "--data", str(small_neqa), "--output-dir", str(tmp_path), "--device", dev])
    assert e.value.code == 2
    assert "device" in capsys.readouterr().err and not (tmp_path / "model").exists()


def test_unexpected_exceptions_keep_their_traceback(tmp_path, monkeypatch, small_neqa):
    def bug(args):
        raise KeyError("a bug, not bad input")
    monkeypatch.setattr(evaluate, "plan_runs", bug)
    with pytest.raises(KeyError):
        main(["--model", "x/y/z", "--data", str(small_neqa), "--output-dir", str(tmp_path)])


# -- 8. names cannot escape the output folder -------------------------------------------------------------

@pytest.mark.parametrize("member", ["../escaped", "..", "a/b", "a\\b"])
def test_member_names_cannot_escape(tmp_path, capsys, tiny_model_dir, small_neqa, member):
    out = tmp_path / "deep" / "out"
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tiny_model_dir), "--member", member, "--data", str(small_neqa),
              "--output-dir", str(out), "--no-progress"])
    assert e.value.code == 2 and "--member" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["small.jsonl"]


@pytest.mark.parametrize("field, value", [("name", ".."), ("member", ".."), ("name", "a\\b"),
                                          ("member", "a\\b")])
def test_family_and_member_names_cannot_escape(tmp_path, capsys, tiny_model_dir, small_neqa, field, value):
    fam = _family(tmp_path, tiny_model_dir, "{}", **{field: value})
    rc, _, err = run(capsys, "--family", fam, "--data", small_neqa, "--output-dir", tmp_path / "deep" / "out")
    assert rc == 2 and "name" in last_line(err) and str(fam) in last_line(err)
    assert not (tmp_path / "deep").exists()


def test_revision_cannot_escape(tmp_path, capsys, tiny_model_dir, small_neqa):
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tiny_model_dir), "--revision", "../../x", "--data", str(small_neqa),
              "--output-dir", str(tmp_path / "out")])
    assert e.value.code == 2 and "--revision" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- 9. API failures lose nothing --------------------------------------------------------------------------

def test_api_failure_mid_chunk_keeps_the_finished_items(tmp_path, small_neqa):
    from eval_pipeline.backends.openai_api import OpenAIBackend
    items = load_neqa(NEQA_100)[:60]
    info = {"model": "fake", "revision": None, "dtype": None, "data_file": "x", "data_sha256": "x",
            "base_url": "fake"}
    folder = tmp_path / "run"
    with FakeOpenAI(max_requests=25) as server:   # request 26 on fails (HTTP 400, not retried)
        backend = OpenAIBackend("fake", base_url=server.url, concurrency=1, progress=False, max_retries=0,
                                scoring="top")
        with pytest.raises(Exception):
            evaluate_run(backend, TASK, "zeroshot", items, RunFolder(folder), info, progress=False)
    assert indices(folder) == list(range(25))
    with FakeOpenAI() as server:                   # the rerun asks only for the rest
        backend = OpenAIBackend("fake", base_url=server.url, concurrency=4, progress=False, scoring="top")
        evaluate_run(backend, TASK, "zeroshot", items, RunFolder(folder), info, progress=False)
        assert len(server.requests) == 35
    assert indices(folder) == list(range(60))


class Scripted(Backend):
    """Answers " A" always; fails after `fail_after` answers; reports `path` as its scoring path."""

    def __init__(self, path, fail_after=None):
        self.path, self.fail_after, self.n = path, fail_after, 0

    def score(self, requests, shared_prefix=""):
        return list(self.score_iter(requests, shared_prefix))

    def score_iter(self, requests, shared_prefix=""):
        for r in requests:
            if self.fail_after is not None and self.n >= self.fail_after:
                raise ConnectionError("server went away")
            self.n += 1
            yield ScoreResult(logprobs=[-0.1] + [-3.0] * (len(r.options) - 1), top_token=r.options[0])

    def generate(self, requests, shared_prefix=""):
        raise NotImplementedError

    def describe(self):
        return {"scoring_path": self.path}


def test_summary_records_every_scoring_path_across_resumes(tmp_path):
    items = load_neqa(NEQA_100)[:10]
    info = {"model": "m", "revision": None, "dtype": None, "data_file": "x", "data_sha256": "x"}
    with pytest.raises(ConnectionError):
        evaluate_run(Scripted("path-one", fail_after=4), TASK, "zeroshot", items, RunFolder(tmp_path / "r"), info,
                     progress=False)
    summary = evaluate_run(Scripted("path-two"), TASK, "zeroshot", items, RunFolder(tmp_path / "r"), info,
                           progress=False)
    assert summary["scoring_path"] == "path-one+path-two"
    assert indices(tmp_path / "r") == list(range(10))


@pytest.mark.parametrize("task, name", [("neqa", "d.jsonl"), ("prize", "d.csv")])
def test_non_utf8_evaluation_data_is_one_line(tmp_path, capsys, tiny_model_dir, task, name):
    data = tmp_path / name
    data.write_bytes("prompt,classes,answer_index\ncaf\xe9,\"[' A', ' B']\",0\n".encode("latin-1") if task == "prize"
                     else '{"question": "caf\xe9", "choices": ["a", "b"], "answer": 0}\n'.encode("latin-1"))
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--task", task, "--data", data, "--output-dir", tmp_path / "o")
    assert rc == 2 and str(data) in last_line(err) and "UTF-8" in last_line(err)
    assert not (tmp_path / "o").exists()

