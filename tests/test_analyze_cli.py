import csv
import json
from pathlib import Path

import numpy as np
import pytest

from eval_pipeline.analyze import main


def write_run(root, family, member, task, prompt, correct, brier=None, **extra):
    d = Path(root) / family / member / f"{task}__{prompt}"
    d.mkdir(parents=True, exist_ok=True)
    correct = np.asarray(correct, dtype=bool)
    brier = np.where(correct, 0.1, 0.6) if brier is None else np.asarray(brier)
    with open(d / "items.jsonl", "w") as f:
        for i, (c, b) in enumerate(zip(correct, brier)):
            f.write(json.dumps({"index": i, "correct": bool(c), "brier": float(b),
                                "p_right": float(1 - np.sqrt(b))}) + "\n")
    summary = {"family": family, "member": member, "task": task, "prompt": prompt,
               "n_items": len(correct), "accuracy": float(correct.mean()), **extra}
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def synthetic_family(root, accs, task="neqa", prompt="zeroshot", n=400, family="synth", seed=0):
    rng = np.random.default_rng(seed)
    params = np.logspace(7, 11, len(accs))
    for i, (acc, p) in enumerate(zip(accs, params)):
        correct = rng.random(n) < acc
        write_run(root, family, f"m{i}", task, prompt, correct, n_params=float(p), flops=float(6 * p * 3e11),
                  train_tokens=3e11)
    return params


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_trends_on_results_folder(tmp_path, capsys):
    synthetic_family(tmp_path, [0.75, 0.5, 0.3, 0.5, 0.75])
    synthetic_family(tmp_path, [0.4, 0.5, 0.6, 0.7, 0.8], task="task1")
    assert main(["trends", str(tmp_path)]) == 0
    rows = {r["task"]: r for r in read_csv(tmp_path / "analysis" / "trends.csv")}
    assert rows["neqa"]["label"] == "u-shaped" and rows["neqa"]["method"] == "items"
    assert rows["task1"]["label"] == "positive"
    for ext in ("png", "pdf"):
        assert (tmp_path / "analysis" / f"trends.{ext}").stat().st_size > 0


@pytest.mark.slow
def test_trends_published(tmp_path, capsys):
    assert main(["trends", "--published", "--out-dir", str(tmp_path), "--n-boot", "500"]) == 0
    out = capsys.readouterr().out
    assert "agreement with the paper's labels:" in out
    rows = read_csv(tmp_path / "trends_published.csv")
    assert len(rows) == 18 and {"paper_label", "label", "agree"} <= set(rows[0])


@pytest.mark.slow
def test_decompose_and_fits_on_results_folder(tmp_path, capsys):
    x = np.linspace(0, 1, 5)
    t1, s = 0.5 + 0.4 * x, 1 / (1 + np.exp(-(x - 0.7) * 20))
    neqa = t1 * s + (1 - t1) * (1 - s)
    synthetic_family(tmp_path, t1, task="task1", n=2000, seed=1)
    synthetic_family(tmp_path, 0.5 + 0.5 * s, task="task2", prompt="strong", n=2000, seed=2)
    synthetic_family(tmp_path, neqa, prompt="zeroshot_hint", n=2000, seed=3)
    assert main(["decompose", str(tmp_path), "--pairs", "strong:zeroshot_hint", "--n-boot", "50"]) == 0
    rows = {r["mapping"]: r for r in read_csv(tmp_path / "analysis" / "decompose.csv")}
    assert set(rows) == {"above_chance", "raw"}
    assert {"family", "task2_prompt", "neqa_prompt", "mapping", "r2", "mae"} <= set(rows["raw"])
    assert float(rows["above_chance"]["r2"]) > 0.9 and float(rows["raw"]["r2"]) < float(rows["above_chance"]["r2"])
    assert len(read_csv(tmp_path / "analysis" / "decompose_models.csv")) == 10
    assert main(["fits", str(tmp_path), "--n-boot", "50"]) == 0
    assert len(read_csv(tmp_path / "analysis" / "fits.csv")) == 3
    (chin,) = read_csv(tmp_path / "analysis" / "fits_chinchilla.csv")
    assert chin["identifiable"] == "False"                       # one data budget per size (train_tokens 3e11)
    assert "single data budget" in chin["why"]


def test_decompose_published(tmp_path, capsys):
    assert main(["decompose", "--published", "--out-dir", str(tmp_path), "--n-boot", "20"]) == 0
    rows = read_csv(tmp_path / "decompose.csv")
    assert {(r["family"], r["task2_prompt"], r["neqa_prompt"], r["mapping"]) for r in rows} == {
        (f, p2, pn, m) for f in ("GPT-3", "GPT-3 Text Series")
        for p2, pn in (("weak", "zeroshot"), ("strong", "zeroshot_hint")) for m in ("above_chance", "raw")}


def test_slice_sandwich_cli(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.linspace(18, 24, 10)
    for i, lx in enumerate(x):
        p_easy = 0.55 + 0.06 * (lx - 18)
        p_hard = 0.40 - 0.05 * (lx - 18) + 0.02 * (lx - 18) ** 2
        p = np.clip(np.where(np.arange(200) % 2 == 0, p_easy, p_hard) + rng.normal(0, 0.02, 200), 0.01, 0.99)
        write_run(tmp_path, "synth", f"m{i}", "neqa", "zeroshot", p > 0.5, (1 - p) ** 2, flops=float(10 ** lx))
    assert main(["slice-sandwich", str(tmp_path), "--threshold", "21", "--deg-easy", "2"]) == 0
    out = capsys.readouterr().out
    assert "sas_mae" in out and "baseline_mae" in out
    rows = read_csv(tmp_path / "analysis" / "slice_sandwich_forecast.csv")
    assert {"task", "model", "log10_flops", "acc", "sas_pred", "baseline_pred"} <= set(rows[0])
    assert sum(r["split"] == "forecast" for r in rows) == 5       # 21, 21.33, ... at or above the threshold


def test_slice_sandwich_published(tmp_path, capsys):
    assert main(["slice-sandwich", "--published", "--tasks", "mmlu", "arithmetic", "parsinlu_qa_mc",
                 "--out-dir", str(tmp_path)]) == 0
    errs = {r["task"]: r for r in read_csv(tmp_path / "slice_sandwich_errors.csv")}
    assert set(errs) == {"mmlu", "arithmetic", "parsinlu_qa_mc"}
    assert int(errs["mmlu"]["n_test"]) == 27 and float(errs["mmlu"]["threshold"]) == 1.5
    assert (tmp_path / "slice_sandwich.png").stat().st_size > 0


@pytest.mark.parametrize("cmd", ["trends", "decompose", "slice-sandwich", "trajectories", "fits"])
def test_help_and_empty_folder(cmd, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert main([cmd, str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_malformed_summary_and_items_are_located(tmp_path, capsys):
    d = write_run(tmp_path, "synth", "m0", "neqa", "zeroshot", [1, 0, 1], n_params=1e7)
    write_run(tmp_path, "synth", "m1", "neqa", "zeroshot", [1, 1, 1], n_params=1e8)
    s = json.loads((d / "summary.json").read_text())
    del s["accuracy"]
    (d / "summary.json").write_text(json.dumps(s))
    assert main(["trends", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "summary.json" in err and "accuracy" in err
    s["accuracy"] = 2 / 3
    (d / "summary.json").write_text(json.dumps(s))
    with open(d / "items.jsonl", "a") as f:
        f.write("{not json\n")
    assert main(["trends", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "items.jsonl, line 4" in err
