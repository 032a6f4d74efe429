"""Fault injection, training side: a crafted state.pt, resumes and reuses with other settings, bad
arguments, and crashes while a model or tokenizer folder is being replaced. Counted by `pytest -m fault`."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from conftest import REPO

import simulation.loop as loop
from neqa.io import DataError
from simulation import family
from simulation import sentiment_train as train_cli
from simulation.loop import TrainConfig, read_log, save_pretrained_atomic, train
from simulation.model import make_model

pytestmark = [pytest.mark.fault, pytest.mark.usefixtures("one_thread")]   # conftest: torch on one thread

V = 32


def stream(n=3000):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, V, (n,), generator=g)


def model(seed=0):
    return make_model(V, n_layer=1, n_head=2, n_embd=16, n_positions=32, seed=seed)


def cfg(**kw):
    base = dict(steps=20, batch_size=4, seq_len=16, lr=1e-2, warmup=2, progress=False, log_every=5, state_every=5)
    base.update(kw)
    return TrainConfig(**base)


class Crash(RuntimeError):
    pass


def crashing_batches(data, at_step, c):
    from simulation.loop import stream_batch

    def get(step, g):
        if step == at_step:
            raise Crash()
        return stream_batch(data, c.batch_size, c.seq_len, g)
    return get


# -- 4. no pickle from disk ------------------------------------------------------------------------------

class Payload:
    """Unpickling this object creates a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_state_pt_runs_no_code(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "code_ran"
    torch.save({"model": Payload(marker), "step": 1}, out / "state.pt")
    with pytest.raises(DataError, match="state.pt"):
        train(model(), stream(), cfg(), out)
    assert not marker.exists()


def test_no_module_loads_torch_files_with_pickle():
    offenders = []
    for folder in ("data_pipeline", "eval_pipeline", "simulation", "scripts", "benchmarks"):
        for p in (REPO / folder).rglob("*.py"):
            for call in re.findall(r"torch\.load\([^)]*\)", p.read_text(encoding="utf-8")):
                if "weights_only=True" not in call:
                    offenders.append(f"{p.relative_to(REPO)}: {call}")
    assert offenders == []


# -- 5. training resume checks its config ------------------------------------------------------------

def test_resume_with_another_lr_is_refused_naming_it(tmp_path):
    c = cfg()
    with pytest.raises(Crash):
        train(model(), crashing_batches(stream(), 12, c), c, tmp_path / "run")
    with pytest.raises(loop.SettingsMismatchError, match=r"lr: 0\.01 then, 0\.001 now"):
        train(model(), stream(), cfg(lr=1e-3), tmp_path / "run")
    assert (tmp_path / "run" / "state.pt").exists()   # nothing lost


def test_a_finished_run_is_not_reused_for_other_settings(tmp_path):
    train(model(), stream(), cfg(), tmp_path / "run")
    with pytest.raises(loop.SettingsMismatchError, match="steps: 20 then, 30 now"):
        train(model(), stream(), cfg(steps=30), tmp_path / "run")
    with pytest.raises(loop.SettingsMismatchError, match="n_layer"):
        train(model(), stream(), cfg(), tmp_path / "run", settings={"n_layer": 2})


def test_restart_trains_again_with_the_new_settings(tmp_path):
    train(model(), stream(), cfg(), tmp_path / "run")
    log = train(model(), stream(), cfg(lr=1e-3), tmp_path / "run", restart=True)
    assert log[-1]["step"] == 20 and max(r["lr"] for r in log) <= 1e-3   # every row under the new peak lr
    assert read_log(tmp_path / "run" / "train_log.jsonl") == log


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--pretrain-steps", "-3"], ["--batch-size", "0"], ["--n-train", "0"],
                                  ["--lr", "0"], ["--lr", "-0.1"], ["--lr", "nan"], ["--lr", "inf"],
                                  ["--threads", "0"], ["--device", "bogus"]])
def test_bad_training_arguments(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--ratio", "0", "--runs", str(tmp_path / "runs"), "--quiet"] + argv)
    assert e.value.code == 2
    assert argv[0] in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv", [["--tokens", "0"], ["--batch-size", "0"], ["--seq-len", "0"],
                                  ["--checkpoints", "-1"], ["--device", "bogus"]])
def test_bad_family_arguments(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as e:
        family.main(["--quick", "--out", str(tmp_path / "fam"), "--quiet"] + argv)
    assert e.value.code == 2 and argv[0] in capsys.readouterr().err
    assert not (tmp_path / "fam").exists()


def test_train_cli_resume_with_other_lr_is_one_line(tmp_path, capsys):
    base = ["--ratio", "0", "--sizes", "0", "--seeds", "0", "--pretrain-steps", "2", "--n-train", "64",
            "--out-dir", str(tmp_path / "run"), "--quiet", "--threads", "1", "--lr", "0.003"]
    assert train_cli.main(base) == 0
    capsys.readouterr()
    assert train_cli.main(base + ["--lr", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "lr: 0.003 then, 0.001 now" in err and "--restart" in err
    assert train_cli.main(base + ["--lr", "0.001", "--restart"]) == 0


# -- 10. folders replaced atomically --------------------------------------------------------------------

def test_final_folder_survives_a_failed_replacement(tmp_path, monkeypatch):
    m = model()
    final = tmp_path / "final"
    save_pretrained_atomic(m, None, final)
    before = {p.name: p.read_bytes() for p in final.iterdir()}
    real = os.replace

    def failing(src, dst):
        if Path(dst).name == "final" and Path(src).name.endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        save_pretrained_atomic(model(seed=1), None, final)
    assert {p.name: p.read_bytes() for p in final.iterdir()} == before


def test_tokenizer_folder_survives_a_failed_save(tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerFast

    from simulation import world as W
    small = W.WorldConfig(seed=3, entities_per_kind=8, statement_repeats=3, question_repeats=2, vocab_size=400)
    out = tmp_path / "data"
    W.write_data(out, small, log=lambda *a: None)
    before = {p.name: p.read_bytes() for p in (out / "tokenizer").iterdir()}
    real = PreTrainedTokenizerFast.save_pretrained

    def half_then_crash(self, folder, *a, **kw):
        real(self, folder, *a, **kw)
        (Path(folder) / "tokenizer.json").write_text("{half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", half_then_crash)
    with pytest.raises(OSError):
        W.write_data(out, small, log=lambda *a: None)
    assert {p.name: p.read_bytes() for p in (out / "tokenizer").iterdir()} == before
