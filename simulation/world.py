"""TinyWorld: a small world of entities and facts, the simplified-language corpus that describes
it, and NeQA-style test sets over facts whose questions the corpus never asks.

Everything here is a pure function of (seed, knobs): the same WorldConfig gives byte-identical
files. The corpus mixes
  * plain statements        "The heron lives in the marsh."
  * negated statements      "The heron does not live in the desert."   (true: a wrong value)
  * quizzes in the paper's prompt format (header, then solved two-choice questions):
        Question: The heron lives in the
        A. marsh
        B. desert
        Answer: A
    mostly plain questions, a few negated ones ("The heron doesn't live in the"), some of those
    answered with the paper's chain-of-thought text
  * sentence-comparison exercises in the task-2 format ("the same" / "different").
Test sets use only HELD-OUT facts: their statements are in the corpus, their questions never are,
so answering them needs the fact learned from plain text plus the question skill learned elsewhere.

    python -m simulation.world --out runs/tinyworld/data      # corpus, val text, tokenizer, test sets
"""
from __future__ import annotations

import argparse
import random
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from neqa.cli import command
from data_pipeline.prompts import HEADER, LETTERS, cot_answer, question_block
from neqa.io import UsageError, atomic_dir, atomic_open, write_json, write_jsonl
from neqa.tokenizer import EOS, byte_bpe

# ---------------------------------------------------------------------------------------------
# The world's vocabulary. A relation: plain stem, negated stems (full, contracted), the NeQA
# negation rule that produced them, and the values it can take (each entity has exactly one).

RELATIONS = {
    "class":    ("{s} is a", "{s} is not a", "{s} isn't a", "not/be",
                 ["mammal", "bird", "fish", "reptile", "beetle", "frog", "spider", "snail"]),
    "colour":   ("{s} is", "{s} is not", "{s} isn't", "not/be",
                 ["red", "blue", "green", "grey", "brown", "black", "white", "yellow", "pink", "purple"]),
    "habitat":  ("{s} lives in the", "{s} does not live in the", "{s} doesn't live in the", "not/do",
                 ["marsh", "desert", "forest", "river", "mountains", "meadow", "cave", "jungle", "sea", "swamp"]),
    "diet":     ("{s} eats", "{s} does not eat", "{s} doesn't eat", "not/do",
                 ["fish", "seeds", "grass", "insects", "fruit", "leaves", "meat", "worms", "nuts", "roots"]),
    "material": ("{s} is made of", "{s} is not made of", "{s} isn't made of", "not/be",
                 ["wood", "iron", "glass", "stone", "copper", "clay", "steel", "bone", "rubber", "tin"]),
    "place":    ("{s} is kept in the", "{s} is not kept in the", "{s} isn't kept in the", "not/be",
                 ["shed", "kitchen", "barn", "cellar", "garage", "attic", "workshop", "hall", "basement", "pantry"]),
    "use":      ("{s} is used to", "{s} is not used to", "{s} isn't used to", "not/be",
                 ["cut", "dig", "carry", "paint", "fix", "measure", "clean", "lift", "open", "mix"]),
    "job":      ("{s} works as a", "{s} does not work as a", "{s} doesn't work as a", "not/do",
                 ["baker", "farmer", "sailor", "doctor", "teacher", "painter", "builder", "singer", "driver", "cook"]),
    "city":     ("{s} lives in", "{s} does not live in", "{s} doesn't live in", "not/do",
                 ["Paris", "Rome", "Oslo", "Cairo", "Lima", "Tokyo", "Delhi", "Berlin", "Madrid", "Dublin"]),
    "drink":    ("{s} drinks", "{s} does not drink", "{s} doesn't drink", "not/do",
                 ["tea", "coffee", "milk", "juice", "water", "cocoa", "soda", "lemonade", "cider", "broth"]),
}

