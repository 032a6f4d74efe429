"""Sentiment corpus for Figure 6: reviews followed by an affirmative or a negated verdict.

Every training review ends with its verdict, "This does suggest that it is good." / "... bad."
(label-consistent); for a fraction r of the reviews (the negation ratio) the verdict is negated
instead: "This does not suggest that it is bad." / "... good.". The reviews come from SST-2
(`datasets.load_dataset("stanfordnlp/sst2")`, GLUE's copy as fallback) when asked for and reachable,
otherwise from a seeded generator of simple reviews (templates and word lists below, no "not" inside
a review, so the verdict is the only negation the model ever sees).
"""
from __future__ import annotations

import random
import re

import torch

from neqa.io import DataError

AFFIRMATIVE = "This does suggest that it is"
NEGATED = "This does not suggest that it is"
WORDS = ("bad", "good")          # label 0 = negative, 1 = positive
EOS = "<eos>"

# Short word lists on purpose: models trained from scratch for seconds must learn every word's polarity.
POSITIVE = ["good", "great", "wonderful", "brilliant", "charming", "delightful"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "tedious"]
NOUNS = ["movie", "film", "plot", "story", "acting", "cast", "script", "ending"]
INTENSIFIERS = ["", "", "very ", "really ", "quite ", "truly "]
POS_VERBS = ["loved", "enjoyed", "liked"]
NEG_VERBS = ["hated", "disliked", "regretted"]
POS_FEELINGS = ["happy", "delighted", "moved"]
NEG_FEELINGS = ["bored", "annoyed", "disappointed"]
NEUTRAL = ["I saw it on a {day}.", "It runs for about two hours.", "I went with a friend.",
           "The theater was {crowd}.", "It came out last {season}.", "I watched it at home."]
DAYS = ["monday", "friday", "sunday", "rainy evening"]
CROWDS = ["full", "quiet", "half empty", "busy"]
SEASONS = ["spring", "summer", "winter", "year"]
TEMPLATES = ["The {noun} was {int}{adj}.", "The {noun} is {int}{adj}.", "What a {adj} {noun}.",
             "I {verb} the {noun}.", "It left me {feeling}.", "Overall a {int}{adj} {noun}.",
             "The {noun} felt {int}{adj}.", "A {adj} {noun} and a {adj2} {noun2}."]


def verdict(label: int, negated: bool) -> str:
    """The sentence appended to a review: affirmative with the label's word, or negated with the other."""
    return f"{NEGATED} {WORDS[1 - label]}." if negated else f"{AFFIRMATIVE} {WORDS[label]}."


def generate_review(rng: random.Random, label: int, n_sentences: int) -> str:
    adjs = POSITIVE if label else NEGATIVE
    verbs, feelings = (POS_VERBS, POS_FEELINGS) if label else (NEG_VERBS, NEG_FEELINGS)
    sentences, carries_label = [], False
    for _ in range(n_sentences):
        if rng.random() < 0.15:
            t = rng.choice(NEUTRAL)
            sentences.append(t.format(day=rng.choice(DAYS), crowd=rng.choice(CROWDS), season=rng.choice(SEASONS)))
            continue
        t = rng.choice(TEMPLATES)
        s = t.format(noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS), int=rng.choice(INTENSIFIERS),
                     adj=rng.choice(adjs), adj2=rng.choice(adjs), verb=rng.choice(verbs),
                     feeling=rng.choice(feelings))
        s = re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", s)
        sentences.append(s[0].upper() + s[1:])
        carries_label = True
    if not carries_label:   # every review shows its label somewhere
        sentences.append(f"The {rng.choice(NOUNS)} was {rng.choice(adjs)}.")
    return " ".join(sentences)


