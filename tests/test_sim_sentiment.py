"""Figure 6: the corpora, the fine-tuning data, the two readings, trend labels from seeds, and the train and
evaluation commands (the offline ladder and the hub path on a tiny pretrained model saved to a folder)."""
import csv
import json
import re

import numpy as np
import pytest
import torch

from simulation import sentiment as st
from simulation import sentiment_eval as sim_eval
from simulation import sentiment_train as sim_train


def words(text):
    return re.findall(r"[a-z]+", text.lower())


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------- corpora

def test_generator_is_deterministic_balanced_and_label_consistent():
    a, b, c = (st.generate_reviews(200, seed=s, **st.FINETUNE_REVIEWS) for s in (3, 3, 4))
    assert a == b and a != c
    assert sum(r["label"] for r in a) == 100
    pos = set(st.POSITIVE + st.POS_VERBS + st.POS_FEELINGS)
    neg = set(st.NEGATIVE + st.NEG_VERBS + st.NEG_FEELINGS)
    for r in st.generate_reviews(300, seed=0, max_sentences=4, negation=0.3):
        own, other = (pos, neg) if r["label"] else (neg, pos)
        for sentence in re.split(r"(?<=\.) ", r["text"]):
            w = words(sentence)
            if "not" in w:      # a negated sentence names the other polarity
                assert not set(w) & own, sentence
            else:
                assert not set(w) & other, sentence
        assert any(set(words(s)) & own and "not" not in words(s) for s in re.split(r"(?<=\.) ", r["text"]))


def test_pretraining_corpus_uses_not_but_never_the_verdict():
    texts = st.pretraining_texts(3000, seed=0)
    joined = " ".join(texts).lower()
    assert st.AFFIRMATIVE.lower() not in joined and st.NEGATED.lower() not in joined
    assert "not" in words(joined) and "suggest" in words(joined)     # negation and the verdict's words elsewhere
    lengths = [len(re.findall(r"\.", t)) for t in texts]
    assert min(lengths) >= 2 and max(lengths) >= 5                  # multi-sentence reviews
    finetune, test, _ = st.reviews("generated", 200, 50, seed=0)
    assert not {r["text"] for r in test} & {r["text"] for r in finetune}
    assert sum(r["label"] for r in test) == 25


def test_training_texts_negate_exactly_the_ratio_chosen_by_the_seed():
    train = st.generate_reviews(200, seed=1)
    for ratio in (0.0, 0.05, 0.5):
        texts = st.training_texts(train, ratio, seed=1)
        assert sum(st.NEGATED in t for t in texts) == round(ratio * 200)
        for r, t in zip(train, texts):
            # affirmative: the label's word; negated: the other word — both true statements
            assert t.endswith(" good.") == (bool(r["label"]) == (st.NEGATED not in t))
    assert st.training_texts(train, 0.05, seed=1) == st.training_texts(train, 0.05, seed=1)
    assert st.training_texts(train, 0.05, seed=1) != st.training_texts(train, 0.05, seed=2)
    with pytest.raises(ValueError):
        st.training_texts(train, 1.5)


def test_blocks_are_the_concatenated_texts_and_epochs_visit_every_block_once():
    train = st.generate_reviews(60, seed=2, **st.FINETUNE_REVIEWS)
    texts = st.training_texts(train, 0.2, seed=0)
    tok = st.train_tokenizer(texts)
    blocks = st.lm_blocks(texts, tok, 16)
    ids = [i for t in texts for i in tok(t, add_special_tokens=False)["input_ids"]]
    assert blocks.shape == (len(ids) // 16, 16) and blocks.flatten().tolist() == ids[:blocks.numel()]
    sep = st.token_stream(texts[:2], tok, separator=tok.eos_token_id).tolist()
    assert sep.count(tok.eos_token_id) == 2 and sep[0] == tok.eos_token_id
    get, per_epoch = st.epoch_batches(blocks, 4, seed=5)
    assert per_epoch == -(-len(blocks) // 4)
    for epoch in range(2):
        seen = torch.cat([get(epoch * per_epoch + i) for i in range(per_epoch)])
        assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, blocks.tolist()))   # each block once
    first = lambda seed: torch.cat([st.epoch_batches(blocks, 4, seed)[0](i) for i in range(per_epoch)])  # noqa: E731
    assert torch.equal(first(5), first(5)) and not torch.equal(first(5), first(6))
    assert not torch.equal(get(0), get(per_epoch))          # a new order each epoch