KINDS = {   # kind -> (subject template, relations, names)
    "animal": ("The {n}", ("class", "colour", "habitat", "diet"),
               ["heron", "otter", "badger", "beaver", "falcon", "lizard", "salmon", "turtle", "rabbit", "weasel",
                "pelican", "gecko", "ferret", "walrus", "magpie", "panda", "camel", "moose", "bison", "koala",
                "lemur", "llama", "toad", "newt", "crane", "robin", "sparrow", "lynx", "hyena", "jackal",
                "marmot", "mole", "shrew", "stork", "swan", "trout", "viper", "cobra", "donkey", "goose"]),
    "tool": ("The {n}", ("material", "colour", "place", "use"),
             ["hammer", "saw", "ladder", "bucket", "shovel", "rake", "wrench", "chisel", "drill", "brush",
              "kettle", "ladle", "whisk", "broom", "spade", "trowel", "lantern", "rope", "basket", "sieve",
              "funnel", "mallet", "crowbar", "hoe", "scythe", "anvil", "needle", "spoon", "knife", "ruler",
              "hook", "chain", "bellows", "pulley", "wheel", "bottle", "jar", "plank", "nail", "lever"]),
    "person": ("{n}", ("job", "city", "drink"),
               ["Anna", "Tom", "Maria", "Omar", "Lena", "Ivan", "Sara", "Paul", "Nina", "Hugo",
                "Rosa", "Karl", "Mia", "Leo", "Ella", "Sam", "Ada", "Ben", "Ida", "Max",
                "Zoe", "Finn", "Lily", "Noah", "Eva", "Otto", "Ruth", "Jack", "Iris", "Dan",
                "Vera", "Igor", "Alma", "Raul", "Tess", "Abel", "Nora", "Emil", "Gina", "Luca"]),
}
MAX_PER_KIND = min(len(names) for _, _, names in KINDS.values())
MAX_VALUES = min(len(r[4]) for r in RELATIONS.values())
COMPARE_QUESTION = "The above two sentences are?"


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    entities_per_kind: int = 8         # animals, tools and people each (at most 40)
    values_per_relation: int = 6       # size of each relation's value set (at most 8)
    heldout_frac: float = 0.25         # share of facts whose questions the corpus never asks
    statement_repeats: int = 40        # plain statements of every fact (held-out facts included)
    neg_statement_ratio: float = 0.15  # negated statements per plain statement
    question_repeats: int = 4          # corpus questions per trained fact
    neg_question_ratio: float = 0.15   # share of corpus questions that are negated
    cot_ratio: float = 0.25            # share of negated corpus questions answered with chain of thought
    compare_ratio: float = 0.5         # sentence-comparison exercises per trained fact
    open_book_ratio: float = 0.5       # share of quizzes preceded by the statements they ask about
    distractors: int = 5               # test items per held-out fact (each with a different wrong value)
    val_fraction: float = 0.05         # validation text, as a share of the training corpus
    vocab_size: int = 1024             # byte-level BPE vocabulary

    def validate(self) -> None:
        def bad(name, msg):
            raise UsageError(f"{name}: {msg}")
        if not 2 <= self.entities_per_kind <= MAX_PER_KIND:
            bad("entities_per_kind", f"must be in [2, {MAX_PER_KIND}], got {self.entities_per_kind}")
        if not 2 <= self.values_per_relation <= MAX_VALUES:
            bad("values_per_relation", f"must be in [2, {MAX_VALUES}], got {self.values_per_relation}")
        if not 0 < self.heldout_frac < 1:
            bad("heldout_frac", f"must be in (0, 1), got {self.heldout_frac}")
        for name in ("neg_statement_ratio", "neg_question_ratio", "cot_ratio", "open_book_ratio", "val_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                bad(name, f"must be in [0, 1], got {getattr(self, name)}")
        if self.statement_repeats < 1:
            bad("statement_repeats", f"must be at least 1, got {self.statement_repeats}")
        if self.question_repeats < 0:   # 0: no quizzes at all (the ablation corpus)
            bad("question_repeats", f"must be >= 0, got {self.question_repeats}")
        if self.compare_ratio < 0:
            bad("compare_ratio", f"must be >= 0, got {self.compare_ratio}")
        if not 1 <= self.distractors < self.values_per_relation:
            bad("distractors", f"must be in [1, values_per_relation-1], got {self.distractors}")
        if self.vocab_size < 300:
            bad("vocab_size", f"must be at least 300 (256 bytes + merges), got {self.vocab_size}")


@dataclass(frozen=True)
class Fact:
    subject: str      # "The heron", "Anna"
    relation: str
    value: str
    heldout: bool

    @property
    def id(self) -> str:
        return f"{self.subject}|{self.relation}"

    def wrong_values(self, n_values: int) -> list[str]:
        return [v for v in RELATIONS[self.relation][4][:n_values] if v != self.value]


def make_world(cfg: WorldConfig) -> list[Fact]:
    """All facts of the world; values spread evenly over each relation's value set, and the
    held-out share drawn per relation so every relation is tested."""
    cfg.validate()
    rng = random.Random(f"world-{cfg.seed}")
    by_relation: dict[str, list[tuple[str, str]]] = {}
    for kind, (subject, relations, names) in KINDS.items():
        for name in rng.sample(names, cfg.entities_per_kind):
            for rel in relations:
                by_relation.setdefault(rel, []).append((subject.format(n=name), rel))
    facts = []
    for rel, pairs in by_relation.items():
        values = RELATIONS[rel][4][:cfg.values_per_relation]
        assigned = [values[i % len(values)] for i in range(len(pairs))]
        rng.shuffle(assigned)
        n_held = max(1, round(cfg.heldout_frac * len(pairs)))
        held = set(rng.sample(range(len(pairs)), n_held))
        facts += [Fact(s, r, v, i in held) for i, ((s, r), v) in enumerate(zip(pairs, assigned))]
    return facts


# ---------------------------------------------------------------------------------------------
# Texts of one fact

def stem(fact: Fact, negated: bool = False, contracted: bool = False) -> str:
    plain, full, short, _, _ = RELATIONS[fact.relation]
    return ((short if contracted else full) if negated else plain).format(s=fact.subject)


def statement(fact: Fact, value: str | None = None, negated: bool = False, contracted: bool = False) -> str:
    return f"{stem(fact, negated, contracted)} {value or fact.value}."


def solved_question(fact: Fact, wrong: str, right_first: bool, negated: bool, contracted: bool,
                    cot: bool = False) -> str:
    choices = [fact.value, wrong] if right_first else [wrong, fact.value]
    answer = choices.index(wrong if negated else fact.value)
    block = question_block(stem(fact, negated, contracted), choices)
    if cot and negated:
        return block + cot_answer(answer, stem(fact))
    return block + f" {LETTERS[answer]}"


def comparison(s1: str, s2: str, same: bool, same_first: bool) -> str:
    choices = ["the same", "different"] if same_first else ["different", "the same"]
    answer = choices.index("the same" if same else "different")
    pair = f'Sentence 1: "{s1}"\nSentence 2: "{s2}"\n'
    return pair + question_block(COMPARE_QUESTION, choices) + f" {LETTERS[answer]}"


# ---------------------------------------------------------------------------------------------
# Corpus

def corpus_documents(facts: list[Fact], cfg: WorldConfig, stream: str = "train", scale: float = 1.0) -> list[str]:
    """The documents of the corpus (or, with stream="val" and a small scale, of a validation
    text drawn from the same distribution with another random stream)."""
    rng = random.Random(f"corpus-{cfg.seed}-{stream}")
    nv = cfg.values_per_relation

    def count(x: float) -> int:   # stochastic rounding keeps expected counts exact at any scale
        return int(x) + (rng.random() < x - int(x))

    sentences = []
    for f in facts:
        sentences += [statement(f)] * count(cfg.statement_repeats * scale)
        for _ in range(count(cfg.statement_repeats * cfg.neg_statement_ratio * scale)):
            sentences.append(statement(f, rng.choice(f.wrong_values(nv)), negated=True, contracted=rng.random() < 0.5))
    rng.shuffle(sentences)
    docs = []
    while sentences:
        k = rng.randint(3, 8)
        docs.append(" ".join(sentences[:k]))
        sentences = sentences[k:]

    trained = [f for f in facts if not f.heldout]
    questions = []
    for f in trained:
        for _ in range(count(cfg.question_repeats * scale)):
            negated = rng.random() < cfg.neg_question_ratio
            questions.append((f, solved_question(f, rng.choice(f.wrong_values(nv)), rng.random() < 0.5, negated,
                                                 contracted=rng.random() < 0.5,
                                                 cot=negated and rng.random() < cfg.cot_ratio)))
    rng.shuffle(questions)
    while questions:
        k = rng.randint(1, 4)
        quiz = HEADER + "\n\n" + "\n\n".join(q for _, q in questions[:k])
        if rng.random() < cfg.open_book_ratio:   # reading comprehension: the answers are in the text above
            quiz = " ".join(statement(f) for f, _ in questions[:k]) + "\n\n" + quiz
        docs.append(quiz)
        questions = questions[k:]

    for f in trained:
        for _ in range(count(cfg.compare_ratio * scale)):
            kind = rng.randrange(4)
            plain = statement(f)
            if kind == 0:     # negation -> different (the task-2 case)
                pair, same = (plain, statement(f, negated=True, contracted=rng.random() < 0.5)), False
            elif kind == 1:   # another value -> different
                pair, same = (plain, statement(f, rng.choice(f.wrong_values(nv)))), False
            elif kind == 2:   # identical -> the same
                pair, same = (plain, plain), True
            else:             # full and contracted negation -> the same
                w = rng.choice(f.wrong_values(nv))
                pair, same = (statement(f, w, True, False), statement(f, w, True, True)), True
            if rng.random() < 0.5:
                pair = pair[::-1]
            docs.append(comparison(*pair, same=same, same_first=rng.random() < 0.5))
    rng.shuffle(docs)
    return docs


def corpus_text(docs: list[str]) -> str:
    return "".join(d + EOS for d in docs)


# ---------------------------------------------------------------------------------------------
# Test sets (held-out facts only)

def test_sets(facts: list[Fact], cfg: WorldConfig, heldout: bool = True) -> dict[str, list[dict]]:
    """{"neqa", "task1", "task2"}: item i of each is built from the same fact and distractor.
    Answers alternate A/B (NeQA) before the final shuffle, so they are balanced to within one."""
    rng = random.Random(f"tests-{cfg.seed}-{heldout}")
    pairs = []
    for f in facts:
        if f.heldout == heldout:
            for w in rng.sample(f.wrong_values(cfg.values_per_relation), cfg.distractors):
                pairs.append((f, w))
    rng.shuffle(pairs)
    neqa, task1, task2 = [], [], []
    for i, (f, w) in enumerate(pairs):
        contracted = i % 4 >= 2            # full and contracted negations alternate in pairs
        choices = [f.value, w] if i % 2 else [w, f.value]     # NeQA answer (= w) alternates A, B
        meta = {"source": "tinyworld", "seed": cfg.seed, "fact": f.id, "relation": f.relation,
                "subject": f.subject, "value": f.value, "distractor": w,
                "negation_rule": RELATIONS[f.relation][3], "contracted": contracted}
        neqa.append({"question": stem(f, True, contracted), "choices": choices, "answer": choices.index(w),
                     "metadata": meta})
        task1.append({"question": stem(f), "choices": choices, "answer": choices.index(f.value),
                      "metadata": dict(meta)})
        t2_choices = ["the same", "different"] if i % 2 == 0 else ["different", "the same"]
        task2.append({"sentence1": statement(f), "sentence2": statement(f, negated=True, contracted=contracted),
                      "choices": t2_choices, "answer": t2_choices.index("different"), "metadata": dict(meta)})
    order = list(range(len(pairs)))
    rng.shuffle(order)
    return {name: [items[j] for j in order] for name, items in (("neqa", neqa), ("task1", task1), ("task2", task2))}


# ---------------------------------------------------------------------------------------------
# Tokenizer

def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2 style: spaces and newlines kept) as a PreTrainedTokenizerFast;
    <|endoftext|> is id 0, matching make_model's bos/eos id."""
    fast = byte_bpe(texts, vocab_size, pad_token=EOS, model_max_length=1024)
    for letter in LETTERS:
        if len(fast.encode(" " + letter)) != 1:
            raise UsageError(f"tokenizer: ' {letter}' is not a single token; raise vocab_size")
    return fast