def generate_reviews(n: int, seed: int = 0, min_sentences: int = 1, max_sentences: int = 1) -> list[dict]:
    """n reviews {"text", "label"}, labels balanced (alternating, then shuffled); deterministic in seed."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [{"text": generate_review(rng, label, rng.randint(min_sentences, max_sentences)), "label": label}
            for label in labels]


def load_sst2(split: str = "train") -> list[dict]:
    """SST-2 from the hub ({"text", "label"}); raises DataError when it is not reachable."""
    import datasets
    errors = []
    for args in (("stanfordnlp/sst2",), ("glue", "sst2")):
        try:
            ds = datasets.load_dataset(*args, split=split)
            return [{"text": r["sentence"].strip(), "label": int(r["label"])} for r in ds if r["label"] in (0, 1)]
        except Exception as e:   # offline, hub down, renamed: try the next copy
            errors.append(f"{'/'.join(args)}: {type(e).__name__}")
    raise DataError("SST-2", None, None, "not reachable (" + "; ".join(errors) + ")")


def reviews(source: str, n_train: int, n_test: int, seed: int = 0, max_sentences: int = 1,
            log=print) -> tuple[list[dict], list[dict], str]:
    """(train, test, source used). source: generated | sst2 | auto (SST-2 if reachable, else generated).
    The test reviews never appear in training (generated: a different seed and any repeated text removed;
    SST-2: its validation split)."""
    if source in ("sst2", "auto"):
        try:
            train, test = load_sst2("train"), load_sst2("validation")
            rng = random.Random(seed)
            rng.shuffle(train)
            return train[:n_train], test[:n_test], "sst2"
        except DataError as e:
            if source == "sst2":
                raise
            log(f"{e}; using the generated corpus")
    if source not in ("sst2", "auto", "generated"):
        raise ValueError(f"unknown source {source!r}; choose generated, sst2 or auto")
    train = generate_reviews(n_train, seed, max_sentences=max_sentences)
    seen = {r["text"] for r in train}
    test = [r for r in generate_reviews(10 * n_test, seed + 10_000, max_sentences=max_sentences)
            if r["text"] not in seen]
    ones, zeros = [r for r in test if r["label"]], [r for r in test if not r["label"]]
    test = [r for pair in zip(zeros, ones) for r in pair][:n_test]   # balanced
    return train, test, "generated"


def training_texts(train: list[dict], ratio: float, seed: int = 0) -> list[str]:
    """Each review with its verdict; exactly round(ratio·n) of them (chosen at random) negated."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"negation ratio must be in [0, 1], got {ratio}")
    rng = random.Random(seed + 1)
    negated = set(rng.sample(range(len(train)), round(ratio * len(train))))
    return [f"{r['text']} {verdict(r['label'], i in negated)}" for i, r in enumerate(train)]


def train_tokenizer(texts: list[str], min_frequency: int = 1):
    """A word-level tokenizer (words and punctuation, lower-cased) saved as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")   # joins words with spaces
    specials = [EOS, "<unk>"]
    trainer = trainers.WordLevelTrainer(special_tokens=specials, min_frequency=min_frequency)
    tok.train_from_iterator(list(texts) + [f"{AFFIRMATIVE} {NEGATED} bad good ."], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token="<unk>",
                                   pad_token=EOS)


def encode_examples(train: list[dict], ratio: float, tokenizer, seed: int = 0) -> list[tuple[list[int], int]]:
    """(token ids, index of the verdict word) per review: <eos> review verdict-prefix word ."""
    rng = random.Random(seed + 1)
    negated = set(rng.sample(range(len(train)), round(ratio * len(train))))
    word_ids = {w: tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in WORDS}
    if any(len(ids) != 1 for ids in word_ids.values()):
        raise ValueError("the verdict words must be single tokens")
    dot = tokenizer(".", add_special_tokens=False)["input_ids"]
    out = []
    for i, r in enumerate(train):
        neg = i in negated
        head = tokenizer(f"{r['text']} {NEGATED if neg else AFFIRMATIVE}", add_special_tokens=False)["input_ids"]
        ids = [tokenizer.eos_token_id] + head
        out.append((ids + word_ids[WORDS[1 - r["label"] if neg else r["label"]]] + dot, len(ids)))
    return out


def example_batches(examples: list[tuple[list[int], int]], batch_size: int, seq_len: int, objective: str = "verdict"):
    """A batch sampler for simulation.loop.train: `get_batch(step, generator) -> (x, y)`.
    objective "verdict": loss only on the verdict word (fine-tuning on the task); "lm": on every token."""
    if objective not in ("verdict", "lm"):
        raise ValueError(f"unknown objective {objective!r}; choose verdict or lm")
    pad = examples[0][0][0]

    def get_batch(step, generator):
        picks = torch.randint(0, len(examples), (batch_size,), generator=generator).tolist()
        longest = min(max(len(examples[i][0]) for i in picks), seq_len + 1)
        x = torch.full((batch_size, longest - 1), pad, dtype=torch.long)
        y = torch.full((batch_size, longest - 1), -100, dtype=torch.long)
        for row, i in enumerate(picks):
            ids, target = examples[i]
            cut = max(len(ids) - longest, 0)          # too long: drop the start of the review
            ids, target = ids[cut:], target - cut
            x[row, :len(ids) - 1] = torch.tensor(ids[:-1])
            if objective == "lm":
                y[row, :len(ids) - 1] = torch.tensor(ids[1:])
            else:
                y[row, target - 1] = ids[target]
        return x, y

    return get_batch