def test_verdict_targets_are_the_words_after_the_verdict_templates():
    """Checked against the texts themselves: every verdict word whose template lies inside a block, and nothing else."""
    train = st.generate_reviews(30, seed=4, **st.FINETUNE_REVIEWS)
    texts = st.training_texts(train, 0.3, seed=0)
    tok = st.train_tokenizer(texts)
    blocks = st.lm_blocks(texts, tok, 24)
    hits = st.verdict_targets(blocks, tok)
    assert hits.shape == (len(blocks), 23) and hits.dtype == torch.bool
    vocab = {i: w for w, i in tok.get_vocab().items()}
    for row, hit in zip(blocks.tolist(), hits.tolist()):
        seen = [vocab[t] for t in row]
        expected = [j for j in range(3, len(seen) - 1) if seen[j - 3:j + 1] == ["suggest", "that", "it", "is"]]
        assert [j for j, h in enumerate(hit) if h] == expected
        assert all(seen[j + 1] in ("good", "bad") for j in expected)
    # about one verdict per text survives the cut into blocks (a template split between blocks is lost)
    assert 0.6 * len(texts) <= int(hits.sum()) <= len(texts)
    w = st.verdict_weights(blocks, tok, 30.0)
    assert torch.equal(w == 30.0, hits) and st.verdict_weights(blocks, tok, 1.0) is None
    x, y, wb = st.epoch_batches(blocks, 4, seed=1, weights=w)[0](0)
    assert torch.equal(x[:, 1:], y[:, :-1]) and set(wb.unique().tolist()) <= {1.0, 30.0}


# ------------------------------------------------------------------------------------------- readings

def test_greedy_and_pair_readings_differ_where_the_top_word_is_neither():
    # vocabulary: 0 "the", 1 "bad", 2 "good", 3 "." ; labels 1, 0
    def lp(*rows):
        p = np.array(rows, dtype=float)
        return np.log(p / p.sum(axis=1, keepdims=True))
    aff = lp([0.5, 0.1, 0.3, 0.1],   # positive review: top "the"; P(good) > P(bad)
             [0.1, 0.6, 0.2, 0.1])   # negative review: top "bad"
    neg = lp([0.1, 0.7, 0.1, 0.1],   # negated, positive review: "bad" (right)
             [0.1, 0.6, 0.2, 0.1])   # negated, negative review: "bad" again (wrong: no flip)
    r = sim_eval.readings(aff, neg, [1, 0], [1, 2])
    assert r["greedy_task1"] == 0.5 and r["pair_task1"] == 1.0      # item 1: "the" is not the word; P(good) wins
    assert r["greedy_neqa"] == 0.5 and r["pair_neqa"] == 0.5
    assert r["greedy_task2"] == 0.0 and r["pair_task2"] == 0.5      # only the pair reading sees item 1 flip
    assert r["greedy_verdict_rate"] == 0.5


def test_next_token_logprobs_read_the_last_real_position_under_padding():
    tok = st.train_tokenizer(st.pretraining_texts(200))
    from simulation.model import make_model
    model = make_model(len(tok), 1, 2, 16, n_positions=64, seed=0).eval()
    prompts = ["the plot was dull . this does suggest that it is", "good .", "i liked the film ."]
    batched = sim_eval.last_logprobs(model, tok, prompts, batch_size=3)
    one_by_one = torch.cat([sim_eval.last_logprobs(model, tok, [p]) for p in prompts])
    assert batched.shape == (3, len(tok)) and torch.allclose(batched, one_by_one, atol=1e-5)
    assert torch.allclose(batched.exp().sum(1), torch.ones(3), atol=1e-4)


# ------------------------------------------------------------------------------------------- trends from seeds

def _curves(shape, n_seeds, rng):
    """Independent synthetic per-seed curves over five sizes: a straight line up or down plus small noise."""
    base = {"inverse": [0.9, 0.75, 0.6, 0.45, 0.3], "positive": [0.3, 0.45, 0.6, 0.75, 0.9]}[shape]
    return [np.clip(np.array(base) + rng.normal(0, 0.01, 5), 0, 1) for _ in range(n_seeds)]


