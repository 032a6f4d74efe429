"""scripts/report.py's real-models table: read back from run folders the evaluate command wrote."""
from __future__ import annotations

import json

from conftest import REPO

from data_pipeline.schema import load_neqa
from eval_pipeline.evaluate import main as evaluate
from neqa.io import write_jsonl
from scripts import report


def test_real_models_table(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "neqa.jsonl"
    write_jsonl(data, load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:5])
    out = tmp_path / "real" / "fam"
    assert evaluate(["--model", str(tiny_model_dir), "--prompt", "zeroshot,cloze", "--data", str(data),
                     "--order-balanced", "--output-dir", str(out), "--no-progress"]) == 0
    lines = report.section_real(tmp_path / "real")
    rows = [[c.strip() for c in x.strip().strip("|").split("|")] for x in lines
            if x.startswith("| model (") and "| task |" not in x]
    assert [r[2] for r in rows] == ["zeroshot", "cloze"]
    s = json.loads((out / "model" / "neqa__zeroshot" / "summary.json").read_text())
    zs = rows[0]
    assert zs[4].startswith(f"{100 * s['accuracy']:.0f} [") and zs[5].startswith(f"{100 * s['balanced_accuracy']:.0f} [")
    assert zs[6] == f"{100 * s['order_consistency']:.0f}%"
    records = [json.loads(x) for x in (out / "model" / "neqa__zeroshot" / "items.jsonl").read_text().splitlines()]
    assert zs[7] == f"{100 * sum(r['prediction'] == 0 for r in records) / 5:.0f}%"
    assert rows[1][5:] == ["", "", ""]                                 # cloze: no order to balance
    assert "Not run" in report.section_real(tmp_path / "nothing")[2]
