"""TinyWorld generator (simulation/world.py) and the family trainer (simulation/family.py)."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import replace

import pytest

from data_pipeline.prompts import neqa_prompt, task2_prompt
from data_pipeline.schema import load_neqa
from neqa.io import read_jsonl
from simulation import world as W

SMALL = W.WorldConfig(seed=3, entities_per_kind=8, statement_repeats=3, question_repeats=2, vocab_size=400)


def build(cfg):
    facts = W.make_world(cfg)
    return facts, W.corpus_documents(facts, cfg), W.test_sets(facts, cfg)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tinyworld") / "data"
    W.write_data(out, SMALL, log=lambda *a: None)
    return out


def test_same_seed_same_data_other_seed_other_data():
    facts, docs, tests = build(SMALL)
    facts2, docs2, tests2 = build(SMALL)
    assert facts == facts2 and docs == docs2 and tests == tests2
    facts3, docs3, tests3 = build(replace(SMALL, seed=4))
    assert facts3 != facts and docs3 != docs and tests3["neqa"] != tests["neqa"]


def test_files_are_byte_identical_for_the_same_knobs(tmp_path, data_dir):
    W.write_data(tmp_path / "again", SMALL, log=lambda *a: None)
    for name in ("corpus.txt", "val.txt", "neqa.jsonl", "task1.jsonl", "task2.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (data_dir / name).read_bytes(), name


def test_every_entity_has_exactly_one_value_per_relation():
    facts = W.make_world(SMALL)
    ids = Counter(f.id for f in facts)
    assert set(ids.values()) == {1}
    assert len(facts) == SMALL.entities_per_kind * sum(len(r) for _, r, _ in W.KINDS.values())
    # values are spread over the whole (truncated) value set of each relation
    for rel in W.RELATIONS:
        used = {f.value for f in facts if f.relation == rel}
        assert used <= set(W.RELATIONS[rel][4][:SMALL.values_per_relation])
        assert len(used) >= 2


def test_heldout_questions_never_in_corpus_but_their_statements_are():
    facts, docs, _ = build(SMALL)
    text = W.corpus_text(docs)
    asked = set(re.findall(r"Question: (.*)\n", text))
    held = [f for f in facts if f.heldout]
    trained = [f for f in facts if not f.heldout]
    assert held and trained
    for f in held:
        for neg, short in ((False, False), (True, False), (True, True)):
            assert W.stem(f, neg, short) not in asked, f.id
        assert W.statement(f) in text           # the fact itself is learnable from plain text
        # held-out facts never appear in comparison exercises either
        assert f'"{W.statement(f)}"' not in text
    # trained facts are asked (each at least once with these knobs: 2 questions per fact)
    assert sum(W.stem(f) in asked or W.stem(f, True) in asked or W.stem(f, True, True) in asked
               for f in trained) == len(trained)


def test_negated_statements_are_true_and_plain_statements_never_state_a_wrong_value():
    facts, docs, _ = build(SMALL)
    text = W.corpus_text(docs)
    assert 'Sentence 2: "' in text
    text = re.sub(r'Sentence [12]: ".*"\n', "", text)   # quoted sentences are compared, not asserted
    for f in facts:
        for w in f.wrong_values(SMALL.values_per_relation):
            assert re.search(re.escape(W.stem(f)) + " " + re.escape(w) + r"\.", text) is None, (f.id, w)
        right_negated = [W.statement(f, negated=True), W.statement(f, negated=True, contracted=True)]
        assert not any(s in text for s in right_negated), f.id


def test_corpus_mix_follows_the_knobs():
    none = replace(SMALL, neg_statement_ratio=0.0, neg_question_ratio=0.0, compare_ratio=0.0)
    text = W.corpus_text(W.corpus_documents(W.make_world(none), none))
    assert " not " not in text and "n't" not in text and "Sentence 1:" not in text
    lots = replace(SMALL, neg_question_ratio=1.0, cot_ratio=1.0)
    text = W.corpus_text(W.corpus_documents(W.make_world(lots), lots))
    n_questions = text.count("Question: ")
    assert n_questions > 0 and text.count("So the answer is") == n_questions - text.count("Sentence 1:")


def test_open_book_quizzes_state_the_facts_they_ask():
    for ratio in (0.0, 1.0):
        cfg = replace(SMALL, open_book_ratio=ratio)
        quizzes = [d for d in W.corpus_documents(W.make_world(cfg), cfg) if W.HEADER in d]
        assert quizzes
        opened = [d for d in quizzes if not d.startswith(W.HEADER)]
        assert len(opened) == (len(quizzes) if ratio else 0)
        for d in opened:
            context, quiz = d.split("\n\n" + W.HEADER)
            for q, a_line, b_line, ans in re.findall(r"Question: (.*)\nA\. (.*)\nB\. (.*)\nAnswer: ([AB])\n?", quiz):
                if not re.search(r"\bnot\b|n't", q):   # plain question: its answer is stated above
                    assert f"{q} {a_line if ans == 'A' else b_line}." in context


def test_test_sets_are_aligned_balanced_and_correct(data_dir):
    facts = {f["subject"] + "|" + f["relation"]: f for f in json.loads((data_dir / "world.json").read_text())["facts"]}
    neqa, task1 = load_neqa(data_dir / "neqa.jsonl"), load_neqa(data_dir / "task1.jsonl")
    task2 = read_jsonl(data_dir / "task2.jsonl")
    n_held = sum(f["heldout"] for f in facts.values())
    assert len(neqa) == len(task1) == len(task2) == n_held * SMALL.distractors
    counts = Counter(it["answer"] for it in neqa)
    assert abs(counts[0] - counts[1]) <= 1
    assert abs(Counter(it["answer"] for it in task2)[0] - len(task2) / 2) <= 1
    for n, t1, t2 in zip(neqa, task1, task2):
        fact = facts[n["metadata"]["fact"]]
        assert fact["heldout"]
        assert n["choices"] == t1["choices"] and len(set(n["choices"])) == 2
        assert t1["choices"][t1["answer"]] == fact["value"]              # task 1: the fact's value
        assert n["choices"][n["answer"]] != fact["value"]                # NeQA: the wrong value
        assert re.search(r"\bnot\b|n't", n["question"]) and not re.search(r"\bnot\b|n't", t1["question"])
        assert t2["sentence1"] == f"{t1['question']} {fact['value']}."
        assert t2["sentence2"] == f"{n['question']} {fact['value']}."
        assert t2["choices"][t2["answer"]] == "different" and sorted(t2["choices"]) == ["different", "the same"]
        # the prompts the evaluation builds are well formed
        assert neqa_prompt(n, "zeroshot").endswith("\nAnswer:") and task2_prompt(t2, "weak").endswith("\nAnswer:")
    # both negation forms are tested
    assert {it["metadata"]["contracted"] for it in neqa} == {True, False}


def test_seen_sets_use_only_trained_facts(data_dir):
    facts = {f["subject"] + "|" + f["relation"]: f for f in json.loads((data_dir / "world.json").read_text())["facts"]}
    seen = load_neqa(data_dir / "seen_task1.jsonl")
    assert seen and not any(facts[it["metadata"]["fact"]]["heldout"] for it in seen)


def test_tokenizer_round_trips_and_has_single_letter_tokens(data_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(data_dir / "tokenizer")
    item = load_neqa(data_dir / "neqa.jsonl")[0]
    for text in (neqa_prompt(item, "zeroshot") + " A\n\nQuestion:", neqa_prompt(item, "fewshot_cot"),
                 "Zebras (rare!) 42 ünïcode\n\n\tend"):
        assert tok.decode(tok.encode(text)) == text
    for letter in ("A", "B"):
        assert len(tok.encode(" " + letter)) == 1
    assert tok.encode(" A") != tok.encode(" B")
    assert tok.convert_tokens_to_ids(W.EOS) == 0 == tok.eos_token_id
    assert tok.encode(W.EOS) == [0]
    assert len(tok) <= SMALL.vocab_size


def test_bad_knob_is_a_clear_error(tmp_path, capsys):
    assert W.main(["--out", str(tmp_path / "d"), "--values-per-relation", "1"]) == 2
    assert "values_per_relation" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_quick_family_end_to_end(tmp_path):
    """A very small family run: data, two checkpoints, final HF folders, YAML the registry reads."""
    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from simulation import family

    out = tmp_path / "run"
    argv = ["--quick", "--out", str(out), "--results", str(tmp_path / "results"), "--yaml", str(tmp_path / "tw.yaml"),
            "--members", "tw-q1,tw-q2", "--tokens", "256", "--batch-size", "2", "--seq-len", "32",
            "--checkpoints", "2", "--entities-per-kind", "3", "--statement-repeats", "1", "--question-repeats", "1",
            "--vocab-size", "400", "--quiet"]
    assert family.main(argv) == 0
    raw = yaml.safe_load((tmp_path / "tw.yaml").read_text())
    assert raw["backend"] == "hf" and [m["name"] for m in raw["members"]] == ["tw-q1", "tw-q2"]
    assert raw["members"][0]["params"] < raw["members"][1]["params"]
    try:
        from eval_pipeline.registry import load_family
    except ImportError:   # registry not there yet: the raw YAML checks above still hold
        load_family = None
    if load_family is not None:
        fam = load_family(tmp_path / "tw.yaml")
        assert [m.name for m in fam.members] == ["tw-q1", "tw-q2"]
        assert set(fam.data) == {"neqa", "task1", "task2"}
        for path in fam.data.values():
            load_neqa(path) if not path.endswith("task2.jsonl") else read_jsonl(path)
    for m in raw["members"]:
        model = AutoModelForCausalLM.from_pretrained(m["model"])
        tok = AutoTokenizer.from_pretrained(m["model"])
        assert model.config.vocab_size == len(tok)
        assert m["flops"] == pytest.approx(6 * m["params"] * m["train_tokens"])
        assert len(m["revisions"]) == 2
        for rev in m["revisions"]:
            assert (out / m["name"] / "checkpoints" / rev / "config.json").exists()
    summary = json.loads((out / "family.json").read_text())
    assert summary["world"]["entities_per_kind"] == 3
    # the other stages: their families beside the base one, and their settings in family.json
    for suffix, n in (("-tuned", 2), ("-ablation", 2), ("-ablation-tuned", 2)):
        other = yaml.safe_load((tmp_path / f"run{suffix}" / "family.yaml").read_text())
        assert other["name"] == "tinyworld-quick" + suffix and len(other["members"]) == n
        assert other["data"]["neqa"].endswith("neqa.jsonl")
    tuned = yaml.safe_load((tmp_path / "run-tuned" / "family.yaml").read_text())
    assert (tmp_path / "run-tuned" / "tw-q1" / "train_config.json").exists()
    assert json.loads((tmp_path / "run-tuned" / "tw-q1" / "train_config.json").read_text())["settings"][
        "init_from"].endswith("tw-q1/final")
    assert tuned["data"] == raw["data"]            # tuned models are scored on the base family's held-out sets
    assert summary["tuned"]["negated_questions"] is False and summary["tuned"]["loss"] == "answer letter only"
    assert summary["tuned"]["steps"] == family.QUICK_TUNE["steps"]
    assert summary["ablation"]["world"]["question_repeats"] == 0 and summary["ablation"]["world"]["compare_ratio"] == 0
    abl_corpus = (tmp_path / "run-ablation" / "data" / "corpus.txt").read_text()
    assert "Question:" not in abl_corpus and "Sentence 1" not in abl_corpus
    assert len(summary["data_axis"]["points"]) == 6 and set(summary["data_axis"]["fractions"]) == {0.25, 0.5, 1.0}
    assert summary["data_axis"]["fit"]["identifiable"] and summary["models"][0]["name"] == "tw-q1"
    assert (tmp_path / "results" / "figures" / "tinyworld_quick_scaling.png").stat().st_size > 0
    rows = (tmp_path / "results" / "tinyworld_quick" / "scaling.csv").read_text().splitlines()
    assert rows[0].startswith("name,params") and len(rows) == 3
    # a second run finds everything done and trains nothing
    assert family.main(argv) == 0
    assert json.loads((out / "family.json").read_text())["members"] == summary["members"]
    # the letter-format probe fine-tunes a member of this family and scores every checkpoint on every set
    from simulation import letter_format
    lf = tmp_path / "letter"
    assert letter_format.main(["--pretrained", str(out / "tw-q1" / "final"), "--steps", "2", "--every", "1",
                               "--batch-size", "4", "--threshold", "0.01", "--out-dir", str(lf)]) == 0
    with open(lf / "letter_format.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["arm"], r["step"], r["set"]) for r in rows] == [
        (arm, str(step), name) for arm in ("quizzes", "binding") for step in (1, 2) for name in letter_format.SETS]
    n_task1 = len(read_jsonl(out / "data" / "task1.jsonl"))
    assert all(r["n"] == str(n_task1) for r in rows if r["set"] in ("binding", "task1"))
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and 0.0 <= float(r["answers_A"]) <= 1.0 for r in rows)
    assert set(json.loads((lf / "letter_format.json").read_text())["first_step"]) == {"quizzes", "binding"}
