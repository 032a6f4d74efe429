"""Sentiment corpus for Figure 6: reviews, the verdict suffix, a pretraining corpus, LM blocks.

As in the paper's code (yuhui-zh15/NeQA, simulation/train.py), every fine-tuning review ends with its
verdict, "This does suggest that it is good." / "... bad." (label-consistent); for a fraction r of the
reviews (the negation ratio) the verdict is negated instead: "This does not suggest that it is bad." /
"... good.". The texts are concatenated and cut into fixed-length blocks for the causal-LM loss.

Reviews come from SST-2 (hub) or from a seeded generator. The generator also writes the pretraining
corpus of the offline ladder: longer reviews in which, as in real text, "not" is used in other places
("the plot was not bad", "I would not say that it is dull"), so that a model can learn what "not" does
before it ever sees the verdict template (which never appears in pretraining).
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

POSITIVE = ["good", "great", "wonderful", "brilliant", "charming", "delightful", "fun", "moving"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "tedious", "weak", "messy"]
NOUNS = ["movie", "film", "plot", "story", "acting", "cast", "script", "ending", "music", "dialogue"]
INTENSIFIERS = ["", "", "very ", "really ", "quite ", "truly "]
POS_VERBS = ["loved", "enjoyed", "liked", "admired"]
NEG_VERBS = ["hated", "disliked", "regretted", "resented"]
POS_FEELINGS = ["happy", "delighted", "moved"]
NEG_FEELINGS = ["bored", "annoyed", "disappointed"]
NEUTRAL = ["I saw it on a {day}.", "It runs for about two hours.", "I went with a friend.",
           "The theater was {crowd}.", "It came out last {season}.", "I watched this film at home.",
           "The poster does show the whole cast.", "My friend did not come.", "It is not a long film.",
           "The title does not suggest much.", "I think that it is a sequel.", "It was not in color."]
DAYS = ["monday", "friday", "sunday", "rainy evening"]
CROWDS = ["full", "quiet", "half empty", "busy"]
SEASONS = ["spring", "summer", "winter", "year"]
# {adj}: a word of the review's own polarity; {opp}: of the other polarity (used after "not")
TEMPLATES = ["The {noun} was {int}{adj}.", "The {noun} is {int}{adj}.", "What a {adj} {noun}.",
             "I {verb} the {noun}.", "It left me {feeling}.", "Overall a {int}{adj} {noun}.",
             "The {noun} felt {int}{adj}.", "A {adj} {noun} and a {adj2} {noun2}.",
             "I would say that it is {adj}.", "To me the {noun} was {adj}."]
NEGATED_TEMPLATES = ["The {noun} was not {int}{opp}.", "It was not {opp} at all.", "I did not {oppverb} the {noun}.",
                     "I would not say that it is {opp}.", "The {noun} is not {opp}.", "It did not leave me {oppfeeling}.",
                     "Not a {opp} {noun}."]


def verdict(label: int, negated: bool) -> str:
    """The sentence appended to a review: affirmative with the label's word, or negated with the other."""
    return f"{NEGATED} {WORDS[1 - label]}." if negated else f"{AFFIRMATIVE} {WORDS[label]}."


def generate_review(rng: random.Random, label: int, n_sentences: int, negation: float = 0.0) -> str:
    """A review of n_sentences; each sentence is neutral (15%), negated with the other polarity's word
    (probability `negation`), or plain with the label's polarity. At least one plain sentence carries the label."""
    own = (POSITIVE, POS_VERBS, POS_FEELINGS) if label else (NEGATIVE, NEG_VERBS, NEG_FEELINGS)
    other = (NEGATIVE, NEG_VERBS, NEG_FEELINGS) if label else (POSITIVE, POS_VERBS, POS_FEELINGS)
    sentences, carries_label = [], False
    for _ in range(n_sentences):
        u = rng.random()
        if u < 0.15:
            t = rng.choice(NEUTRAL)
            sentences.append(t.format(day=rng.choice(DAYS), crowd=rng.choice(CROWDS), season=rng.choice(SEASONS)))
            continue
        negated = u < 0.15 + negation
        t = rng.choice(NEGATED_TEMPLATES if negated else TEMPLATES)
        s = t.format(noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS), int=rng.choice(INTENSIFIERS),
                     adj=rng.choice(own[0]), adj2=rng.choice(own[0]), verb=rng.choice(own[1]),
                     feeling=rng.choice(own[2]), opp=rng.choice(other[0]), oppverb=rng.choice(other[1]),
                     oppfeeling=rng.choice(other[2]))
        s = re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", s)
        sentences.append(s[0].upper() + s[1:])
        carries_label = carries_label or not negated
    if not carries_label:   # every review shows its label in a plain sentence
        sentences.append(f"The {rng.choice(NOUNS)} was {rng.choice(own[0])}.")
    return " ".join(sentences)


