"""The deviation table is generated from the runs' recorded settings, not typed: change a recorded setting
and the table changes; keep the paper's value and it reads "same"."""
import json
import subprocess
import sys
from pathlib import Path

from simulation import deviations

REPO = Path(__file__).resolve().parents[1]

PAPER_FIG5 = {"t1_slope": 0.025, "t1_intercept": 0.75, "t2_midpoint": 0.0, "t2_steepness": 1.0, "t2_floor": 0.0,
              "t2_ceiling": 1.0, "x_min": -10.0, "x_max": 10.0, "points": 100}


def fig6_record(**changes):
    paper = {"models": ["distilgpt2", "gpt2"], "data": "SST-2 train (67,349)", "learning_rate": 2e-5,
             "weight_decay": 0.01, "epochs": 3, "batch": 8, "block": 128, "schedule": "linear", "optimizer": "AdamW",
             "seeds": [42], "negation": "with probability r", "loss": "causal LM on every token"}
    record = {"init": "ladder", "models": [{"name": "s0", "non_embedding_params": 3312},
                                           {"name": "s1", "non_embedding_params": 1_250_000}],
              "pretraining": {"corpus": "generated reviews", "tokens": 1000, "steps": 10, "learning_rate": 0.003},
              "data": {"source": "generated", "n_train": 300, "negation": "exactly round(r * n_train)"},
              "loss": "causal LM on every token", "block": 128, "learning_rate": 2e-5, "weight_decay": 0.01,
              "epochs": 3, "batch": 8, "schedule": "linear", "optimizer": "AdamW", "ratios": [0, 0.05],
              "seeds": [0, 1, 2], "scoring": {"primary": "greedy", "second": "P(good) vs P(bad)", "n_test": 200,
                                              "test": "generated reviews"},
              "paper": paper, "reasons": {"seeds": "three seeds per cell"}}
    record.update(changes)
    return record


FAMILY = {"world": {"heldout_frac": 0.25, "entities_per_kind": 8, "values_per_relation": 6},
          "corpus": "statements and quizzes", "models": [{"name": "a", "params": 100_096}],
          "training": {"tokens_per_member": 262144, "steps": 256, "batch_size": 16, "seq_len": 64, "seed": 0}}


def write(results, fig5=PAPER_FIG5, fig6=None):
    (results / "figures").mkdir(parents=True, exist_ok=True)
    (results / "settings").mkdir(parents=True, exist_ok=True)
    (results / "figures" / "fig5_task_decomposition.json").write_text(json.dumps(fig5))
    (results / "settings" / "fig6.json").write_text(json.dumps(fig6 or fig6_record()))
    (results / "settings" / "family.json").write_text(json.dumps(FAMILY))


def row(md, figure, setting):
    found = [line for line in md.splitlines() if line.startswith(f"| {figure} | {setting} |")]
    assert len(found) == 1, (setting, md)
    return [cell.strip() for cell in found[0].strip("|").split("|")]


def test_paper_settings_read_same_and_changes_show_with_their_reason(tmp_path):
    write(tmp_path)
    md = deviations.table(tmp_path)
    for setting in ("task 1", "task 2 (latent s)", "scale axis"):
        assert row(md, "Fig. 5", setting)[3] == "same"
    assert row(md, "Fig. 6", "learning rate")[3] == "same"
    assert row(md, "Fig. 6", "seeds")[3:] == ["0, 1, 2", "three seeds per cell"]
    assert "1.2M" in row(md, "Fig. 6", "models")[3]        # 1,250,000 params, read from the record

    write(tmp_path, fig5={**PAPER_FIG5, "t2_midpoint": 7.0, "points": 101},
          fig6=fig6_record(learning_rate=1e-3, epochs=5, reasons={"learning_rate": "tiny models"}))
    md = deviations.table(tmp_path)
    assert row(md, "Fig. 5", "task 2 (latent s)")[3] == "sigmoid(1·(x − 7))"
    assert row(md, "Fig. 5", "scale axis")[3] == "101 points on [-10, 10]"
    assert row(md, "Fig. 6", "learning rate")[3:] == ["0.001", "tiny models"]
    assert row(md, "Fig. 6", "epochs")[3] == "5"


def test_a_missing_record_is_an_error_naming_it(tmp_path):
    out = subprocess.run([sys.executable, "-m", "simulation.deviations", "--results", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.startswith("error:") and "fig5_task_decomposition.json" in out.stderr


def test_readme_block_is_replaced_and_nothing_else(tmp_path):
    write(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{deviations.START}\nold table\n{deviations.END}\nafter\n")
    assert deviations.main(["--results", str(tmp_path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# title\n\nbefore\n") and text.endswith("after\n")
    assert deviations.table(tmp_path) in text
    readme.write_text("no block here\n")
    assert deviations.main(["--results", str(tmp_path), "--readme", str(readme)]) == 2
    assert readme.read_text() == "no block here\n"


def test_family_rows_follow_family_json(tmp_path):
    write(tmp_path)
    record = {**FAMILY, "models": [{"name": "a", "params": 100_096}, {"name": "b", "params": 9_864_320}],
              "tuned": {"family": "tw-tuned", "steps": 32, "data": "plain quizzes", "loss": "answer letter only",
                        "lr_scale": 0.3, "negated_questions": False}}
    (tmp_path / "settings" / "family.json").write_text(json.dumps(record))
    md = deviations.table(tmp_path)
    assert "100.1k, 9.9M" in row(md, "family", "models")[3]
    assert "256 steps of 16 × 64" in row(md, "family", "pretraining data")[3]
    tuned = row(md, "family", "instruction-tuned series")[3]
    assert "32 steps" in tuned and "0.3 ×" in tuned and "left out" in tuned
    assert "| family | ablation |" not in md            # not recorded, not claimed
    record["tuned"]["steps"] = 64
    (tmp_path / "settings" / "family.json").write_text(json.dumps(record))
    assert "64 steps" in row(deviations.table(tmp_path), "family", "instruction-tuned series")[3]


def test_readme_copy_matches_the_committed_records():
    """The README's table is the generator's output on results/, not a hand-typed copy."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(deviations.START, 1)[1].split(deviations.END, 1)[0]
    assert block.strip() == deviations.table(REPO / "results").strip()
