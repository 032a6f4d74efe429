"""Figure 5: the task composition and its command."""
import csv
import json

import pytest

from simulation import composition as td


def test_compose_hand_values():
    assert td.compose(1, 1) == 1
    assert td.compose(1, 0) == 0
    assert td.compose(0, 0) == 1          # wrong on the plain question and no flip: right by accident
    assert td.compose(0, 1) == 0
    for t2 in (0, 0.1, 0.7, 1):
        assert td.compose(0.5, t2) == pytest.approx(0.5)
    assert td.compose(0.8, 0.25) == pytest.approx(0.8 * 0.25 + 0.2 * 0.75)


def test_linear_is_clipped_and_sigmoid_has_its_floor():
    assert list(td.task1_curve([-10, 0, 2, 100], 0.1, 0.5)) == [0.0, 0.5, pytest.approx(0.7), 1.0]
    assert td.sigmoid(3.0, 3.0, 2.0) == pytest.approx(0.5)
    assert td.sigmoid(3.0, 3.0, 2.0, lo=0.5) == pytest.approx(0.75)
    assert td.sigmoid(-50, 0, 1) == pytest.approx(0, abs=1e-12)
    assert td.sigmoid(50, 0, 1, lo=0.2, hi=0.9) == pytest.approx(0.9)


def test_default_parameters_give_a_u_shape():
    args = td.build_parser().parse_args([])
    c = td.simulate(args)
    assert td.is_u_shaped(c["neqa"])
    assert c["neqa"][0] == pytest.approx(0.5)
    assert c["neqa"].min() < 0.4 and c["neqa"][-1] > 0.9
    # task 2 is drawn as a two-choice accuracy: 0.5 + 0.5·s, never below chance
    assert c["task2"][0] == pytest.approx(0.5, abs=1e-4) and c["task2"].min() >= 0.5
    assert c["task2"] == pytest.approx(0.5 + 0.5 * c["task2_latent"])
    # with s floored at 0.5 (half the small models notice the negation) the composition stays at chance
    flat = td.simulate(td.build_parser().parse_args(["--t2-floor", "0.5"]))
    assert not td.is_u_shaped(flat["neqa"]) and flat["neqa"].min() >= 0.5 - 1e-9


def test_papers_own_parameters_by_hand():
    # the paper's simulation: task 1 = 0.025·x + 0.75, s = sigmoid(x), x from -10 to 10
    args = td.build_parser().parse_args(["--t1-slope", "0.025", "--t1-intercept", "0.75", "--t2-midpoint", "0",
                                         "--t2-steepness", "1", "--x-min", "-10", "--x-max", "10", "--points", "101"])
    c = td.simulate(args)
    i = 30                                                    # x = -4: t1 = 0.65, s = 1/(1 + e^4) = 0.017986
    assert c["scale"][i] == pytest.approx(-4.0)
    assert c["neqa"][i] == pytest.approx(0.65 * 0.017986 + 0.35 * 0.982014, abs=1e-5)
    assert c["task2"][i] == pytest.approx(0.5 + 0.5 * 0.017986, abs=1e-5)
    assert c["neqa"][50] == pytest.approx(0.5)               # x = 0: s = 0.5


def test_is_u_shaped():
    assert td.is_u_shaped([0.5, 0.3, 0.2, 0.6])
    assert not td.is_u_shaped([0.5, 0.6, 0.7])
    assert not td.is_u_shaped([0.7, 0.5, 0.3])


def summary(folder, accuracy, n_params=None, n_items=100):
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"accuracy": accuracy, "n_params": n_params, "n_items": n_items}))