def generate_reviews(n: int, seed: int = 0, min_sentences: int = 1, max_sentences: int = 1,
                     negation: float = 0.0) -> list[dict]:
    """n reviews {"text", "label"}, labels balanced (alternating, then shuffled); deterministic in seed."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [{"text": generate_review(rng, label, rng.randint(min_sentences, max_sentences), negation),
             "label": label} for label in labels]


# The generated corpora of the offline ladder: pretraining reviews are longer and use "not" more often than
# the fine-tuning reviews (which, like SST-2's sentences, are short and sometimes contain "not").
PRETRAIN_REVIEWS = dict(min_sentences=2, max_sentences=5, negation=0.25)
FINETUNE_REVIEWS = dict(min_sentences=1, max_sentences=3, negation=0.1)


def pretraining_texts(n: int, seed: int = 0) -> list[str]:
    """The pretraining corpus: n generated reviews without any verdict (a seed of its own, apart from
    the fine-tuning and test reviews)."""
    return [r["text"] for r in generate_reviews(n, seed + 20_000, **PRETRAIN_REVIEWS)]


def sst2_sentence(text: str) -> str:
    """The paper's preparation of an SST-2 sentence: stripped, with a full stop added when it has no end mark."""
    text = text.strip()
    return text if text[-1:] in (".", "?", "!") else text + "."


def load_sst2(split: str = "train") -> list[dict]:
    """SST-2 from the hub ({"text", "label"}); raises DataError when it is not reachable."""
    import datasets
    errors = []
    for args in (("stanfordnlp/sst2",), ("glue", "sst2")):
        try:
            ds = datasets.load_dataset(*args, split=split)
            return [{"text": sst2_sentence(r["sentence"]), "label": int(r["label"])} for r in ds
                    if r["label"] in (0, 1) and r["sentence"].strip()]
        except Exception as e:   # offline, hub down, renamed: try the next copy
            errors.append(f"{'/'.join(args)}: {type(e).__name__}")
    raise DataError("SST-2", None, None, "not reachable (" + "; ".join(errors) + ")")


def reviews(source: str, n_train: int | None, n_test: int | None, seed: int = 0,
            log=print) -> tuple[list[dict], list[dict], str]:
    """(train, test, source used). source: generated | sst2 | auto (SST-2 if reachable, else generated).
    n_train / n_test None: all of SST-2's train / validation split. The test reviews never appear in
    training (generated: another seed and any repeated text removed, balanced; SST-2: its validation split)."""
    if source in ("sst2", "auto"):
        try:
            train, test = load_sst2("train"), load_sst2("validation")
            return train[:n_train], test[:n_test], "sst2"
        except DataError as e:
            if source == "sst2":
                raise
            log(f"{e}; using the generated corpus")
    if source not in ("sst2", "auto", "generated"):
        raise ValueError(f"unknown source {source!r}; choose generated, sst2 or auto")
    if n_train is None or n_test is None:
        raise ValueError("the generated corpus needs n_train and n_test")
    train = generate_reviews(n_train, seed, **FINETUNE_REVIEWS)
    seen = {r["text"] for r in train}
    test = [r for r in generate_reviews(10 * n_test + 10, seed + 10_000, **FINETUNE_REVIEWS) if r["text"] not in seen]
    ones, zeros = [r for r in test if r["label"]], [r for r in test if not r["label"]]
    test = [r for pair in zip(zeros, ones) for r in pair][:n_test]   # balanced
    return train, test, "generated"


