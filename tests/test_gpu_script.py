"""benchmarks/gpu.sh without a GPU: its arguments and its clear refusal; and the comparison it runs
(benchmarks/compare_runs.py) on hand-made records."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from benchmarks.compare_runs import compare, main

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu.sh"


def gpu_sh(*args, path=None):
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def test_help_does_nothing_else():
    r = gpu_sh("--help")
    assert r.returncode == 0 and "bfloat16" in r.stdout and "--tolerance" in r.stdout and not r.stderr


@pytest.mark.parametrize("args,needle", [(["--bogus"], "unknown argument --bogus"), (["--items", "0"], "--items"),
                                         (["--tolerance", "-1"], "tolerance"), (["--model"], "needs a value")])
def test_bad_arguments(args, needle):
    r = gpu_sh(*args)
    assert r.returncode == 2 and needle in r.stderr and r.stderr.startswith("error: ")


def test_without_a_gpu_it_fails_clearly(tmp_path):
    listed = subprocess.run("nvidia-smi -L", shell=True, capture_output=True, text=True).stdout
    if listed.startswith("GPU"):
        pytest.skip("this machine has a GPU: the script would run its checks")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    (fake / "nvidia-smi").chmod(0o755)
    for path in (f"{fake}:{os.environ['PATH']}", "/usr/bin:/bin"):   # a driver without a GPU; no driver at all
        r = gpu_sh("--out", str(tmp_path / "out"), path=path)
        assert r.returncode == 2 and "needs a CUDA GPU" in r.stderr
    assert not (tmp_path / "out").exists()


def _records(logprobs, answers):
    return [{"index": i, "prompt": f"q{i}", "choice_logprobs": lp, "answer": a,
             "prediction": max(range(len(lp)), key=lp.__getitem__),
             "correct": max(range(len(lp)), key=lp.__getitem__) == a} for i, (lp, a) in enumerate(zip(logprobs, answers))]


def test_compare_accuracy_and_tolerance():
    f32 = _records([[-0.5, -1.0], [-2.0, -0.1], [-0.7, -0.69]], [0, 1, 1])
    close = _records([[-0.52, -1.03], [-2.1, -0.12], [-0.69, -0.71]], [0, 1, 1])   # item 2 flips from B to A
    r = compare(f32, close, tolerance=0.15)
    assert r["max_abs_logprob_diff"] == pytest.approx(0.1)
    assert r["accuracy_a"] == 1.0 and r["accuracy_b"] == pytest.approx(2 / 3)
    assert r["changed_predictions"] == [2] and r["logprobs_within_tolerance"] and not r["ok"]
    assert compare(f32, f32, tolerance=0.0)["ok"]
    assert not compare(f32, close, tolerance=0.05)["logprobs_within_tolerance"]
    with pytest.raises(ValueError, match="different prompts"):
        compare(f32, [{**f32[0], "prompt": "other"}] + f32[1:], tolerance=1)


def test_compare_command(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, lps in ((a, [[-0.5, -1.0], [-2.0, -0.1]]), (b, [[-0.55, -1.0], [-2.0, -0.1]])):
        folder.mkdir()
        (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records(lps, [0, 1])))
    assert main([str(a), str(b), "--tolerance", "0.1", "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["max_abs_logprob_diff"] == pytest.approx(0.05)
    assert main([str(a), str(b), "--tolerance", "0.01"]) == 1
    assert "EXCEEDED" in capsys.readouterr().out
    assert main([str(a), str(tmp_path / "missing"), "--tolerance", "0.1"]) == 2
