import json

import pytest

from eval_pipeline.analyze import main
from eval_pipeline.trajectories import compare_predictors, read_train_log, trajectory_table
from neqa.checkpoints import checkpoint_of, saved_steps
from neqa.results import load_summaries, parse_step, split_member

SIZES = {"s1": 1e6, "s2": 4e6, "s3": 1.6e7}
STEPS = [100, 200, 400, 800]


def val_loss(n_params, step):
    # a Chinchilla-like loss: falls with both size and steps; the small model trained long overtakes
    # the big one early in training
    return 2.0 + 300 / n_params ** 0.4 + 40 / step ** 0.5


def make_runs(runs):
    for m, n in SIZES.items():
        d = runs / m
        for s in STEPS:
            (d / "checkpoints" / f"step-{s}").mkdir(parents=True)
        with open(d / "train_log.jsonl", "w") as f:
            for s in range(50, 801, 50):
                f.write(json.dumps({"step": s, "tokens": s * 1024, "loss": 9.0, "flops": 6 * n * s * 1024,
                                    "val_loss": val_loss(n, s) if s % 100 == 0 else None}) + "\n")


def make_results(root, with_val_loss_field=False, final_tokens=None):
    for m, n in SIZES.items():
        for s in STEPS:
            d = root / "tiny" / f"{m}@step-{s}" / "neqa__zeroshot"
            d.mkdir(parents=True)
            loss = val_loss(n, s)
            acc = 0.95 - 0.1 * (loss - 3.5)                  # accuracy is a function of loss alone (0.58..0.92)
            summary = {"n_items": 500, "accuracy": acc, "n_params": n}
            if final_tokens:                                 # the registry's count for the final model
                summary["train_tokens"] = final_tokens
            if with_val_loss_field:
                summary["val_loss"] = loss
            (d / "summary.json").write_text(json.dumps(summary))
            (d / "items.jsonl").write_text("")


def test_step_parsing():
    assert parse_step("step143000") == 143000
    assert parse_step("runs/tw/tw-1/checkpoints/step-6") == 6
    assert parse_step("main") is None
    assert split_member("tw-q1@step-12") == ("tw-q1", 12)
    assert split_member("pythia-70m") == ("pythia-70m", None)


def test_checkpoint_layout(tmp_path):
    make_runs(tmp_path / "runs")
    run = tmp_path / "runs" / "s2"
    (run / "checkpoints" / "notes").mkdir()                   # not a step: ignored
    assert [s for s, _ in saved_steps(run)] == STEPS           # in step order, not name order
    assert all(p.is_dir() for _, p in saved_steps(run))
    assert checkpoint_of(run / "final", "step-200") == run / "checkpoints" / "step-200"
    assert checkpoint_of(run, "step-200") == run / "checkpoints" / "step-200"
    assert saved_steps(tmp_path / "missing") == []


def test_val_loss_from_train_log_and_perplexity_beats_size(tmp_path):
    make_runs(tmp_path / "runs")
    make_results(tmp_path / "results")
    log = read_train_log(tmp_path / "runs" / "s1" / "train_log.jsonl")
    assert list(log["step"]) == list(range(100, 801, 100))
    traj = trajectory_table(load_summaries(tmp_path / "results"), tmp_path / "runs")
    assert len(traj) == 12
    row = traj[(traj["base_member"] == "s2") & (traj["step"] == 400)].iloc[0]
    assert row["val_loss"] == pytest.approx(val_loss(4e6, 400))
    assert row["train_tokens"] == 400 * 1024
    (res,) = compare_predictors(traj)
    assert res["r2_log_ppl"] == pytest.approx(1.0) and res["r2_log_params"] < 0.9
    assert res["perplexity_better"] is True and res["n_sizes"] == 3


def test_checkpoint_tokens_come_from_the_log_not_the_final_count(tmp_path):
    make_runs(tmp_path / "runs")
    make_results(tmp_path / "results", final_tokens=800 * 1024)
    traj = trajectory_table(load_summaries(tmp_path / "results"), tmp_path / "runs")
    row = traj[(traj["base_member"] == "s1") & (traj["step"] == 200)].iloc[0]
    assert row["train_tokens"] == 200 * 1024


def test_val_loss_from_summary_and_cli(tmp_path, capsys):
    make_results(tmp_path / "results", with_val_loss_field=True)
    traj = trajectory_table(load_summaries(tmp_path / "results"))
    assert traj["val_loss"].notna().all()
    assert main(["trajectories", str(tmp_path / "results")]) == 0
    out = tmp_path / "results" / "analysis"
    assert (out / "trajectories.csv").exists() and (out / "trajectories.png").exists()
    assert "True" in (out / "trajectories_predictors.csv").read_text()


def _synthetic_trajectories(driver, seed=0):
    """Five sizes × five checkpoints, 400 items each, accuracies drawn item by item. The loss falls
    with size and steps (a Chinchilla-like form), the small models trained long overtaking large ones
    early in training; `driver` says what the right-answer probability follows: the loss or the size."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    rows = []
    for i, n_params in enumerate([1e6, 3e6, 1e7, 3e7, 1e8]):
        for step in (100, 200, 400, 800, 1600):
            loss = 2.0 + 300 / n_params ** 0.4 + 40 / step ** 0.5
            z = -3.0 * (loss - 3.2) if driver == "loss" else 0.9 * (np.log10(n_params) - 7)
            p = 1 / (1 + np.exp(-z))
            rows.append({"family": "f", "task": "neqa", "prompt": "cloze", "base_member": f"m{i}", "step": step,
                         "n_params": n_params, "val_loss": loss, "n_items": 400,
                         "accuracy": float((rng.random(400) < p).mean())})
    return pd.DataFrame(rows)


def test_nested_comparison_finds_what_drives_accuracy():
    from eval_pipeline.trajectories import nested_comparison
    (by_loss,) = nested_comparison(_synthetic_trajectories("loss"))
    assert by_loss["p_ppl_given_size_quasi"] < 1e-3          # perplexity adds once size is known
    assert by_loss["p_size_given_ppl_quasi"] > 0.01          # size adds nothing once perplexity is known
    assert by_loss["cv_mae_ppl"] < by_loss["cv_mae_size"]
    assert by_loss["answer"].startswith("perplexity carries the information")
    (by_size,) = nested_comparison(_synthetic_trajectories("size", seed=1))
    assert by_size["p_size_given_ppl_quasi"] < 1e-3
    assert by_size["p_ppl_given_size_quasi"] > 0.01
    assert by_size["answer"].startswith("size carries the information")


def test_losses_table_fills_missing_validation_loss(tmp_path, capsys):
    make_results(tmp_path / "results")                       # no val_loss anywhere
    assert main(["trajectories", str(tmp_path / "results")]) == 2
    assert "val_loss" in capsys.readouterr().err
    table = tmp_path / "losses.csv"
    table.write_text("base_member,step,val_loss\n" + "".join(
        f"{m},{s},{val_loss(n, s)}\n" for m, n in SIZES.items() for s in STEPS))
    assert main(["trajectories", str(tmp_path / "results"), "--losses", str(table)]) == 0
    out = capsys.readouterr().out
    assert "perplexity carries the information" in out      # accuracy is a function of loss alone here
