"""Rebuild NeQA from its sources: OpenBookQA stems negated by rule, plus Negated-LAMA.

    python -m data_pipeline.build [--out FILE] [--seed N] [--check data_pipeline/neqa.jsonl] [--hub]

OpenBookQA items are visited in a seeded random order and taken per negation rule until
each rule's quota is met (QUOTAS: the release's make-up, with its 10 hand-made
"manual/un-in-" items replaced by rule-made gold/un-in- ones). Each item keeps two choices:
the original right answer and one wrong answer drawn at random. Under a negation (not/*,
prompt) the right answer becomes the wrong one; a gold/un-in- stem is left as it is and its
original answer stays right. Answer positions are balanced exactly within every rule and
within Negated-LAMA, and contracted/full forms alternate within a rule.

The same seed gives a byte-identical file. Beside the output it writes the task-1 and task-2
variants of the rebuilt file (see variants.py); the published file's variants are made with
`python -m data_pipeline.variants data_pipeline/neqa.jsonl`.
"""
from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from neqa.io import UsageError, write_jsonl

from neqa.cli import check_outputs, command
from .sources import load_negated_lama, load_openbookqa

QUOTAS = {"not/be": 100, "not/because": 100, "not/do": 100, "not/modal": 100, "prompt": 50, "gold/un-in-": 50}
NEGATED_RULES = ("not/be", "not/because", "not/do", "not/modal", "prompt")  # right answer flips under these
DEFAULT_OUT = "runs/data/neqa_rebuilt.jsonl"


class BuildError(UsageError):
    """The sources cannot fill the requested make-up."""


