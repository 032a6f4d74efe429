"""Negate OpenBookQA stems with the NeQA rules.

    python -m data_pipeline.negate data_pipeline/sources/openbookqa/train.jsonl runs/negated_train.jsonl

Reads OpenBookQA-format JSONL (id, question.stem, question.choices, answerKey) and writes one line per
input item: {"id", "rule", "question", "parser"}; rule is null (and question null) when no rule fits.
Within each rule the full and contracted forms alternate from one item to the next ("is not",
"isn't", "is not", ...), and the two prompt prefixes alternate likewise, as in the release.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from tqdm import tqdm

from neqa.io import UsageError, read_jsonl, write_jsonl

from neqa.cli import check_outputs, command
from .negation import RULES, negate_stem, set_parser
from .schema import check_obqa


def negate_items(items: list[dict], parser: str) -> list[dict]:
    """One output record per item; contraction and prompt variant alternate within each rule."""
    seen: Counter = Counter()
    out = []
    for item in tqdm(items, desc="negating", unit="stem", disable=len(items) < 200, file=sys.stderr):
        stem = item["question"]["stem"]
        rule = negate_stem(stem).rule
        k = seen[rule]
        seen[rule] += 1
        neg = negate_stem(stem, contract=k % 2 == 1, prompt_variant=k % 2) if rule else None
        out.append({"id": item["id"], "rule": rule, "question": neg.question if neg else None, "parser": parser})
    return out


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="OpenBookQA-format JSONL")
    ap.add_argument("output", help="where to write the negated stems (JSONL, written atomically)")
    ap.add_argument("--parser", choices=("auto", "spacy", "fallback"), default="auto",
                    help="root-verb finder for the not/do rule: spaCy's parser (needs spacy and "
                         "en_core_web_sm), the lemminflect fallback, or auto = spaCy when installed")
    args = ap.parse_args(argv)
    check_outputs([args.output], [args.input])
    try:
        parser = set_parser(args.parser)
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    items = read_jsonl(args.input, check_obqa)
    records = negate_items(items, parser)
    write_jsonl(args.output, records)
    counts = Counter(r["rule"] for r in records)
    for rule in RULES + (None,):
        print(f"{rule or 'no rule':<14}{counts.get(rule, 0):>6}")
    print(f"{'total':<14}{len(records):>6}")
    print(f"parser: {parser}; wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
