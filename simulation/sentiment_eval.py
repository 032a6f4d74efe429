"""Figure 6: evaluate the sentiment grid (size × negation ratio) on held-out reviews.

For each review the model reads "<review> This does suggest that it is" and "<review> This does not
suggest that it is" and compares P(" good") with P(" bad"):
  task 1 (sentiment)   the affirmative verdict matches the label;
  task 2 (negation)    the negated verdict differs from the model's own affirmative verdict;
  NeQA                 the negated verdict is right (the opposite word of the label).
Per item NeQA = (task1 and task2) or (not task1 and not task2), the composition of Figure 5.

    python -m simulation.sentiment_eval --runs runs/sentiment --out-dir results/figures
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from neqa.cli import command
from neqa.device import resolve_device
from neqa.figures import save_figure
from neqa.io import DataError, write_csv
from simulation import sentiment

FIG_NAME = "fig6_negation_ratio"
METRICS = ("task1", "task2", "neqa")
TITLES = {"task1": "Task 1: sentiment", "task2": "Task 2: negation understanding", "neqa": "NeQA: negated verdict"}


@torch.no_grad()
def next_word_logprobs(model, tokenizer, prompts: list[str], words=(" bad", " good"), batch_size: int = 64,
                       device=None) -> np.ndarray:
    """log P(word | prompt) for each prompt and each single-token word: array [len(prompts), len(words)]."""
    word_ids = []
    for w in words:
        ids = tokenizer(w, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"{w!r} is {len(ids)} tokens for this tokenizer; one is needed")
        word_ids.append(ids[0])
    device = device or next(model.parameters()).device
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    for i in range(0, len(prompts), batch_size):
        encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[i:i + batch_size]]
        longest = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), longest), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, e in enumerate(encoded):     # right padding: positions stay 0..len-1
            ids[j, :len(e)] = torch.tensor(e)
            mask[j, :len(e)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        last = logits[torch.arange(len(encoded)), torch.tensor([len(e) - 1 for e in encoded])]
        out.append(torch.log_softmax(last, dim=-1)[:, word_ids].cpu().numpy())
    return np.concatenate(out)


def accuracies(affirmative_lp, negated_lp, labels) -> dict[str, float]:
    """Task-1, task-2 and NeQA accuracy from [n, 2] log-probabilities of (bad, good)."""
    aff = np.argmax(np.asarray(affirmative_lp), axis=1)
    neg = np.argmax(np.asarray(negated_lp), axis=1)
    labels = np.asarray(labels)
    return {"task1": float(np.mean(aff == labels)), "task2": float(np.mean(neg != aff)),
            "neqa": float(np.mean(neg == 1 - labels))}


def prompts_for(test: list[dict], tokenizer, verdict_prefix: str) -> list[str]:
    start = tokenizer.eos_token or ""   # training texts follow an end-of-text token
    return [f"{start}{r['text']} {verdict_prefix}" for r in test]


def evaluate_run(folder, test: list[dict], device=None) -> dict[str, float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    device = device or torch.device(resolve_device("auto"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).to(device)
    labels = [r["label"] for r in test]
    aff = next_word_logprobs(model, tokenizer, prompts_for(test, tokenizer, sentiment.AFFIRMATIVE), device=device)
    neg = next_word_logprobs(model, tokenizer, prompts_for(test, tokenizer, sentiment.NEGATED), device=device)
    return accuracies(aff, neg, labels)


def find_runs(root) -> list[dict]:
    """Finished runs under root: folders with run.json and a final/ model."""
    runs = []
    for meta_path in sorted(Path(root).glob("*/run.json")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(meta_path, e.lineno, None, f"malformed JSON ({e.msg})") from None
        for field in ("size", "ratio", "init"):
            if field not in meta:
                raise DataError(meta_path, None, field, "missing")
        if (meta_path.parent / "final" / "config.json").exists():
            runs.append({**meta, "folder": meta_path.parent})
    return runs


def heatmaps(rows: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = sorted({(r["init"], r["size"], r["non_embedding_params"]) for r in rows}, key=lambda s: s[2])
    ratios = sorted({r["ratio"] for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.55 * len(sizes) + 2.2))
    for ax, metric in zip(axes, METRICS):
        grid = np.full((len(sizes), len(ratios)), np.nan)
        for r in rows:
            grid[sizes.index((r["init"], r["size"], r["non_embedding_params"])), ratios.index(r["ratio"])] = r[metric]
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", origin="lower", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
        ax.set_yticks(range(len(sizes)), [f"{'gpt2' if i == 'pretrained' else 's' + str(s)} ({n / 1e3:.0f}k)"
                                          for i, s, n in sizes] if ax is axes[0] else [])
        ax.set_xlabel("negation ratio")
        ax.set_title(TITLES[metric], fontsize=10)
    axes[0].set_ylabel("model (non-embedding params)")
    fig.colorbar(im, ax=axes, fraction=0.02, label="accuracy")
    return save_figure(fig, out_dir, FIG_NAME)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", type=Path, default=Path("runs/sentiment"), help="folder of trained runs")
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, default=Path("results/figures"))
    p.add_argument("--csv", type=Path, help="where the numbers go (default OUT_DIR/fig6_negation_ratio.csv)")
    p.add_argument("--n-test", type=int, default=200, help="held-out reviews")
    p.add_argument("--source", choices=["generated", "sst2", "auto"], default="generated",
                   help="must match the training source")
    p.add_argument("--n-train", type=int, default=4000, help="training reviews (to keep test reviews disjoint)")
    p.add_argument("--seed", type=int, default=0)
    return p


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()   # one bar per model load/save is noise here
    try:
        runs = find_runs(args.runs)
        if not runs:
            raise DataError(args.runs, None, None, "no finished runs (run.json and final/) found")
        _, test, source = sentiment.reviews(args.source, args.n_train, args.n_test, seed=args.seed)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    from tqdm import tqdm
    for run in tqdm(runs, desc="evaluating", unit="model"):
        acc = evaluate_run(run["folder"] / "final", test)
        rows.append({"init": run["init"], "size": run["size"], "shape": run.get("shape"),
                     "non_embedding_params": run.get("non_embedding_params"), "ratio": run["ratio"],
                     "source": source, "n_test": len(test), **acc, "run": run["folder"].name})
    rows.sort(key=lambda r: (r["non_embedding_params"] or 0, r["ratio"]))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.csv or args.out_dir / f"{FIG_NAME}.csv"
    write_csv(csv_path, rows)
    for r in rows:
        print(f"{r['run']:>14}  task1 {r['task1']:.3f}  task2 {r['task2']:.3f}  neqa {r['neqa']:.3f}")
    for p in [csv_path] + heatmaps(rows, args.out_dir):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
