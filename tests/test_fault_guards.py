"""Guards beside the fault suite (not faults themselves): what the fixes must not break."""
from __future__ import annotations

import pytest
from conftest import REPO
from test_faults_train import Crash, cfg, crashing_batches, model, stream

from eval_pipeline.evaluate import main as evaluate_main
from simulation.loop import train


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest: torch on one thread


def test_a_real_state_still_resumes(tmp_path):
    c = cfg()
    with pytest.raises(Crash):
        train(model(), crashing_batches(stream(), 12, c), c, tmp_path / "run")
    assert (tmp_path / "run" / "state.pt").exists()
    resumed = train(model(), stream(), c, tmp_path / "run")
    straight = train(model(), stream(), c, tmp_path / "straight")
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in straight], abs=1e-6)


def test_resume_may_change_device_and_progress(tmp_path):
    c = cfg()
    with pytest.raises(Crash):
        train(model(), crashing_batches(stream(), 12, c), c, tmp_path / "run")
    log = train(model(), stream(), cfg(device="cpu", progress=False, log_every=10), tmp_path / "run")
    assert log[-1]["step"] == 20


def test_every_command_lists_here():
    """Every module with a main() is in the fault suite's COMMANDS (so its wrapper test sees new commands)."""
    found = set()
    for folder in ("data_pipeline", "eval_pipeline", "simulation", "scripts", "benchmarks"):
        for p in (REPO / folder).rglob("*.py"):
            if "\ndef main(" in p.read_text(encoding="utf-8"):
                found.add(".".join(p.relative_to(REPO).with_suffix("").parts))
    from test_faults_data import COMMANDS
    assert found == set(COMMANDS)


def test_unwritable_output_dir_is_one_line(tmp_path, capsys, tiny_model_dir, small_neqa):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = evaluate_cli(capsys, "--model", tiny_model_dir, "--data", small_neqa, "--output-dir", blocker / "out")
    assert rc == 2 and last_line(err).startswith("error: ") and str(blocker) in last_line(err)


def evaluate_cli(capsys, *argv):
    rc = evaluate_main([str(a) for a in argv] + ["--no-progress"])
    return rc, None, capsys.readouterr().err


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1] if err.strip() else ""


@pytest.fixture
def small_neqa(tmp_path):
    from data_pipeline.schema import load_neqa
    from neqa.io import write_jsonl
    path = tmp_path / "small.jsonl"
    write_jsonl(path, load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:6])
    return path
