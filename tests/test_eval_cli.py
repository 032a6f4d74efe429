"""The evaluate command end to end on the tiny model, and its one-line errors."""
from __future__ import annotations

import csv
import json

import pytest
from conftest import REPO

from data_pipeline.schema import load_neqa
from eval_pipeline.evaluate import main
from neqa.io import write_jsonl

SUMMARY_FIELDS = {"key", "family", "member", "model", "revision", "dtype", "n_params", "train_tokens", "flops", "task",
                  "prompt", "data_file", "data_sha256", "n_items", "accuracy", "accuracy_ci", "strict_accuracy",
                  "surface_accuracy", "mean_brier", "scoring_path", "code_version", "date", "order_balanced"}
ITEM_FIELDS = {"index", "question", "prompt", "options", "choice_logprobs", "prediction", "answer", "correct",
               "p_right", "brier", "strict_correct", "surface_correct"}


@pytest.fixture
def small_neqa(tmp_path):
    path = tmp_path / "small.jsonl"
    write_jsonl(path, load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:6])
    return path


def run(capsys, *argv):
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def read_items(folder):
    return [json.loads(x) for x in (folder / "items.jsonl").read_text().splitlines()]


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "TASK__PROMPT" in capsys.readouterr().out


def test_end_to_end_layout_fields_and_rerun(tmp_path, capsys, tiny_model_dir, tiny_model_dir_2, small_neqa):
    out = tmp_path / "results" / "mine"
    rc, stdout, err = run(capsys, "--model", tiny_model_dir, "--task", "neqa", "--prompt", "zeroshot,fewshot",
                          "--data", small_neqa, "--output-dir", out, "--batch-size", "2")
    assert rc == 0, err
    for method in ("zeroshot", "fewshot"):
        folder = out / "model" / f"neqa__{method}"          # member = the model folder's name
        summary = json.loads((folder / "summary.json").read_text())
        assert set(summary) == SUMMARY_FIELDS
        items = read_items(folder)
        assert len(items) == summary["n_items"] == 6
        assert all(ITEM_FIELDS <= set(r) for r in items)
        assert summary["accuracy"] == pytest.approx(sum(r["correct"] for r in items) / 6)
        assert summary["family"] == "model" and summary["member"] == "model" and summary["prompt"] == method
        assert summary["scoring_path"] == "prefix-cache" and summary["dtype"] == "float32"
        assert all(r["prompt"].startswith("Question: ") for r in items)   # the shared prefix is not repeated
    first = (out / "model" / "neqa__zeroshot" / "items.jsonl").read_text()
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--prompt", "zeroshot", "--data", small_neqa,
                     "--output-dir", out)
    assert rc == 0, err
    assert (out / "model" / "neqa__zeroshot" / "items.jsonl").read_text() == first
    rc, _, err = run(capsys, "--model", tiny_model_dir_2, "--member", "model", "--prompt", "zeroshot",
                     "--data", small_neqa, "--output-dir", out)
    assert rc == 2 and "holds another run" in err and err.endswith("\n") and err.count("error: ") == 1
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_family_members_and_family_data(tmp_path, capsys, tiny_model_dir, tiny_model_dir_2):
    items = load_neqa(REPO / "data_pipeline" / "neqa_100_normalized.jsonl")[:4]
    task2 = [{"sentence1": f"{it['question']} x.", "sentence2": f"{it['question']} not x.",
              "choices": ["the same", "different"] if i % 2 == 0 else ["different", "the same"],
              "answer": 1 if i % 2 == 0 else 0, "metadata": {}} for i, it in enumerate(items)]
    data = tmp_path / "task2.jsonl"
    write_jsonl(data, task2)
    yaml_path = tmp_path / "tiny.yaml"
    yaml_path.write_text(f"name: tinyfam\nbackend: hf\ndata: {{task2: {data}}}\nmembers:\n"
                         f"  - {{name: small, model: {tiny_model_dir}, params: 1000, train_tokens: 1.0e+6}}\n"
                         f"  - {{name: other, model: {tiny_model_dir_2}, params: 2000}}\n")
    rc, _, err = run(capsys, "--family", yaml_path, "--task", "task2", "--prompt", "all", "--output-dir", tmp_path / "r")
    assert rc == 0, err
    for member, params in (("small", 1000), ("other", 2000)):
        for method in ("weak", "strong"):
            s = json.loads((tmp_path / "r" / "tinyfam" / member / f"task2__{method}" / "summary.json").read_text())
            assert s["family"] == "tinyfam" and s["member"] == member and s["n_params"] == params
            assert s["n_items"] == 4 and s["data_file"] == str(data)
    s = json.loads((tmp_path / "r" / "tinyfam" / "small" / "task2__weak" / "summary.json").read_text())
    assert s["flops"] == pytest.approx(6 * 1000 * 1.0e6)


