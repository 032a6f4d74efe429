"""Task-1 and task-2 variants of a NeQA-format file (the paper's Figure 4).

Task 1 (question answering): the question without its negation, the answer flipped. For an
OpenBookQA item whose id is known the original stem and its right answer are used; otherwise
`negation.remove_negation` undoes the negation. Items with no negation to remove (e.g. the
gold/un-in- items, whose question is the original stem) have no task-1 version.

Task 2 (negation understanding): is "{plain question} {answer}." the same as "{negated
question} {answer}."? Questions are normalised first (the trailing " ___ ?" blank removed,
no space before a final "?"), as in the release's neqa_100_normalized*.jsonl. The right
choice is always "different"; the order of the two choices swaps on every other item.

    python -m data_pipeline.variants data_pipeline/neqa.jsonl          # -> neqa_task1/_task2.jsonl beside it
    python -m data_pipeline.variants data_pipeline/neqa_100_normalized.jsonl \\
        --plain data_pipeline/neqa_100_normalized_nonnegated.jsonl --name neqa_100   # published task-1 pairs
    python -m data_pipeline.variants data_pipeline/neqa_100.jsonl --out-dir runs/data \\
        --compare data_pipeline/neqa_100_nonnegated.jsonl               # agreement with the release
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from neqa.io import DataError, write_jsonl

from neqa.cli import check_outputs, command
from .schema import load_neqa

SAME, DIFFERENT = "the same", "different"


def strip_blank(question: str) -> str:
    """Drop a trailing blank (" ___ ?", "___?") and any space before a final "?"."""
    q = re.sub(r"\s*___\s*\?$", "", question.strip())
    return re.sub(r"\s+\?$", "?", q)


def _remove_negation(question: str) -> str | None:
    from .negation import remove_negation
    return remove_negation(question)


def task1_item(item: dict, originals: dict | None = None, remove=None) -> dict | None:
    """The item without its negation and with the answer flipped, or None when there is no
    negation to remove. `originals` maps OpenBookQA id -> source record."""
    meta = dict(item.get("metadata") or {})
    original = (originals or {}).get(meta.get("id")) if "id" in meta else None
    if original is not None:
        stem = original["question"]["stem"]
        labels = [c["label"] for c in original["question"]["choices"]]
        right = original["question"]["choices"][labels.index(original["answerKey"])]["text"]
        if stem.strip() == item["question"].strip() or right not in item["choices"]:
            return None
        return {"question": stem, "choices": list(item["choices"]), "answer": item["choices"].index(right),
                "metadata": {**meta, "task1_from": "original_stem"}}
    plain = (remove or _remove_negation)(item["question"])
    if plain is None or plain.strip() == item["question"].strip():
        return None
    return {"question": plain, "choices": list(item["choices"]), "answer": 1 - item["answer"],
            "metadata": {**meta, "task1_from": "remove_negation"}}


def task1_items(items: list[dict], originals: dict | None = None, remove=None) -> list[dict | None]:
    """One entry per input item, None where no negation could be removed (aligned with `items`)."""
    return [task1_item(it, originals, remove) for it in items]


def task2_items(items: list[dict], plain: list[dict | None] | None = None, originals: dict | None = None,
                remove=None) -> list[dict]:
    """Sentence pairs from negated items and their task-1 versions (`plain`, aligned with `items`;
    computed with task1_item when not given). Items without a plain version are skipped."""
    if plain is None:
        plain = task1_items(items, originals, remove)
    if len(plain) != len(items):
        raise ValueError(f"{len(items)} negated items but {len(plain)} plain ones")
    out = []
    for i, (neg, pl) in enumerate(zip(items, plain)):
        if pl is None:
            continue
        answer = pl["choices"][pl["answer"]]
        choices = [SAME, DIFFERENT] if len(out) % 2 == 0 else [DIFFERENT, SAME]
        out.append({"sentence1": f"{strip_blank(pl['question'])} {answer}.",
                    "sentence2": f"{strip_blank(neg['question'])} {answer}.",
                    "choices": choices, "answer": choices.index(DIFFERENT),
                    "metadata": {**(neg.get("metadata") or {}), "source_index": i}})
    return out


def agreement(ours: list[dict | None], reference: list[dict]) -> dict:
    """How often our task-1 items equal a reference aligned with them: question (exactly and
    after `strip_blank`) and answer. A missing item (None) counts as a disagreement."""
    if len(ours) != len(reference):
        raise ValueError(f"{len(ours)} items but {len(reference)} in the reference")
    n = len(reference)
    exact = norm = answer = 0
    misses = []
    for i, (a, b) in enumerate(zip(ours, reference)):
        if a is None:
            misses.append((i, None, b["question"]))
            continue
        exact += a["question"] == b["question"]
        same = strip_blank(a["question"]) == strip_blank(b["question"])
        norm += same
        answer += a["choices"][a["answer"]] == b["choices"][b["answer"]]
        if not same:
            misses.append((i, a["question"], b["question"]))
    return {"n": n, "missing": sum(a is None for a in ours), "question_exact": exact / n if n else 0.0,
            "question_normalised": norm / n if n else 0.0, "answer": answer / n if n else 0.0,
            "disagreements": misses}


def format_agreement(stats: dict, name: str) -> str:
    lines = [f"task-1 agreement with {name}: n={stats['n']}, no task-1 item {stats['missing']}, "
             f"question exact {stats['question_exact']:.1%}, normalised {stats['question_normalised']:.1%}, "
             f"answer {stats['answer']:.1%}"]
    for i, ours, ref in stats["disagreements"]:
        lines.append(f"  line {i + 1}: ours {ours!r}  published {ref!r}")
    return "\n".join(lines)


def write_variants(items: list[dict], out_dir, name: str, originals: dict | None = None,
                   plain: list[dict | None] | None = None) -> list[str]:
    """Write out_dir/{name}_task1.jsonl (unless `plain` is given) and {name}_task2.jsonl; return report lines."""
    out_dir = Path(out_dir)
    lines = []
    if plain is None:
        plain = task1_items(items, originals)
        t1 = [{**p, "metadata": {**p["metadata"], "source_index": i}} for i, p in enumerate(plain) if p is not None]
        write_jsonl(out_dir / f"{name}_task1.jsonl", t1)
        lines.append(f"wrote {len(t1)} task-1 items to {out_dir / f'{name}_task1.jsonl'} "
                     f"({len(items) - len(t1)} of {len(items)} had no negation to remove)")
    t2 = task2_items(items, plain)
    write_jsonl(out_dir / f"{name}_task2.jsonl", t2)
    lines.append(f"wrote {len(t2)} task-2 pairs to {out_dir / f'{name}_task2.jsonl'}")
    return lines


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_pipeline.variants", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="NeQA-format JSONL file (negated questions)")
    ap.add_argument("--output-dir", "--out-dir", dest="out_dir", help="output folder (default: the input's folder)")
    ap.add_argument("--name", help="output file prefix (default: the input's name without .jsonl)")
    ap.add_argument("--plain", metavar="FILE",
                    help="use this task-1 file (aligned line by line with INPUT) instead of removing negations; "
                         "only task 2 is written")
    ap.add_argument("--compare", metavar="FILE", help="report task-1 agreement with a published aligned task-1 file")
    ap.add_argument("--no-originals", action="store_true",
                    help="do not use the OpenBookQA original stems; always remove the negation by rule")
    args = ap.parse_args(argv)
    inp = Path(args.input)
    out_dir = Path(args.out_dir) if args.out_dir else inp.parent
    name = args.name or inp.name.removesuffix(".jsonl")
    outputs = ([] if args.plain else [out_dir / f"{name}_task1.jsonl"]) + [out_dir / f"{name}_task2.jsonl"]
    check_outputs(outputs, [args.input, args.plain, args.compare])
    # every input is read and checked before any output is written
    items = load_neqa(args.input)
    originals = None
    if not args.no_originals:
        from .sources import load_openbookqa
        originals = {r["id"]: r for r in load_openbookqa("all")}
    plain = None
    if args.plain:
        plain = load_neqa(args.plain)
        if len(plain) != len(items):
            raise DataError(args.plain, None, None, f"{len(plain)} items, but {args.input} has {len(items)}")
    ref = load_neqa(args.compare) if args.compare else None
    if ref is not None and len(ref) != len(items):
        raise DataError(args.compare, None, None, f"{len(ref)} items, but {args.input} has {len(items)}")
    for line in write_variants(items, out_dir, name, originals=originals, plain=plain):
        print(line)
    if ref is not None:
        ours = plain if plain is not None else task1_items(items, originals)
        print(format_agreement(agreement(ours, ref), args.compare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
