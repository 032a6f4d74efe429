"""Every shell script answers --help with its usage and does nothing else: no virtual environment is
built, nothing is trained or written (the scripts are run with NEQA_VENV pointing to a folder that must
stay absent)."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ["scripts/reproduce.sh", "scripts/test.sh", "data_pipeline/run.sh", "eval_pipeline/run.sh",
           "simulation/run.sh", "benchmarks/run.sh", ".ci/run"]


def _run(tmp_path, script, *args):
    env = {**os.environ, "NEQA_VENV": str(tmp_path / "venv"), "NEQA_BENCH_VENV": str(tmp_path / "venv-bench")}
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    out = subprocess.run(["bash", str(REPO / script), *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=30)
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    assert not (tmp_path / "venv").exists() and not (tmp_path / "venv-bench").exists()
    assert before == after                    # nothing written into the checkout
    return out


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_does_nothing_else(tmp_path, script, flag):
    out = _run(tmp_path, script, flag)
    assert out.returncode == 0, out.stderr
    header = (REPO / script).read_text().splitlines()[1].lstrip("# ").strip()
    assert out.stdout.splitlines()[0].strip() == header
    assert "[env]" not in out.stderr


@pytest.mark.parametrize("script", ["eval_pipeline/run.sh", "simulation/run.sh", "scripts/reproduce.sh",
                                    "data_pipeline/run.sh"])
def test_unknown_arguments_are_refused_before_anything_runs(tmp_path, script):
    out = _run(tmp_path, script, "--bogus")
    assert out.returncode == 2 and "unknown argument --bogus" in out.stderr
