"""Fault injection, data side: bad bytes, folders for files, unwritable outputs, outputs over inputs,
and the one error contract (`error: ...` on stderr, exit 2, no traceback; bugs keep theirs).

Every test here is one fault the repository must survive; `pytest -m fault` counts them (README)."""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
from conftest import REPO

from data_pipeline import build, check, export, negate, stats, variants
from neqa.io import atomic_open, write_json

pytestmark = pytest.mark.fault

NEQA_100 = REPO / "data_pipeline" / "neqa_100.jsonl"
OBQA = REPO / "data_pipeline" / "sources" / "openbookqa" / "dev.jsonl"
BAD_NEQA = '{"question": 1}\n'


def call(capsys, main, *argv):
    """Run a command in-process: an exception escaping it is the traceback the contract forbids."""
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(err: str, *needles) -> None:
    """The last line of stderr is the error (progress bars may come before it), and there is no traceback."""
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert last.startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert str(n) in err, (n, err)


# -- non-UTF-8 input, a folder given as a file ---------------------------------------------------------

def _latin1(tmp_path) -> Path:
    p = tmp_path / "latin1.jsonl"
    p.write_bytes('{"question": "caf\xe9", "choices": ["a", "b"], "answer": 0}\n'.encode("latin-1"))
    return p


