"""Figure 6: the sentiment corpus, the training command and the grid evaluation."""
import csv
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from simulation import sentiment as st
from simulation import sentiment_eval as sim_eval
from simulation import sentiment_train as sim_train


def words(text):
    return set(re.findall(r"[a-z]+", text.lower()))


def test_generator_is_deterministic_and_balanced():
    a, b, c = st.generate_reviews(200, seed=3), st.generate_reviews(200, seed=3), st.generate_reviews(200, seed=4)
    assert a == b and a != c
    assert sum(r["label"] for r in a) == 100
    pos = set(st.POSITIVE + st.POS_VERBS + st.POS_FEELINGS)
    neg = set(st.NEGATIVE + st.NEG_VERBS + st.NEG_FEELINGS)
    for r in st.generate_reviews(300, seed=0, max_sentences=3):
        w = words(r["text"])
        assert "not" not in w                       # the verdict is the only negation
        own, other = (pos, neg) if r["label"] else (neg, pos)
        assert w & own and not w & other, r


def test_reviews_split_disjoint_and_balanced():
    train, test, source = st.reviews("generated", 500, 60, seed=0)
    assert source == "generated" and len(train) == 500 and len(test) == 60
    assert not {r["text"] for r in train} & {r["text"] for r in test}
    assert sum(r["label"] for r in test) == 30
    with pytest.raises(ValueError):
        st.reviews("nope", 10, 10)


def test_training_texts_negate_exactly_the_ratio():
    train = st.generate_reviews(200, seed=1)
    for ratio in (0.0, 0.05, 0.5):
        texts = st.training_texts(train, ratio, seed=1)
        negated = [t for t in texts if st.NEGATED in t]
        assert len(negated) == round(ratio * 200)
        for r, t in zip(train, texts):
            good, bad = t.endswith(" good."), t.endswith(" bad.")
            assert good != bad
            # affirmative: the label's word; negated: the other word — both true statements
            assert (good == bool(r["label"])) == (st.NEGATED not in t)
    assert st.training_texts(train, 0.05, seed=1) == st.training_texts(train, 0.05, seed=1)
    with pytest.raises(ValueError):
        st.training_texts(train, 1.5)