# ---------------------------------------------------------------------------------------------
# Everything on disk

def write_data(out_dir, cfg: WorldConfig, log=print, tokenizer_cfg: WorldConfig | None = None) -> dict:
    """Writes corpus.txt, val.txt, tokenizer/, neqa.jsonl, task1.jsonl, task2.jsonl,
    seen_{neqa,task1,task2}.jsonl (the same items over trained facts, for diagnosis) and world.json.
    `tokenizer_cfg`: train the tokenizer on the corpus of these knobs instead (the ablation corpus
    borrows the base corpus's tokenizer, so both families read the prompts as the same tokens)."""
    out = Path(out_dir)
    facts = make_world(cfg)
    docs = corpus_documents(facts, cfg)
    tok_docs = docs if tokenizer_cfg is None else corpus_documents(make_world(tokenizer_cfg), tokenizer_cfg)
    val_docs = corpus_documents(facts, cfg, stream="val", scale=cfg.val_fraction)
    for name, d in (("corpus.txt", docs), ("val.txt", val_docs)):
        with atomic_open(out / name) as f:
            f.write(corpus_text(d))
    tok = train_tokenizer(tok_docs, cfg.vocab_size)
    with atomic_dir(out / "tokenizer") as tmp:   # a crash never leaves half a tokenizer
        tok.save_pretrained(tmp)
    counts = {}
    for heldout, prefix in ((True, ""), (False, "seen_")):
        for name, items in test_sets(facts, cfg, heldout).items():
            write_jsonl(out / f"{prefix}{name}.jsonl", items)
            counts[prefix + name] = len(items)
    n_tokens = len(tok.backend_tokenizer.encode(corpus_text(docs)).ids)
    info = {"config": asdict(cfg), "tokenizer_config": asdict(tokenizer_cfg or cfg), "n_facts": len(facts), "n_heldout": sum(f.heldout for f in facts),
            "n_documents": len(docs), "corpus_chars": len(corpus_text(docs)), "corpus_tokens": n_tokens,
            "items": counts, "facts": [asdict(f) for f in facts]}
    write_json(out / "world.json", info)
    log(f"{out}: {len(facts)} facts ({info['n_heldout']} held out), {len(docs)} documents, "
        f"{n_tokens} tokens, test items {counts}")
    return info