def test_prize_table_with_multi_token_classes(tmp_path, capsys, tiny_model_dir):
    table = tmp_path / "prize.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "classes", "answer_index"])
        w.writerow(["Q: Is the sky green?\nA:", "[' yes', ' no way']", 1])   # a Python list literal, as the prize wrote
        w.writerow(["Q: Is water wet?\nA:", '[" yes", " no way"]', 0])       # or JSON
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--task", "prize", "--data", table,
                     "--output-dir", tmp_path / "r")
    assert rc == 0, err
    items = read_items(tmp_path / "r" / "model" / "prize__prize")
    assert [r["answer"] for r in items] == [1, 0] and all(len(r["choice_logprobs"]) == 2 for r in items)
    # " no way" is several tokens: summed log-probs are well below a single token's
    assert all(r["choice_logprobs"][1] < r["choice_logprobs"][0] - 1 for r in items)
    # a second table into the same output folder gets its own run folder (it was refused as "another run")
    other = tmp_path / "other.csv"
    other.write_text('prompt,classes,answer_index\n"Q: Is fire hot?\nA:","[\' yes\', \' no\']",0\n')
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--task", "prize", "--data", other,
                     "--output-dir", tmp_path / "r")
    assert rc == 0, err
    summary = json.loads((tmp_path / "r" / "model" / "prize__other" / "summary.json").read_text())
    assert summary["n_items"] == 1 and summary["prompt"] == "other" and summary["task"] == "prize"
    assert len(read_items(tmp_path / "r" / "model" / "prize__prize")) == 2


def test_single_model_family_is_the_model_or_family_name(tmp_path, capsys, tiny_model_dir, small_neqa):
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--data", small_neqa, "--limit", "1",
                     "--output-dir", tmp_path / "some-folder")
    assert rc == 0, err
    s = json.loads((tmp_path / "some-folder" / "model" / "neqa__zeroshot" / "summary.json").read_text())
    assert s["family"] == "model" and s["member"] == "model"      # not the output folder's name
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--data", small_neqa, "--limit", "1", "--family-name", "mine",
                     "--out-dir", tmp_path / "other")                # an old spelling of --output-dir
    assert rc == 0, err
    s = json.loads((tmp_path / "other" / "model" / "neqa__zeroshot" / "summary.json").read_text())
    assert s["family"] == "mine"


def test_help_lists_every_prompt_method(capsys):
    from eval_pipeline.tasks import TASKS
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for task in TASKS.values():
        for method in task.prompts:
            assert method in text, method
    assert "cloze" in text and "--output-dir" in text


def test_chain_of_thought_records(tmp_path, capsys, tiny_model_dir, small_neqa):
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--prompt", "fewshot_cot", "--data", small_neqa,
                     "--limit", "2", "--output-dir", tmp_path / "r")
    assert rc == 0, err
    items = read_items(tmp_path / "r" / "model" / "neqa__fewshot_cot")
    assert len(items) == 2
    for r in items:
        assert isinstance(r["generation"], str) and "\n\n" not in r["generation"]
        assert r["p_right"] is None and r["correct"] is (r["prediction"] == r["answer"])