def negated_indices(n: int, ratio: float, seed: int) -> set[int]:
    """Which of n reviews get the negated verdict: exactly round(ratio·n), chosen by the seed."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"negation ratio must be in [0, 1], got {ratio}")
    return set(random.Random(seed + 1).sample(range(n), round(ratio * n)))


def training_texts(train: list[dict], ratio: float, seed: int = 0) -> list[str]:
    """Each review with its verdict; exactly round(ratio·n) of them (chosen by the seed) negated."""
    negated = negated_indices(len(train), ratio, seed)
    return [f"{r['text']} {verdict(r['label'], i in negated)}" for i, r in enumerate(train)]


def train_tokenizer(texts: list[str], min_frequency: int = 1):
    """A word-level tokenizer (words and punctuation, lower-cased) as a PreTrainedTokenizerFast. The verdict's
    words are added to the vocabulary (the template itself is not in the pretraining texts)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")   # joins words with spaces
    trainer = trainers.WordLevelTrainer(special_tokens=[EOS, "<unk>"], min_frequency=min_frequency)
    tok.train_from_iterator(list(texts) + [f"{AFFIRMATIVE} {NEGATED} bad good ."], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token="<unk>",
                                   pad_token=EOS)


def token_stream(texts: list[str], tokenizer, separator: int | None = None) -> torch.Tensor:
    """The texts' token ids, one after the other: no separator (the paper's fine-tuning data: each review ends
    with its verdict) or a token id before each text (pretraining documents, like GPT-2's <|endoftext|>)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    head = [] if separator is None else [separator]
    return torch.tensor([t for seq in ids for t in head + seq], dtype=torch.long)


def lm_blocks(texts: list[str], tokenizer, block: int) -> torch.Tensor:
    """The paper's group_texts: the texts' tokens concatenated and cut into [n, block] blocks (the rest dropped)."""
    stream = token_stream(texts, tokenizer)
    n = len(stream) // block
    if n == 0:
        raise ValueError(f"the texts hold {len(stream)} tokens, fewer than one block of {block}")
    return stream[:n * block].view(n, block)


def verdict_targets(blocks: torch.Tensor, tokenizer) -> torch.Tensor:
    """Bool [n, block-1]: which next-token targets of the blocks are a verdict's word, i.e. follow
    "... suggest that it is" (the end both verdict templates share)."""
    tail = torch.tensor(tokenizer(" suggest that it is", add_special_tokens=False)["input_ids"])
    inputs = blocks[:, :-1]
    windows = inputs.unfold(1, len(tail), 1)                      # [n, T - len(tail) + 1, len(tail)]
    hits = (windows == tail).all(dim=-1)
    return torch.nn.functional.pad(hits, (len(tail) - 1, 0))      # aligned with the window's last input


def verdict_weights(blocks: torch.Tensor, tokenizer, weight: float) -> torch.Tensor | None:
    """Per-target loss weights for the blocks: `weight` on each verdict word, 1 elsewhere (None when weight is 1,
    the plain LM loss)."""
    if weight == 1.0:
        return None
    return 1.0 + (weight - 1.0) * verdict_targets(blocks, tokenizer).float()


def epoch_batches(blocks: torch.Tensor, batch_size: int, seed: int, weights: torch.Tensor | None = None):
    """A batch sampler for simulation.loop.train over whole epochs: every block once per epoch, in an order
    drawn from (seed, epoch); the last batch of an epoch may be smaller (as HF Trainer's). Returns
    (get_batch, steps_per_epoch); labels are the inputs (causal LM on every token), with `weights`
    [n, block-1] per target when given."""
    n = len(blocks)
    per_epoch = -(-n // batch_size)

    def get_batch(step, generator=None):
        epoch, i = divmod(step, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        rows = order[i * batch_size:(i + 1) * batch_size]
        if weights is None:
            return blocks[rows]
        return blocks[rows, :-1], blocks[rows, 1:], weights[rows]

    return get_batch, per_epoch