def test_seed_trend_labels_only_what_every_seed_shows():
    rng = np.random.default_rng(1)
    x = [3e3, 1e4, 5e4, 1e5, 3e5]
    assert sim_eval.seed_trend(x, _curves("inverse", 3, rng), n_items=400)["label"] == "inverse"
    assert sim_eval.seed_trend(x, _curves("positive", 3, rng), n_items=400)["label"] == "positive"
    mixed = _curves("inverse", 2, rng) + _curves("positive", 1, rng)
    out = sim_eval.seed_trend(x, mixed, n_items=400)
    assert out["label"] == "unclear" and out["seed_labels"].split("/") == ["inverse", "inverse", "positive"]
    assert not out["at_chance"]
    flat = [np.full(5, 0.5) + rng.normal(0, 0.005, 5) for _ in range(3)]
    assert sim_eval.seed_trend(x, flat, n_items=400)["at_chance"]
    # a U every seed shows: down to a minimum in the middle, back up
    u = [np.array([0.8, 0.4, 0.1, 0.45, 0.85]) + d for d in (0.0, 0.02, -0.02)]
    assert sim_eval.seed_trend(x, u, n_items=400)["label"] == "u-shaped"


def test_aggregate_means_sds_and_trend_rows():
    rows = []
    for seed, shift in enumerate((0.0, 0.1, 0.2)):
        for i, n in enumerate((1e3, 1e4, 1e5, 1e6)):
            acc = {f"{r}_{m}": 0.2 + 0.2 * i + shift / 10 for r in sim_eval.READINGS for m in sim_eval.METRICS}
            rows.append({"model": f"m{i}", "non_embedding_params": n, "ratio": 0.1, "seed": seed, "n_test": 500,
                         "greedy_verdict_rate": 1.0, **acc})
    cells, trends = sim_eval.aggregate(rows)
    assert len(cells) == 4 and all(c["n_seeds"] == 3 for c in cells)
    assert cells[0]["greedy_task1_mean"] == pytest.approx(0.21) and cells[0]["greedy_task1_sd"] == pytest.approx(0.01)
    assert {(t["reading"], t["metric"]): t["label"] for t in trends} == \
        {(r, m): "positive" for r in sim_eval.READINGS for m in sim_eval.METRICS}


# ------------------------------------------------------------------------------------------- commands

LADDER_ARGS = ["--sizes", "0", "--ratio", "0", "0.5", "--seeds", "0", "1", "--pretrain-steps", "3", "--n-train", "40",
               "--threads", "1", "--quiet"]