@pytest.mark.parametrize("argv,needle", [
    (["--model", "/no/such/model", "--output-dir", "X"], "does not exist"),
    (["--model", "M", "--task", "nope", "--output-dir", "X"], "unknown task 'nope'"),
    (["--model", "M", "--task", "task2", "--prompt", "zeroshot", "--output-dir", "X"], "has no prompt 'zeroshot'"),
    (["--model", "M", "--data", "/no/such/file.jsonl", "--output-dir", "X"], "file not found"),
    (["--family", "no-such-family", "--output-dir", "X"], "no such family"),
])
def test_one_line_errors(capsys, tmp_path, argv, needle):
    rc, _, err = run(capsys, *[a.replace("X", str(tmp_path / "out")) for a in argv])
    assert rc == 2
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_malformed_data_names_file_line_and_field(tmp_path, capsys, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\n'
                   '{"question": "q", "choices": ["a", "b"], "answer": "A"}\n')
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--data", bad, "--output-dir", tmp_path / "out")
    assert rc == 2 and f"{bad}, line 2, field 'answer'" in err
    table = tmp_path / "bad.csv"
    table.write_text('prompt,classes,answer_index\n"Q?","[\' A\', \' B\']",0\n"Q?",not a list,0\n')
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--task", "prize", "--data", table,
                     "--output-dir", tmp_path / "out")
    assert rc == 2 and f"{table}, line 3, field 'classes'" in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--output-dir", "x"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--model", "m", "--output-dir", "x", "--batch-size", "zero"])
    assert e.value.code == 2


@pytest.mark.slow
def test_openai_backend_through_the_cli(tmp_path, capsys, monkeypatch, small_neqa):
    from fake_openai_server import FakeOpenAI
    secret = "sk-test-never-written-0123"
    monkeypatch.setenv("NEQA_TEST_KEY", secret)
    answers = [it["answer"] for it in load_neqa(small_neqa)[:3]]
    with FakeOpenAI(max_requests=50, lifetime=30) as server:
        rc, _, err = run(capsys, "--backend", "openai", "--model", "fake", "--base-url", server.url,
                         "--api-key-env", "NEQA_TEST_KEY", "--prompt", "zeroshot,fewshot_cot", "--limit", "3",
                         "--data", small_neqa, "--output-dir", tmp_path / "r")
    assert rc == 0, err
    base = tmp_path / "r" / "fake"
    # the fake server prefers " A" (p .7 vs .2) for prompts without "[B]"
    plain = json.loads((base / "neqa__zeroshot" / "summary.json").read_text())
    assert plain["accuracy"] == pytest.approx(sum(a == 0 for a in answers) / 3)
    assert plain["mean_brier"] == pytest.approx(sum((1 - (0.7 if a == 0 else 0.2) / 0.9) ** 2 for a in answers) / 3)
    # its generation says "So the answer is B." in the first paragraph
    cot = read_items(base / "neqa__fewshot_cot")
    assert [r["prediction"] for r in cot] == [1, 1, 1]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text()


def test_revision_of_a_local_model_names_a_saved_checkpoint(tmp_path):
    from eval_pipeline.evaluate import local_checkpoint
    (tmp_path / "final").mkdir()
    (tmp_path / "checkpoints" / "step-64").mkdir(parents=True)
    assert local_checkpoint(str(tmp_path / "final"), "step-64") == (str(tmp_path / "checkpoints" / "step-64"), None)
    assert local_checkpoint(str(tmp_path / "final"), None) == (str(tmp_path / "final"), None)
    assert local_checkpoint("EleutherAI/pythia-70m", "step1000") == ("EleutherAI/pythia-70m", "step1000")
    with pytest.raises(ValueError, match="no checkpoint 'step-9'"):
        local_checkpoint(str(tmp_path / "final"), "step-9")