READERS = {   # command, argv given the input file and a scratch folder
    "negate": (negate.main, lambda f, d: [f, d / "out.jsonl"]),
    "variants": (variants.main, lambda f, d: [f, "--out-dir", d, "--no-originals"]),
    "export": (export.main, lambda f, d: [f, "--task2", "", "--out-dir", d]),
    "stats": (stats.main, lambda f, d: [f, "--out", d / "s.png"]),
    "check": (check.main, lambda f, d: ["--reference", f]),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_non_utf8_input_is_one_line_naming_the_file(tmp_path, capsys, name):
    main, argv = READERS[name]
    f = _latin1(tmp_path)
    rc, _, err = call(capsys, main, *argv(f, tmp_path / "out"))
    assert rc == 2
    one_line_error(err, f, "UTF-8")


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_folder_given_as_input_file(tmp_path, capsys, name):
    main, argv = READERS[name]
    folder = tmp_path / "a_folder.jsonl"
    folder.mkdir()
    rc, _, err = call(capsys, main, *argv(folder, tmp_path / "out"))
    assert rc == 2
    one_line_error(err, folder, "folder")


# -- outputs that cannot be written ------------------------------------------------------------------

def test_output_under_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    out = blocker / "sub" / "out.jsonl"   # its folder cannot be created: a file is in the way
    rc, _, err = call(capsys, negate.main, OBQA, out)
    assert rc == 2
    one_line_error(err, out)


def test_output_that_is_a_folder_is_one_line(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.mkdir()
    rc, _, err = call(capsys, negate.main, OBQA, out)
    assert rc == 2
    one_line_error(err, out, "folder")
    assert out.is_dir() and not any(out.iterdir())


# -- never overwrite an input; check every input before writing ---------------------------------------

def test_negate_refuses_to_overwrite_its_input(tmp_path, capsys):
    f = tmp_path / "obqa.jsonl"
    f.write_bytes(OBQA.read_bytes())
    rc, _, err = call(capsys, negate.main, f, f)
    assert rc == 2
    one_line_error(err, "also an input")
    assert f.read_bytes() == OBQA.read_bytes()


def test_negate_refuses_the_input_under_another_spelling(tmp_path, capsys, monkeypatch):
    f = tmp_path / "obqa.jsonl"
    f.write_bytes(OBQA.read_bytes())
    monkeypatch.chdir(tmp_path)
    rc, _, err = call(capsys, negate.main, f, "./obqa.jsonl")
    assert rc == 2 and f.read_bytes() == OBQA.read_bytes()


def test_build_with_a_bad_check_file_keeps_the_existing_output(tmp_path, capsys):
    out = tmp_path / "neqa.jsonl"
    out.write_text("precious\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(BAD_NEQA)
    rc, _, err = call(capsys, build.main, "--out", out, "--check", bad, "--quiet")
    assert rc == 2
    one_line_error(err, bad, "line 1")
    assert out.read_text() == "precious\n"
    assert not (tmp_path / "neqa_task1.jsonl").exists()


def test_variants_with_a_bad_compare_file_keeps_the_existing_outputs(tmp_path, capsys):
    outs = [tmp_path / "neqa_100_task1.jsonl", tmp_path / "neqa_100_task2.jsonl"]
    for o in outs:
        o.write_text("precious\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(BAD_NEQA)
    rc, _, err = call(capsys, variants.main, NEQA_100, "--out-dir", tmp_path, "--compare", bad, "--no-originals")
    assert rc == 2
    one_line_error(err, bad)
    assert [o.read_text() for o in outs] == ["precious\n"] * 2


def test_variants_refuses_an_output_equal_to_an_input(tmp_path, capsys):
    plain = tmp_path / "x_task2.jsonl"   # --plain named like the task-2 output it would be replaced by
    plain.write_bytes(NEQA_100.read_bytes())
    inp = tmp_path / "x.jsonl"
    inp.write_bytes(NEQA_100.read_bytes())
    rc, _, err = call(capsys, variants.main, inp, "--plain", plain, "--no-originals")
    assert rc == 2 and "also an input" in err
    assert plain.read_bytes() == NEQA_100.read_bytes()


def test_check_json_refuses_to_overwrite_the_reference(tmp_path, capsys):
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(NEQA_100.read_bytes())
    rc, _, err = call(capsys, check.main, "--reference", ref, "--json", ref)
    assert rc == 2 and "also an input" in err
    assert ref.read_bytes() == NEQA_100.read_bytes()


# -- small ones ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["neqa_100.jsonl", "neqa_100_nonnegated.jsonl", "neqa_100_normalized.jsonl"])
def test_stats_draws_the_shipped_files_without_metadata(tmp_path, capsys, name):
    png = tmp_path / "stats.png"
    rc, out, err = call(capsys, stats.main, REPO / "data_pipeline" / name, "--out", png)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "100 items" in out


def test_check_json_is_valid_json_when_nothing_is_rated(tmp_path, capsys):
    ref = tmp_path / "lama_only.jsonl"   # Negated-LAMA items only: no OpenBookQA rule to rate
    ref.write_text(json.dumps({"question": "x is not a ___ ?", "choices": ["a", "b"], "answer": 0,
                               "metadata": {"dataset": "TREx"}}) + "\n")
    out = tmp_path / "check.json"
    rc, _, err = call(capsys, check.main, "--reference", ref, "--json", out)
    assert rc == 0, err

    def no_nan(token):
        raise AssertionError(f"invalid JSON constant {token}")
    report = json.loads(out.read_text(), parse_constant=no_nan)
    assert report["n"] == 0 and report["rate"] is None


def test_write_json_never_writes_nan(tmp_path):
    p = tmp_path / "x.json"
    write_json(p, {"a": float("nan"), "b": [float("inf"), 1.5]})
    assert json.loads(p.read_text(), parse_constant=lambda t: pytest.fail(t)) == {"a": None, "b": [None, 1.5]}


def test_atomic_open_fsyncs_before_renaming(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    with atomic_open(tmp_path / "f.txt") as f:
        f.write("data")
    assert events[:2] == ["fsync", "replace"]
    assert (tmp_path / "f.txt").read_text() == "data"


def test_report_is_written_atomically(tmp_path):
    """A report that fails while being written leaves the previous REPORT.md whole."""
    import scripts.report as report
    out = tmp_path / "REPORT.md"
    out.write_text("the previous report\n")
    with pytest.raises(UnicodeEncodeError):   # a lone surrogate cannot be written as UTF-8
        report.main(["--results", str(tmp_path), "--eval", str(tmp_path / "none"),
                     "--family-run", str(tmp_path / "none"), "--title", "bad \ud800 title"])
    assert out.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["REPORT.md"]


# -- the error contract, command by command -----------------------------------------------------------

COMMANDS = ["data_pipeline.build", "data_pipeline.check", "data_pipeline.export", "data_pipeline.negate",
            "data_pipeline.stats", "data_pipeline.variants", "eval_pipeline.analyze", "eval_pipeline.evaluate",
            "eval_pipeline.plot", "eval_pipeline.registry", "simulation.sentiment_eval", "simulation.family",
            "simulation.composition", "simulation.sentiment_train", "simulation.world", "scripts.report",
            "benchmarks.score_throughput", "benchmarks.compare_runs", "benchmarks.train_speed", "simulation.deviations",
            "simulation.sentiment_plateau", "simulation.letter_format"]


@pytest.mark.parametrize("module", COMMANDS)
def test_every_command_goes_through_the_one_error_wrapper(module):
    main = importlib.import_module(module).main
    assert getattr(main, "__wrapped__", None) is not None and main.__module__ == module
    assert main.__code__.co_filename.endswith(os.path.join("neqa", "cli.py"))


def test_an_oserror_naming_a_file_is_one_line(capsys):
    from neqa.cli import command

    @command
    def main(argv=None):
        raise PermissionError(13, "Permission denied", "/some/output.csv")
    assert main([]) == 2
    one_line_error(capsys.readouterr().err, "/some/output.csv", "Permission denied")


@pytest.mark.parametrize("bug", [KeyError("x"), ValueError("bug"), TypeError("bug"), OSError("no file named")])
def test_bugs_keep_their_traceback(bug):
    from neqa.cli import command

    @command
    def main(argv=None):
        raise bug
    with pytest.raises(type(bug)):
        main([])
