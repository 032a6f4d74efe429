"""Dataset statistics (Figure 3): counts on a small hand-made file, the PNG, bad input."""
from __future__ import annotations

import json
from pathlib import Path

from data_pipeline import stats as S

REPO = Path(__file__).resolve().parents[1]

ITEMS = [
    {"question": "A is not", "choices": ["x", "y"], "answer": 0,
     "metadata": {"id": "1", "split": "train", "negation_rule": "not/be"}},
    {"question": "B can't", "choices": ["x", "y"], "answer": 1,
     "metadata": {"id": "2", "split": "dev", "negation_rule": "not/modal"}},
    {"question": "C is not ___?", "choices": ["x", "y"], "answer": 1,
     "metadata": {"dataset": "TREx", "category": "random", "subdataset": "P19_random.jsonl", "idx": 1}},
    {"question": "D is not ___?", "choices": ["x", "y"], "answer": 1,
     "metadata": {"dataset": "TREx", "category": "high_ranked", "subdataset": "P19.jsonl", "idx": 2}},
    {"question": "E was not born in ___?", "choices": ["x", "y"], "answer": 0,
     "metadata": {"dataset": "GoogleRE", "category": "low_ranked", "subdataset": "place_of_birth.jsonl", "idx": 3}},
]


def test_counts_on_a_small_file():
    st = S.dataset_stats(ITEMS)
    assert st["sources"] == {"OpenBookQA": 2, "T-REx": 2, "Google-RE": 1}
    assert st["negation rules (OpenBookQA)"] == {"not/be": 1, "not/modal": 1}
    # P19 and P19_random are one relation
    assert st["Negated-LAMA relations"] == {"T-REx: P19 place of birth": 2, "Google-RE: place of birth": 1}
    assert st["distractor categories (Negated-LAMA)"] == {"random": 1, "high_ranked": 1, "low_ranked": 1}
    assert st["answer positions"] == {"OpenBookQA: A": 1, "OpenBookQA: B": 1, "T-REx: B": 2, "Google-RE: A": 1}


def test_published_file_makeup():
    from data_pipeline.schema import load_neqa
    st = S.dataset_stats(load_neqa(REPO / "data_pipeline" / "neqa.jsonl"))
    # the README's facts: 500 OpenBookQA + 1,218 Negated-LAMA items, answers 859/859
    assert st["sources"]["OpenBookQA"] == 500 and sum(st["sources"].values()) == 1718
    a = sum(v for k, v in st["answer positions"].items() if k.endswith(": A"))
    assert a == 859
    assert not any("_random" in k for k in st["Negated-LAMA relations"])


def test_cli_prints_and_draws(tmp_path, capsys):
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in ITEMS))
    png = tmp_path / "fig" / "stats.png"
    assert S.main([str(path), "--out", str(png)]) == 0
    text = capsys.readouterr().out
    assert "5 items" in text and "T-REx: P19 place of birth" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_bad_input(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + '\n{"question": "x", "choices": "ab", "answer": 0}\n')
    png = tmp_path / "stats.png"
    assert S.main([str(path), "--out", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{path}, line 2, field 'choices'" in err
    assert not png.exists()