def add_knobs(ap: argparse.ArgumentParser) -> None:
    """One --option per WorldConfig field, default shown in --help."""
    helps = {"seed": "random seed of world, corpus and test sets",
             "entities_per_kind": f"animals, tools and people each (at most {MAX_PER_KIND})",
             "values_per_relation": f"values each relation can take (at most {MAX_VALUES})",
             "heldout_frac": "share of facts whose questions never appear in the corpus (the test facts)",
             "statement_repeats": "plain statements of each fact in the corpus",
             "neg_statement_ratio": "negated statements per plain statement",
             "question_repeats": "solved corpus questions per trained fact",
             "neg_question_ratio": "share of corpus questions that are negated",
             "cot_ratio": "share of negated corpus questions answered with chain of thought",
             "compare_ratio": "sentence-comparison (task-2 style) exercises per trained fact",
             "open_book_ratio": "share of quizzes preceded by the statements they ask about (teaches "
                                "picking the option that matches a known fact)",
             "distractors": "test items per held-out fact (each with a different wrong value)",
             "val_fraction": "validation text size as a share of the corpus",
             "vocab_size": "byte-level BPE vocabulary size"}
    for f in fields(WorldConfig):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                        help=f"{helps[f.name]} (default: {f.default})")


def config_from_args(args) -> WorldConfig:
    return WorldConfig(**{f.name: getattr(args, f.name) for f in fields(WorldConfig)})


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate the TinyWorld corpus, tokenizer and held-out test sets.")
    ap.add_argument("--output-dir", "--out", dest="out", default="runs/tinyworld/data", help="output folder (default: runs/tinyworld/data)")
    add_knobs(ap)
    args = ap.parse_args(argv)
    write_data(args.out, config_from_args(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
