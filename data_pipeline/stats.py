"""The make-up of a NeQA file, as in the paper's Figure 3: printed tables and one PNG.

Panels: sources (OpenBookQA vs the Negated-LAMA sub-datasets), negation rules of the
OpenBookQA part, Negated-LAMA relations (relation file, "_random" variants folded into their
relation), distractor categories, and answer positions per source.

    python -m data_pipeline.stats [INPUT] [--out results/figures/fig3_neqa_stats.png]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from neqa.figures import save_figure

from neqa.cli import check_outputs, command
from .schema import load_neqa

DEFAULT_OUT = "results/figures/fig3_neqa_stats.png"
SOURCE_NAMES = {"ConceptNet": "ConceptNet", "GoogleRE": "Google-RE", "SQUAD": "SQuAD", "TREx": "T-REx"}
# Wikidata property labels of the T-REx relations, for readable axis labels.
TREX = {"P17": "country", "P19": "place of birth", "P20": "place of death", "P30": "continent", "P31": "instance of",
        "P36": "capital", "P37": "official language", "P39": "position held", "P47": "shares border with",
        "P101": "field of work", "P103": "native language", "P106": "occupation", "P108": "employer",
        "P127": "owned by", "P131": "located in", "P136": "genre", "P138": "named after", "P140": "religion",
        "P159": "headquarters", "P176": "manufacturer", "P178": "developer", "P190": "twinned city",
        "P264": "record label", "P276": "location", "P279": "subclass of", "P361": "part of",
        "P364": "original language", "P407": "language of work", "P413": "position played",
        "P449": "original network", "P463": "member of", "P495": "country of origin", "P527": "has part",
        "P530": "diplomatic relation", "P740": "formed in", "P937": "work location", "P1001": "jurisdiction",
        "P1303": "instrument", "P1376": "capital of", "P1412": "languages spoken"}


def source(item: dict) -> str:
    meta = item.get("metadata") or {}
    if "dataset" in meta:
        return SOURCE_NAMES.get(meta["dataset"], str(meta["dataset"]))
    if "negation_rule" in meta or "id" in meta:
        return "OpenBookQA"
    return "unknown"


def relation(subdataset: str) -> str:
    """'P19_random.jsonl' -> 'P19 place of birth'; 'place_of_birth.jsonl' -> 'place of birth'."""
    name = str(subdataset).removesuffix(".jsonl").removesuffix("_random")
    name = {"Squad": "SQuAD", "ConceptNet": "ConceptNet (all relations)"}.get(name, name)
    return f"{name} {TREX[name]}" if name in TREX else name.replace("_", " ")


def dataset_stats(items: list[dict]) -> dict[str, Counter]:
    lama = [it for it in items if "dataset" in (it.get("metadata") or {})]
    return {
        "sources": Counter(source(it) for it in items),
        "negation rules (OpenBookQA)": Counter(it["metadata"]["negation_rule"] for it in items
                                               if "negation_rule" in (it.get("metadata") or {})),
        "Negated-LAMA relations": Counter(f"{source(it)}: {relation(it['metadata'].get('subdataset', '?'))}"
                                          for it in lama),
        "distractor categories (Negated-LAMA)": Counter(str(it["metadata"].get("category")) for it in lama),
        "answer positions": Counter(f"{source(it)}: {'AB'[it['answer']]}" for it in items),
    }


def format_stats(stats: dict[str, Counter], n: int) -> str:
    lines = [f"{n} items"]
    for title, counts in stats.items():
        total = sum(counts.values())
        lines.append(f"\n{title} ({total} items, {len(counts)} kinds)")
        for key, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {key:<44} {c:5d}  {c / total:6.1%}")
    return "\n".join(lines)


def draw(stats: dict[str, Counter], out, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 10))
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 1, 1.3])

    def pie(ax, counts, name):
        if not sum(counts.values()):   # e.g. a file without metadata: nothing to draw, say so
            ax.text(0.5, 0.5, "no items carry this information", ha="center", va="center", fontsize=9)
            ax.set_axis_off()
            ax.set_title(name, fontsize=10)
            return
        keys = sorted(counts, key=lambda k: -counts[k])
        wedges, _, _ = ax.pie([counts[k] for k in keys], autopct=lambda pct: f"{pct:.0f}%" if pct >= 3 else "",
                              startangle=90, counterclock=False, textprops={"fontsize": 8}, pctdistance=0.75)
        ax.legend(wedges, [f"{k} ({counts[k]})" for k in keys], fontsize=8, loc="center left",
                  bbox_to_anchor=(0.95, 0.5), frameon=False)
        ax.set_title(name, fontsize=10)

    pie(fig.add_subplot(grid[0, 0]), stats["sources"], "sources")
    pie(fig.add_subplot(grid[0, 1]), stats["negation rules (OpenBookQA)"], "negation rules (OpenBookQA part)")
    pie(fig.add_subplot(grid[1, 0]), stats["distractor categories (Negated-LAMA)"],
        "distractor categories (Negated-LAMA)")

    ax = fig.add_subplot(grid[1, 1])
    balance = stats["answer positions"]
    names = sorted({k.rsplit(": ", 1)[0] for k in balance})
    for j, letter in enumerate("AB"):
        vals = [balance.get(f"{s}: {letter}", 0) for s in names]
        ax.bar([i + (j - 0.5) * 0.4 for i in range(len(names))], vals, width=0.4, label=f"answer {letter}")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("items")
    ax.legend(fontsize=8)
    ax.set_title("answer positions per source", fontsize=10)

    ax = fig.add_subplot(grid[:, 2])
    rel = stats["Negated-LAMA relations"]
    keys = sorted(rel, key=lambda k: (-rel[k], k))[::-1]
    ax.barh(range(len(keys)), [rel[k] for k in keys], color="tab:green")
    ax.set_yticks(range(len(keys)), keys, fontsize=6 if len(keys) > 30 else 8)
    ax.set_xlabel("items")
    ax.set_title(f"Negated-LAMA relations ({len(keys)}; _random folded)", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    save_figure(fig, out.parent, out.stem, formats=("png",), dpi=110, bbox=None)


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_pipeline.stats", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", default="data_pipeline/neqa.jsonl",
                    help="NeQA-format file (default data_pipeline/neqa.jsonl)")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"PNG to draw (default {DEFAULT_OUT}); '' for none")
    args = ap.parse_args(argv)
    if args.out:
        check_outputs([args.out], [args.input])
    items = load_neqa(args.input)
    stats = dataset_stats(items)
    print(format_stats(stats, len(items)))
    if args.out:
        draw(stats, args.out, f"make-up of {Path(args.input).name} ({len(items)} items)")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
