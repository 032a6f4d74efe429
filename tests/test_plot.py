"""Figures 2 and 4 from a hand-written results folder."""
import csv
import json

import pytest

from eval_pipeline.plot import main

# (family, member, task, prompt, accuracy, [lo, hi], n_params or None)
SUMMARIES = [
    ("pythia", "pythia-70m", "neqa", "zeroshot", 0.62, [0.52, 0.71], None),
    ("pythia", "pythia-410m", "neqa", "zeroshot", 0.48, [0.38, 0.58], None),
    ("pythia", "pythia-1b", "neqa", "zeroshot", 0.40, [0.31, 0.50], None),
    ("pythia", "pythia-70m", "neqa", "fewshot_cot", 0.50, [0.40, 0.60], None),
    ("pythia", "pythia-1b", "neqa", "fewshot_cot", 0.55, [0.45, 0.65], None),
    ("pythia", "pythia-70m", "task1", "zeroshot", 0.45, [0.35, 0.55], None),
    ("pythia", "pythia-1b", "task1", "zeroshot", 0.70, [0.60, 0.78], None),
    ("pythia", "pythia-70m", "task2", "weak", 0.50, [0.40, 0.60], None),
    ("pythia", "pythia-70m", "task2", "strong", 0.52, [0.42, 0.62], None),
    ("pythia", "pythia-70m@step1000", "neqa", "zeroshot", 0.50, [0.40, 0.60], None),   # a checkpoint
    ("pythia", "pythia-1b@step1000", "neqa", "zeroshot", 0.52, [0.42, 0.62], None),
    ("gpt2", "gpt2", "neqa", "zeroshot", 0.57, [0.47, 0.66], None),
    ("gpt2", "gpt2-xl", "neqa", "zeroshot", 0.35, [0.26, 0.45], None),
    ("tiny", "t-small", "neqa", "zeroshot", 0.60, [0.50, 0.70], 2000),     # a family the registry doesn't know
    ("tiny", "t-big", "neqa", "zeroshot", 0.30, [0.21, 0.40], 90000),
]


def write_results(root):
    for fam, member, task, prompt, acc, ci, n_params in SUMMARIES:
        d = root / fam / member / f"{task}__{prompt}"
        d.mkdir(parents=True)
        s = {"family": fam, "member": member, "task": task, "prompt": prompt, "accuracy": acc,
             "accuracy_ci": ci, "n_items": 100, "n_params": n_params}
        (d / "summary.json").write_text(json.dumps(s))


def read_points(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_figures_and_csv_match_inputs(tmp_path):
    write_results(tmp_path / "res")
    out = tmp_path / "fig"
    assert main([str(tmp_path / "res"), "--out-dir", str(out)]) == 0
    for stem in ("fig2_neqa", "fig4_tasks"):
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    rows = read_points(out / "points.csv")
    assert len(rows) == len(SUMMARIES)
    got = {(r["family"], r["member"], r["task"], r["prompt"]): r for r in rows}
    for fam, member, task, prompt, acc, ci, n_params in SUMMARIES:
        r = got[(fam, member, task, prompt)]
        assert float(r["accuracy"]) == pytest.approx(acc)
        assert [float(r["ci_lo"]), float(r["ci_hi"])] == pytest.approx(ci)
        assert r["source"] == "results" and r["n_items"] == "100"
    # sizes and order from the registry (Pythia paper counts), or from the summary for unknown families
    assert float(got[("pythia", "pythia-1b", "task1", "zeroshot")]["params"]) == 1011781632
    assert got[("pythia", "pythia-1b", "task1", "zeroshot")]["order"] == "4"      # 70m, 160m, 410m, 1b
    assert got[("gpt2", "gpt2-xl", "neqa", "zeroshot")]["order"] == "4"
    assert got[("pythia", "pythia-1b@step1000", "neqa", "zeroshot")]["order"] == "4"   # MEMBER@REVISION
    assert float(got[("pythia", "pythia-1b@step1000", "neqa", "zeroshot")]["params"]) == 1011781632
    assert got[("tiny", "t-big", "neqa", "zeroshot")]["order"] == "2"
    assert float(got[("tiny", "t-big", "neqa", "zeroshot")]["params"]) == 90000


@pytest.mark.slow
def test_published_points_and_flops_axis(tmp_path):
    write_results(tmp_path / "res")
    out = tmp_path / "fig"
    assert main([str(tmp_path / "res"), "--published", "--x", "flops", "--out-dir", str(out)]) == 0
    rows = read_points(out / "points.csv")
    # gpt2 and tiny have no training FLOPs, so only pythia's results are plotted on this axis
    results = [r for r in rows if r["source"] == "results"]
    assert {r["family"] for r in results} == {"pythia"}
    published = [r for r in rows if r["source"] == "published"]
    # the paper's curves with known FLOPs: GPT-3 and Jurassic (the text series and Cohere have no token counts)
    assert {r["family"] for r in published} == {"gpt3", "jurassic"}
    davinci = next(r for r in published if r["member"] == "davinci" and r["task"] == "task1")
    assert float(davinci["accuracy"]) == pytest.approx(0.76)         # paper_figure_values.csv: 76%
    assert float(davinci["flops"]) == pytest.approx(6 * 175e9 * 300e9)
    assert (out / "fig4_tasks.png").exists()


def test_bad_summary_names_file_and_field(tmp_path, capsys):
    d = tmp_path / "res" / "pythia" / "pythia-70m" / "neqa__zeroshot"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"family": "pythia", "member": "pythia-70m", "task": "neqa",
                                                "prompt": "zeroshot", "accuracy": 62}))
    assert main([str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert str(d / "summary.json") in err and "field 'accuracy'" in err
    assert not (tmp_path / "res" / "figures").exists()
