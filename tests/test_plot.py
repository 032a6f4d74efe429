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


def test_summaries_read_like_the_analyses(tmp_path, capsys):
    """plot reads through neqa.results: names from the folder when a summary leaves them out, nothing
    from analysis/, and a broken items.jsonl is an error naming it."""
    res = tmp_path / "res"
    d = res / "tiny" / "t-small" / "neqa__zeroshot"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"accuracy": 0.6, "n_items": 20, "n_params": 2000}))
    a = res / "analysis" / "x" / "neqa__zeroshot"
    a.mkdir(parents=True)
    (a / "summary.json").write_text(json.dumps({"accuracy": 0.9, "n_items": 20, "n_params": 9000}))
    assert main([str(res), "--out-dir", str(tmp_path / "a")]) == 0
    rows = read_points(tmp_path / "a" / "points.csv")
    assert [(r["family"], r["member"], r["task"], r["prompt"], r["n_items"]) for r in rows] == [
        ("tiny", "t-small", "neqa", "zeroshot", "20")]
    c = res / "tiny" / "t-small" / "neqa__fewshot_cot"
    c.mkdir(parents=True)
    (c / "summary.json").write_text(json.dumps({"accuracy": 0.5, "n_items": 2, "n_params": 2000}))
    records = [{"index": 0, "prediction": "A", "correct": True}, {"index": 1, "prediction": None, "correct": False}]
    (c / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main([str(res), "--out-dir", str(tmp_path / "b")]) == 0
    cot = [r for r in read_points(tmp_path / "b" / "points.csv") if r["prompt"] == "fewshot_cot"]
    assert [float(r["answered"]) for r in cot] == [0.5]                 # one of two generations parsed
    records[1]["index"] = 0                                             # two runs mixed in one file
    (c / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert main([str(res), "--out-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(c / "items.jsonl") in err and "duplicate index" in err


def _pdf_width_inches(path):
    import re
    box = re.search(rb"/MediaBox \[\s*([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", path.read_bytes())
    return (float(box.group(3)) - float(box.group(1))) / 72


def test_like_with_like_layout_no_answer_and_width(tmp_path, capsys):
    res = tmp_path / "res"
    write_results(res)
    # a chain-of-thought run whose generations never gave a parsable answer
    d = res / "pythia" / "pythia-410m" / "neqa__fewshot_cot"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"family": "pythia", "member": "pythia-410m", "task": "neqa",
                                                "prompt": "fewshot_cot", "accuracy": 0.0, "accuracy_ci": [0, 0],
                                                "n_items": 3}))
    (d / "items.jsonl").write_text("".join(json.dumps({"index": i, "prediction": None, "correct": False}) + "\n"
                                           for i in range(3)))
    out = tmp_path / "fig"
    assert main([str(res), "--out-dir", str(out), "--ncols", "2"]) == 0
    err = capsys.readouterr().err
    assert "no parsable answer" in err and "pythia-410m" in err
    rows = {(r["member"], r["prompt"]): r for r in read_points(out / "points.csv")}
    assert float(rows[("pythia-410m", "fewshot_cot")]["answered"]) == 0.0
    assert float(rows[("pythia-70m", "zeroshot")]["answered"]) == 1.0
    for stem in ("fig2_neqa", "fig4_tasks"):
        assert _pdf_width_inches(out / f"{stem}.pdf") <= 7.05, stem


def test_x_axis_is_order_where_sizes_are_shared_and_paper_items_only(tmp_path, capsys):
    from eval_pipeline.plot import choose_x, paper_digests
    pts = [{"series": "f", "member": m, "params": p} for m, p in (("a", 1e9), ("b", 175e9), ("c", 175e9))]
    assert choose_x(pts, published=False) == "order"
    assert choose_x(pts[:2], published=False) == "params"
    assert choose_x(pts[:2], published=True) == "order"
    res = tmp_path / "res"
    for member, sha in (("pythia-70m", paper_digests()["neqa"]), ("pythia-1b", "0" * 64)):
        d = res / "pythia" / member / "neqa__zeroshot"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"family": "pythia", "member": member, "task": "neqa",
                                                    "prompt": "zeroshot", "accuracy": 0.5, "n_items": 100,
                                                    "data_sha256": sha}))
    assert main([str(res), "--published", "--out-dir", str(tmp_path / "a")]) == 0
    assert "left out of the comparison" in capsys.readouterr().err
    kept = [r["member"] for r in read_points(tmp_path / "a" / "points.csv") if r["source"] == "results"]
    assert kept == ["pythia-70m"]
    assert main([str(res), "--published", "--any-items", "--out-dir", str(tmp_path / "b")]) == 0
    kept = [r["member"] for r in read_points(tmp_path / "b" / "points.csv") if r["source"] == "results"]
    assert sorted(kept) == ["pythia-1b", "pythia-70m"]