def test_tokenizer_and_examples():
    train = st.generate_reviews(100, seed=2)
    texts = st.training_texts(train, 0.3, seed=0)
    tok = st.train_tokenizer(texts)
    good, bad = (tok(" " + w, add_special_tokens=False)["input_ids"] for w in ("good", "bad"))
    assert len(good) == len(bad) == 1
    assert tok.decode(tok("The plot was dull.")["input_ids"]) == "the plot was dull."   # lower-cased words
    examples = st.encode_examples(train, 0.3, tok, seed=0)
    assert len(examples) == 100
    for (ids, target), text in zip(examples, texts):
        assert ids[0] == tok.eos_token_id
        assert ids[target] == (good[0] if text.endswith(" good.") else bad[0])
        assert ids[1:] == tok(text, add_special_tokens=False)["input_ids"]   # same text as training_texts
    get = st.example_batches(examples, 8, 64, "verdict")
    x, y = get(0, torch.Generator().manual_seed(0))
    assert ((y != -100).sum(dim=1) == 1).all()
    assert set(y[y != -100].tolist()) <= {good[0], bad[0]}
    x2, y2 = st.example_batches(examples, 8, 64, "lm")(0, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    all_ids = {tuple(ids) for ids, _ in examples}
    for row in range(8):   # lm targets are the example shifted by one: x[0] + targets = the whole example
        targets = y2[row][y2[row] != -100].tolist()
        assert (x[row, 0].item(), *targets) in all_ids
        assert x[row, :len(targets)].tolist()[1:] == targets[:-1]
    short_x, short_y = st.example_batches(examples, 4, 6, "verdict")(0, torch.Generator().manual_seed(1))
    assert short_x.shape[1] == 6 and ((short_y != -100).sum(dim=1) == 1).all()   # long reviews lose their start


def test_accuracies_on_hand_values():
    # log-probs of (bad, good); labels 1, 1, 0, 0
    aff = np.log([[0.2, 0.8], [0.2, 0.8], [0.9, 0.1], [0.3, 0.7]])
    neg = np.log([[0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    acc = sim_eval.accuracies(aff, neg, [1, 1, 0, 0])
    assert acc["task1"] == pytest.approx(3 / 4)   # item 4 says good for a bad review
    assert acc["task2"] == pytest.approx(2 / 4)   # items 1 and 3 flip
    assert acc["neqa"] == pytest.approx(3 / 4)    # items 1 and 3 flip right; item 4 is wrong twice: right
    # item-level composition: right on NeQA iff (task1 and task2) or (neither)
    t1 = np.argmax(aff, 1) == [1, 1, 0, 0]
    t2 = np.argmax(neg, 1) != np.argmax(aff, 1)
    assert acc["neqa"] == pytest.approx(np.mean(t1 == t2))


class CountingModel(torch.nn.Module):
    """A causal stand-in: at each position, logit(good) − logit(bad) = (#positive − #negative words so far),
    sign-flipped by each 'not' seen so far. Pad tokens after a prompt must not change its score."""

    def __init__(self, tok):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.v = len(tok)
        self.pos = [tok.convert_tokens_to_ids(w) for w in st.POSITIVE + st.POS_VERBS + st.POS_FEELINGS]
        self.neg = [tok.convert_tokens_to_ids(w) for w in st.NEGATIVE + st.NEG_VERBS + st.NEG_FEELINGS]
        self.not_id = tok.convert_tokens_to_ids("not")
        self.good, self.bad = tok.convert_tokens_to_ids("good"), tok.convert_tokens_to_ids("bad")

    def forward(self, input_ids, attention_mask=None):
        score = torch.isin(input_ids, torch.tensor(self.pos)).float() - torch.isin(input_ids, torch.tensor(self.neg)).float()
        flips = (input_ids == self.not_id).long().cumsum(1) % 2
        s = score.cumsum(1) * (1 - 2 * flips)
        logits = torch.full((*input_ids.shape, self.v), -1e4)
        logits[..., self.good], logits[..., self.bad] = s, -s
        return SimpleNamespace(logits=logits + 0 * self.w)


def test_next_word_logprobs_reads_the_last_real_position():
    train, test, _ = st.reviews("generated", 300, 40, seed=0)
    tok = st.train_tokenizer(st.training_texts(train, 0.5))
    model = CountingModel(tok)
    labels = [r["label"] for r in test]
    # prompts of different lengths in one batch: padding is exercised
    aff = sim_eval.next_word_logprobs(model, tok, sim_eval.prompts_for(test, tok, st.AFFIRMATIVE), batch_size=16)
    neg = sim_eval.next_word_logprobs(model, tok, sim_eval.prompts_for(test, tok, st.NEGATED), batch_size=16)
    assert aff.shape == (40, 2) and np.allclose(np.exp(aff).sum(1), 1.0, atol=1e-5)  # good and bad take all mass
    # the counting model knows the sentiment (generated reviews carry only their own polarity words)
    # and flips under "not": perfect on all three, which a wrong position or padding would spoil
    assert sim_eval.accuracies(aff, neg, labels) == {"task1": 1.0, "task2": 1.0, "neqa": 1.0}
    assert sim_eval.accuracies(neg, aff, labels)["task1"] == 0.0
    one_by_one = np.concatenate([sim_eval.next_word_logprobs(model, tok, [p]) for p in
                                 sim_eval.prompts_for(test[:5], tok, st.NEGATED)])
    assert np.allclose(one_by_one, neg[:5])


@pytest.mark.slow
def test_train_and_eval_commands_end_to_end(tmp_path, capsys):
    runs, figs = tmp_path / "runs", tmp_path / "figs"
    argv = ["--size", "0", "--ratio", "0", "0.5", "--steps", "6", "--batch-size", "8", "--n-train", "200",
            "--threads", "1", "--quiet", "--runs", str(runs)]
    assert sim_train.main(argv) == 0
    for name in ("s0-r0", "s0-r0.5"):
        meta = json.loads((runs / name / "run.json").read_text())
        assert meta["shape"] == "1x2x16" and meta["source"] == "generated"
        assert (runs / name / "final" / "tokenizer.json").exists()
        assert len((runs / name / "train_log.jsonl").read_text().splitlines()) == 6
    assert sim_eval.main(["--runs", str(runs), "--out-dir", str(figs), "--n-test", "20", "--n-train", "200"]) == 0
    with open(figs / "fig6_negation_ratio.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["size"], float(r["ratio"])) for r in rows] == [("0", 0.0), ("0", 0.5)]
    for r in rows:
        assert all(0.0 <= float(r[m]) <= 1.0 for m in ("task1", "task2", "neqa")) and r["n_test"] == "20"
    assert (figs / "fig6_negation_ratio.png").stat().st_size > 0 and (figs / "fig6_negation_ratio.pdf").exists()


def test_command_errors(tmp_path, capsys):
    assert sim_train.main(["--size", "9", "--ratio", "0"]) == 2
    assert sim_train.main(["--size", "0", "1", "--ratio", "0", "--out-dir", str(tmp_path / "x")]) == 2
    assert sim_train.main(["--ratio", "1.5"]) == 2
    assert sim_eval.main(["--runs", str(tmp_path / "empty"), "--out-dir", str(tmp_path)]) == 2
    (tmp_path / "bad" / "r").mkdir(parents=True)
    (tmp_path / "bad" / "r" / "run.json").write_text('{"size": 0}')
    assert sim_eval.main(["--runs", str(tmp_path / "bad"), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "run.json" in err and "ratio" in err