def test_records_hold_the_full_prompt(tmp_path, capsys, tiny_model_dir, small_neqa):
    from data_pipeline.prompts import neqa_prompt, task2_prompt
    from neqa.results import load_items
    out = tmp_path / "r" / "fam"
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--prompt", "zeroshot,fewshot,fewshot_cot,cloze",
                     "--data", small_neqa, "--limit", "3", "--output-dir", out)
    assert rc == 0, err
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--task", "task2", "--prompt", "strong",
                     "--data", REPO / "data_pipeline" / "neqa_100_task2.jsonl", "--limit", "3", "--output-dir", out)
    assert rc == 0, err
    items = load_items(tmp_path / "r")
    neqa = load_neqa(small_neqa)
    task2 = [json.loads(x) for x in (REPO / "data_pipeline" / "neqa_100_task2.jsonl").read_text().splitlines()]
    expected = {("neqa", m, i): neqa_prompt(neqa[i], m) for m in ("zeroshot", "fewshot", "fewshot_cot") for i in range(3)}
    expected.update({("neqa", "cloze", i): neqa[i]["question"] for i in range(3)})
    expected.update({("task2", "strong", i): task2_prompt(task2[i], "strong") for i in range(3)})
    got = {(r.task, r.prompt, r.index): r.full_prompt for r in items.itertuples()}
    assert got == expected
    run_json = json.loads((out / "model" / "neqa__fewshot" / "run.json").read_text())
    assert run_json["shared_prefix"].count("Question:") == 3            # the header and three examples, once
    assert all(not r["prompt"].startswith(run_json["shared_prefix"]) for r in read_items(out / "model" / "neqa__fewshot"))
    assert read_items(out / "model" / "neqa__cloze")[0]["options"] == [" " + c for c in neqa[0]["choices"]]


def test_order_balanced_reading_scores_the_reversed_items(tmp_path, capsys, tiny_model_dir, small_neqa):
    from data_pipeline.prompts import neqa_prompt
    from eval_pipeline.metrics import renormalised
    reversed_data = tmp_path / "reversed.jsonl"
    neqa = load_neqa(small_neqa)
    write_jsonl(reversed_data, [{**it, "choices": it["choices"][::-1], "answer": 1 - it["answer"]} for it in neqa])
    out = tmp_path / "r"
    rc, stdout, err = run(capsys, "--model", tiny_model_dir, "--prompt", "zeroshot,cloze", "--data", small_neqa,
                          "--order-balanced", "--output-dir", out)
    assert rc == 0, err and "order-balanced" in stdout
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--prompt", "zeroshot", "--data", reversed_data,
                     "--output-dir", tmp_path / "plain-reversed")
    assert rc == 0, err
    records = read_items(out / "model" / "neqa__zeroshot")
    flipped = read_items(tmp_path / "plain-reversed" / "model" / "neqa__zeroshot")
    run_json = json.loads((out / "model" / "neqa__zeroshot" / "run.json").read_text())
    correct, same = [], []
    for it, r, f in zip(neqa, records, flipped):
        assert run_json["shared_prefix"] + r["reversed_prompt"] == neqa_prompt({**it, "choices": it["choices"][::-1]},
                                                                               "zeroshot")
        assert r["reversed_logprobs"] == pytest.approx(f["choice_logprobs"], abs=1e-5)
        p, q = renormalised(r["choice_logprobs"]), renormalised(f["choice_logprobs"])
        option0 = (p[0] + q[1]) / 2                      # option 0 is B in the reversed prompt
        correct.append((option0 > 0.5) == (it["answer"] == 0))
        same.append((p[0] > p[1]) == (q[1] > q[0]))
    summary = json.loads((out / "model" / "neqa__zeroshot" / "summary.json").read_text())
    assert summary["order_balanced"] is True and summary["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / 6)
    assert summary["balanced_accuracy"] == pytest.approx(sum(correct) / 6)
    assert summary["order_consistency"] == pytest.approx(sum(same) / 6)
    cloze = json.loads((out / "model" / "neqa__cloze" / "summary.json").read_text())
    assert cloze["order_balanced"] is False and "balanced_accuracy" not in cloze   # no order in a cloze prompt
    # the reading is part of the run's key: the same folder without it is another run
    rc, _, err = run(capsys, "--model", tiny_model_dir, "--prompt", "zeroshot", "--data", small_neqa, "--output-dir", out)
    assert rc == 2 and "order_balanced" in err