def _weights(folder):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ladder_seeds_repeat_exactly_and_differ_between_seeds(tmp_path, capsys):
    """Figure-6 seed determinism: the same grid twice (in-process, then two worker processes) gives the same
    weights and scores; seed 1 differs from seed 0; pretraining is one run per size, shared by every cell."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert sim_train.main(LADDER_ARGS + ["--out-dir", str(one)]) == 0
    assert sim_train.main(LADDER_ARGS + ["--out-dir", str(two), "--jobs", "2"]) == 0
    # other settings found by a worker process: one error line, nothing retrained
    assert sim_train.main(LADDER_ARGS + ["--out-dir", str(two), "--jobs", "2", "--lr", "0.002"]) == 2
    assert "lr: 0.003 then, 0.002 now" in capsys.readouterr().err
    assert _same(_weights(one / "pretrained/s0/final"), _weights(two / "pretrained/s0/final"))
    for cell in ("s0-r0-seed0", "s0-r0.5-seed1"):
        assert _same(_weights(one / "finetuned" / cell / "final"), _weights(two / "finetuned" / cell / "final"))
    assert not _same(_weights(one / "finetuned/s0-r0.5-seed0/final"), _weights(one / "finetuned/s0-r0.5-seed1/final"))
    assert not _same(_weights(one / "pretrained/s0/final"), _weights(one / "finetuned/s0-r0-seed0/final"))
    for out in (one, two):
        assert sim_eval.main(["--runs", str(out), "--n-test", "30"]) == 0
    a, b = read_csv(one / "figures/fig6_negation_ratio_seeds.csv"), read_csv(two / "figures/fig6_negation_ratio_seeds.csv")
    assert a == b and len(a) == 4
    settings = json.loads((one / "settings.json").read_text())
    for key in ("models", "pretraining", "data", "loss", "learning_rate", "epochs", "batch", "ratios", "seeds",
                "scoring", "paper", "reasons"):
        assert key in settings, key
    assert settings["seeds"] == [0, 1] and settings["ratios"] == [0.0, 0.5] and settings["pretraining"]["runs_per_size"] == 1
    assert settings["models"][0]["non_embedding_params"] == int(a[0]["non_embedding_params"])
    assert settings["scoring"]["n_test"] == 30


def _tiny_pretrained(folder, n_embd, seed):
    """A tiny GPT-2 with a word-level tokenizer, saved like a hub checkpoint (save_pretrained)."""
    from simulation.model import make_model
    tok = st.train_tokenizer(st.pretraining_texts(300))
    model = make_model(len(tok), 1, 2, n_embd, n_positions=128, seed=seed)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_hub_path_fine_tunes_pretrained_models_from_folders(tmp_path):
    """--init hub takes hub names or local folders: here three tiny pretrained models the test saves."""
    folders = [_tiny_pretrained(tmp_path / f"tiny{d}", d, seed=i) for i, d in enumerate((8, 16, 24))]
    out = tmp_path / "grid"
    argv = ["--init", "hub", "--models", ",".join(map(str, folders)), "--ratio", "0", "0.2", "--seeds", "3",
            "--n-train", "60", "--lr", "1e-3", "--out-dir", str(out), "--threads", "1", "--quiet"]
    assert sim_train.main(argv) == 0
    for f in folders:
        run = out / "finetuned" / f"{f.name}-r0.2-seed3"
        meta = json.loads((run / "run.json").read_text())
        assert meta["n_negated"] == 12 and meta["steps"] == 3 * -(-meta["blocks"] // 8)
        assert not _same(_weights(f), _weights(run / "final"))   # fine-tuned from the saved weights
        assert (run / "final" / "tokenizer.json").exists()
    settings = json.loads((out / "settings.json").read_text())
    assert [m["name"] for m in settings["models"]] == ["tiny8", "tiny16", "tiny24"]
    assert settings["learning_rate"] == 1e-3 and settings["init"] == "hub"
    assert all(m["non_embedding_params"] > 0 for m in settings["models"])
    assert sim_eval.main(["--runs", str(out), "--n-test", "20"]) == 0
    rows = read_csv(out / "figures/fig6_negation_ratio_seeds.csv")
    assert len(rows) == 6 and {r["model"] for r in rows} == {"tiny8", "tiny16", "tiny24"}
    trends = read_csv(out / "figures/fig6_negation_ratio_trends.csv")
    assert len(trends) == 2 * 2 * 3 and all(t["n_seeds"] == "1" for t in trends)
    assert (out / "figures/fig6_negation_ratio.png").stat().st_size > 0


def test_unreachable_hub_model_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "no_such_model"
    assert sim_train.main(["--init", "hub", "--models", str(missing), "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_model" in err and "--init ladder" in err
    assert not (tmp_path / "o").exists()


def test_command_errors(tmp_path, capsys):
    assert sim_train.main(["--sizes", "9", "--out-dir", str(tmp_path / "a")]) == 2
    assert sim_train.main(["--ratio", "1.5", "--out-dir", str(tmp_path / "a")]) == 2
    assert sim_eval.main(["--runs", str(tmp_path / "empty")]) == 2
    assert "settings.json" in capsys.readouterr().err
    (tmp_path / "bad" / "finetuned" / "r").mkdir(parents=True)
    (tmp_path / "bad" / "settings.json").write_text('{"data": {"source": "generated", "n_train": 10}}')
    (tmp_path / "bad" / "finetuned" / "r" / "run.json").write_text('{"model": "s0", "seed": 0}')
    assert sim_eval.main(["--runs", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "run.json" in err and "ratio" in err


def test_plateau_first_step_reads_the_first_checkpoint_at_the_threshold():
    from simulation.sentiment_plateau import first_step
    rows = [{"weight": 1.0, "step": s, "task1": a} for s, a in ((25, 0.5), (50, 0.8), (75, 0.7), (100, 0.9))]
    rows += [{"weight": 30.0, "step": 25, "task1": 0.76}]
    assert first_step(rows, 1.0, 0.75) == 50 and first_step(rows, 30.0, 0.75) == 25
    assert first_step(rows, 1.0, 0.95) is None


@pytest.mark.slow
def test_plateau_command_scores_every_checkpoint_of_every_weight(tmp_path, capsys):
    from simulation import sentiment_plateau
    folder = _tiny_pretrained(tmp_path / "tiny", 16, seed=0)
    out = tmp_path / "plateau"
    argv = ["--pretrained", str(folder), "--weights", "1", "5", "--steps", "4", "--every", "2", "--n-train", "40",
            "--n-test", "10", "--threshold", "0.01", "--out-dir", str(out)]
    assert sentiment_plateau.main(argv) == 0
    rows = read_csv(out / "plateau.csv")
    assert [(r["weight"], r["step"]) for r in rows] == [("1.0", "2"), ("1.0", "4"), ("5.0", "2"), ("5.0", "4")]
    assert json.loads((out / "plateau.json").read_text())["first_step"] == {"1": 2, "5": 2}
    assert sentiment_plateau.main(["--pretrained", str(tmp_path / "nothing")]) == 2
    assert "error:" in capsys.readouterr().err