def test_results_folder_composition(tmp_path):
    res = tmp_path / "results"
    # family "fam": small member answers at chance and never flips; big member knows and flips
    summary(res / "fam" / "small" / "task1__zeroshot", 0.6, 1000)
    summary(res / "fam" / "small" / "task2__strong", 0.0, 1000)
    summary(res / "fam" / "small" / "task2__weak", 1.0, 1000)
    summary(res / "fam" / "small" / "neqa__zeroshot", 0.45, 1000)
    summary(res / "fam" / "big" / "task1__zeroshot", 0.9, 10**6)
    summary(res / "fam" / "big" / "task2__strong", 1.0, 10**6)
    summary(res / "fam" / "onlyneqa" / "neqa__zeroshot", 0.5, 10)   # no task 1/2: left out
    out = tmp_path / "figs"
    assert td.main(["--results", str(res), "--out-dir", str(out)]) == 0
    with open(out / "fig5_measured_decomposition.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["member"] for r in rows] == ["small", "big"]          # ordered by size, not name
    assert float(rows[0]["predicted_neqa"]) == pytest.approx(0.4)   # 0.6·0 + 0.4·1
    assert float(rows[1]["predicted_neqa"]) == pytest.approx(0.9)
    assert float(rows[0]["measured_neqa"]) == pytest.approx(0.45)
    assert rows[1]["measured_neqa"] == ""
    for name in ("fig5_measured_decomposition", "fig5_task_decomposition"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0
    # the weak task-2 prompt is picked by option
    rows = td.measured_rows(res, t2_prompt="weak")
    assert [r["member"] for r in rows] == ["small"] and rows[0]["predicted_neqa"] == pytest.approx(0.6)
    rows = td.measured_rows(res, t2_prompt="weak", t2_raw=True)
    assert rows[0]["predicted_neqa"] == pytest.approx(0.6)
    summary(res / "fam" / "mid" / "task1__zeroshot", 0.8, 5000)
    summary(res / "fam" / "mid" / "task2__strong", 0.5, 5000)
    mid = [r for r in td.measured_rows(res) if r["member"] == "mid"][0]
    assert mid["predicted_neqa"] == pytest.approx(0.2)   # chance on task 2 → s = 0 → 1 − t1
    assert mid["task1_prompt"] == "zeroshot"
    raw = [r for r in td.measured_rows(res, t2_raw=True) if r["member"] == "mid"][0]
    assert raw["predicted_neqa"] == pytest.approx(0.5)   # the raw reading composes chance to 0.5


def test_reading_falls_back_to_cloze_where_zero_shot_is_at_chance(tmp_path):
    res = tmp_path / "results"
    for name, size, cloze, neqa in (("a", 10, 0.55, 0.45), ("b", 100, 0.9, 0.15)):
        summary(res / "tiny" / name / "task1__zeroshot", 0.5, size)
        summary(res / "tiny" / name / "task1__cloze", cloze, size)
        summary(res / "tiny" / name / "task2__strong", 0.5, size)
        summary(res / "tiny" / name / "neqa__cloze", neqa, size)
    rows = td.measured_rows(res)
    assert {(r["task1_prompt"], r["neqa_prompt"]) for r in rows} == {("cloze", "cloze")}
    assert [r["predicted_neqa"] for r in rows] == [pytest.approx(0.45), pytest.approx(0.1)]
    assert [r["measured_neqa"] for r in rows] == [0.45, 0.15]


def test_checkpoints_read_at_the_final_one_like_analyze_decompose(tmp_path):
    res = tmp_path / "results"
    for member, t1, t2 in (("m@step-100", 0.5, 0.5), ("m@step-900", 0.7, 0.9), ("m", 0.8, 0.75)):
        summary(res / "fam" / member / "task1__zeroshot", t1, 1000)
        summary(res / "fam" / member / "task2__strong", t2, 1000)
    summary(res / "solo" / "c@step-100" / "task1__zeroshot", 0.6, 10)   # only checkpoints: the latest one
    summary(res / "solo" / "c@step-200" / "task1__zeroshot", 0.9, 10)
    summary(res / "solo" / "c@step-200" / "task2__strong", 1.0, 10)
    rows = td.measured_rows(res)
    assert [(r["family"], r["member"]) for r in rows] == [("fam", "m"), ("solo", "c")]
    # by hand: s = 2·0.75 − 1 = 0.5, NeQA = 0.8·0.5 + 0.2·0.5 = 0.5; s = 1 → NeQA = t1 = 0.9
    assert rows[0]["task1"] == 0.8 and rows[0]["task2_latent"] == pytest.approx(0.5)
    assert rows[0]["predicted_neqa"] == pytest.approx(0.5)
    assert rows[1]["predicted_neqa"] == pytest.approx(0.9)


def test_bad_summary_is_a_clear_error(tmp_path, capsys):
    res = tmp_path / "results"
    summary(res / "fam" / "m" / "task1__zeroshot", 75, 1)   # a percentage, not a fraction
    summary(res / "fam" / "m" / "task2__strong", 0.5, 1)
    assert td.main(["--results", str(res), "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "task1__zeroshot" in err and "accuracy" in err
    assert td.main(["--results", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "o")]) == 2
    capsys.readouterr()
    (res / "fam" / "m" / "task1__zeroshot" / "summary.json").write_text(json.dumps({"accuracy": 0.75}))
    assert td.main(["--results", str(res), "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err                               # read by neqa.results: n_items is required
    assert err.startswith("error: ") and "task1__zeroshot" in err and "n_items" in err