def balanced_positions(n: int, rng: random.Random) -> list[int]:
    """n answer positions, exactly half 0 and half 1 (one extra, drawn at random, when n is odd)."""
    half = [0, 1] * (n // 2)
    if n % 2:
        half.append(rng.randrange(2))
    rng.shuffle(half)
    return half


def tidy_lama_stem(stem: str) -> str:
    """The release's clean-up of the Negated-LAMA stems: no double spaces, no space before the
    final '?', and "X has not Y" / "X have not Y" written "X does not have Y" / "X do not have Y".
    (With it, all 1,218 vendored stems equal the published questions.)"""
    s = " ".join(stem.split())
    s = re.sub(r"\s+\?$", "?", s)
    s = re.sub(r"\bhas not\b", "does not have", s)
    return re.sub(r"\bhave not\b", "do not have", s)


def place(right: str, other: str, position: int) -> list[str]:
    """Two choices with `right` at `position`."""
    return [right, other] if position == 0 else [other, right]


def obqa_item(record: dict, rule: str, question: str, wrong_index: int, position: int) -> dict:
    """A NeQA item from an OpenBookQA record. `wrong_index` picks the distractor among the wrong
    choices; `position` is where the answer (right under the negation) goes."""
    texts = [c["text"] for c in record["question"]["choices"]]
    labels = [c["label"] for c in record["question"]["choices"]]
    right = texts[labels.index(record["answerKey"])]
    wrongs = [t for i, t in enumerate(texts) if labels[i] != record["answerKey"]]
    wrong = wrongs[wrong_index % len(wrongs)]
    answer_text, other = (wrong, right) if rule in NEGATED_RULES else (right, wrong)
    return {"question": question, "choices": place(answer_text, other, position), "answer": position,
            "metadata": {"id": record["id"], "split": record.get("split"), "negation_rule": rule}}


def lama_item(record: dict, position: int) -> dict:
    texts = [c["text"] for c in record["question"]["choices"]]
    labels = [c["label"] for c in record["question"]["choices"]]
    right = labels.index(record["answerKey"])
    return {"question": tidy_lama_stem(record["question"]["stem"]),
            "choices": place(texts[right], texts[1 - right], position), "answer": position,
            "metadata": dict(record["metadata"])}


def select(obqa: list[dict], quotas: dict, rng: random.Random, negate, progress: bool = False,
           strict: bool = False) -> dict[str, list[dict]]:
    """Records per rule, in a seeded random order, until every quota is met. A rule with fewer
    stems than its quota gets all of them (a warning; BuildError when `strict`): the rules find
    only 40 gold/un-in- stems in OpenBookQA, where the release adds 10 hand-made ones."""
    order = list(range(len(obqa)))
    rng.shuffle(order)
    picked: dict[str, list[dict]] = {rule: [] for rule in quotas}
    need = sum(quotas.values())
    bar = tqdm(order, desc="negating OpenBookQA stems", unit="stem", disable=not progress, leave=False)
    for i in bar:
        if need == 0:
            break
        rule = negate(obqa[i]["question"]["stem"]).rule
        if rule in picked and len(picked[rule]) < quotas[rule]:
            picked[rule].append(obqa[i])
            need -= 1
    bar.close()
    short = {r: f"{len(picked[r])}/{q}" for r, q in quotas.items() if len(picked[r]) < q}
    if short and strict:
        raise BuildError(f"not enough OpenBookQA stems for rule(s) {short} among {len(obqa)} items")
    if short:
        print(f"[build] warning: too few OpenBookQA stems for rule(s) {short} among {len(obqa)} items; "
              "all of them were taken", file=sys.stderr)
    return picked


def build(obqa: list[dict], lama: list[dict], seed: int = 0, quotas: dict | None = None,
          negate=None, progress: bool = False, strict: bool = False) -> list[dict]:
    """The NeQA items: OpenBookQA per rule (in QUOTAS order), then Negated-LAMA in file order."""
    if negate is None:
        from .negation import negate_stem as negate
    quotas = QUOTAS if quotas is None else quotas
    rng = random.Random(seed)
    items = []
    for rule, records in select(obqa, quotas, rng, negate, progress, strict).items():
        positions = balanced_positions(len(records), rng)
        for k, record in enumerate(records):
            neg = negate(record["question"]["stem"], contract=k % 2 == 1, prompt_variant=k % 2)
            if neg.rule != rule or neg.question is None:
                raise BuildError(f"negation of OpenBookQA {record['id']} changed rule with contraction: "
                                 f"{rule} -> {neg.rule}")
            n_wrong = len(record["question"]["choices"]) - 1
            items.append(obqa_item(record, rule, neg.question, rng.randrange(n_wrong), positions[k]))
    positions = balanced_positions(len(lama), rng)
    items += [lama_item(r, p) for r, p in zip(lama, positions)]
    return items


def makeup(items: list[dict]) -> Counter:
    return Counter(it["metadata"].get("negation_rule") or f"lama:{it['metadata'].get('dataset')}" for it in items)


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_pipeline.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output NeQA file (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0, help="random seed: item choice, distractor, positions (default 0)")
    ap.add_argument("--check", metavar="REFERENCE",
                    help="compare the negation rules with a published NeQA file (e.g. data_pipeline/neqa.jsonl)")
    ap.add_argument("--hub", action="store_true", help="load OpenBookQA from the Hugging Face hub when reachable")
    ap.add_argument("--no-variants", action="store_true", help="do not write the task-1/task-2 variants of the output")
    ap.add_argument("--strict", action="store_true", help="fail when a rule cannot fill its quota")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    out = Path(args.out)
    check_outputs([out] + ([] if args.no_variants else [out.parent / f"{out.stem}_task{t}.jsonl" for t in (1, 2)]),
                  [args.check])
    obqa = load_openbookqa("all", prefer_hub=args.hub)
    lama = load_negated_lama()
    report = None
    if args.check:   # every input is read and checked before any output is written
        from .check import check_against_reference, format_report
        report = format_report(check_against_reference(args.check, {r["id"]: r for r in obqa}))
    items = build(obqa, lama, seed=args.seed, progress=not args.quiet, strict=args.strict)
    write_jsonl(out, items)
    counts = makeup(items)
    print(f"wrote {len(items)} items to {out} (seed {args.seed})")
    for k, n in counts.items():
        print(f"  {k:<16} {n:5d}")
    print(f"  answer positions: {Counter(it['answer'] for it in items)[0]} x 0, "
          f"{Counter(it['answer'] for it in items)[1]} x 1")
    if not args.no_variants:
        from .variants import write_variants
        by_id = {r["id"]: r for r in obqa}
        for line in write_variants(items, out.parent, out.stem, originals=by_id):
            print(line)
    if report:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
