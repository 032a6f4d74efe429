"""Figure 6: score the fine-tuned grid (model × negation ratio × seed) on held-out reviews.

Each model reads "<review> This does suggest that it is" and "<review> This does not suggest that it is"
(no start token, as the paper's eval.py) and is read two ways:
  greedy  (the paper's reading) the most likely next token over the whole vocabulary must be the word:
          task 1 = affirmative prompt → the label's word; NeQA = negated prompt → the other word (the paper's
          "negated accuracy"); task 2 = the two answers are good and bad, one each (the model flips).
  pair    P(" good") against P(" bad") only: the same three, each prompt forced to one of the two words.
Per ratio, the trend along size is labelled for every seed (eval_pipeline.trends.classify_trend with the
binomial noise of the test reviews) and reported only when all seeds agree; otherwise "unclear".

    python -m simulation.sentiment_eval --runs runs/sentiment --out-dir runs/sentiment/figures
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from neqa.cli import command, device, positive_int
from neqa.figures import save_figure
from neqa.io import DataError, read_json, write_csv, write_json
from simulation import sentiment

FIG_NAME = "fig6_negation_ratio"
METRICS = ("task1", "neqa", "task2")
READINGS = ("greedy", "pair")
TITLES = {"task1": "Task 1: sentiment (affirmative suffix)", "neqa": "Negated suffix (NeQA)",
          "task2": "Task 2: the answer flips under negation"}
READING_NAMES = {"greedy": "greedy next word (paper)", "pair": "P(good) vs P(bad)"}


@torch.no_grad()
def last_logprobs(model, tokenizer, prompts: list[str], batch_size: int = 64, device=None) -> torch.Tensor:
    """log-softmax of the next-token logits after each prompt: [len(prompts), vocab] (float32, on the CPU)."""
    device = device or next(model.parameters()).device
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    for i in range(0, len(prompts), batch_size):
        encoded = tokenizer(prompts[i:i + batch_size], add_special_tokens=False)["input_ids"]
        longest = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), longest), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, e in enumerate(encoded):     # right padding: positions stay 0..len-1
            ids[j, :len(e)] = torch.tensor(e)
            mask[j, :len(e)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        last = logits[torch.arange(len(encoded)), torch.tensor([len(e) - 1 for e in encoded])]
        out.append(torch.log_softmax(last.float(), dim=-1).cpu())
    return torch.cat(out)


def word_ids(tokenizer, words=sentiment.WORDS) -> list[int]:
    """The single token of " bad" and " good" (a leading space, as they follow "it is")."""
    ids = []
    for w in words:
        enc = tokenizer(" " + w, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise ValueError(f"' {w}' is {len(enc)} tokens for this tokenizer; one is needed")
        ids.append(enc[0])
    return ids


def readings(affirmative: np.ndarray, negated: np.ndarray, labels, words: list[int]) -> dict[str, float]:
    """Both readings from next-token log-probabilities [n, vocab] after the two prompts. words = [bad, good] ids.
    Keys: greedy_task1, greedy_neqa, greedy_task2, greedy_verdict_rate (answers that are good or bad), pair_*."""
    aff, neg, labels = np.asarray(affirmative), np.asarray(negated), np.asarray(labels)
    bad, good = words
    right, other = np.where(labels == 1, good, bad), np.where(labels == 1, bad, good)
    top_a, top_n = aff.argmax(axis=1), neg.argmax(axis=1)
    is_word = lambda t: (t == good) | (t == bad)   # noqa: E731
    pair_a = (aff[:, good] > aff[:, bad]).astype(int)      # 1: good
    pair_n = (neg[:, good] > neg[:, bad]).astype(int)
    return {"greedy_task1": float(np.mean(top_a == right)), "greedy_neqa": float(np.mean(top_n == other)),
            "greedy_task2": float(np.mean(is_word(top_a) & is_word(top_n) & (top_a != top_n))),
            "greedy_verdict_rate": float(np.mean(is_word(top_a) & is_word(top_n))),
            "pair_task1": float(np.mean(pair_a == labels)), "pair_neqa": float(np.mean(pair_n == 1 - labels)),
            "pair_task2": float(np.mean(pair_a != pair_n))}


def evaluate_run(folder, test: list[dict], device="auto") -> dict[str, float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from neqa.device import resolve_device
    device = torch.device(resolve_device(device))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).to(device)
    texts = [r["text"] for r in test]
    aff = last_logprobs(model, tokenizer, [f"{t} {sentiment.AFFIRMATIVE}" for t in texts], device=device)
    neg = last_logprobs(model, tokenizer, [f"{t} {sentiment.NEGATED}" for t in texts], device=device)
    return readings(aff.numpy(), neg.numpy(), [r["label"] for r in test], word_ids(tokenizer))


def evaluate_job(job: dict) -> dict[str, float]:
    return evaluate_run(job["folder"], job["test"], job["device"])


def find_runs(root) -> list[dict]:
    """Finished fine-tuning runs: ROOT/finetuned/*/ with run.json and a final/ model."""
    runs = []
    for meta_path in sorted(Path(root).glob("finetuned/*/run.json")):
        meta = read_json(meta_path)
        for field in ("model", "ratio", "seed", "non_embedding_params"):
            if field not in meta:
                raise DataError(meta_path, None, field, "missing")
        if (meta_path.parent / "final" / "config.json").exists():
            runs.append({**meta, "folder": meta_path.parent})
    return runs


# ------------------------------------------------------------------------------------------- seeds → trend

def seed_trend(x, curves, n_items: int, **kwargs) -> dict:
    """A trend label for one ratio from several seeds' curves along size: each seed's curve is labelled by
    classify_trend (its binomial noise over n_items test reviews); the label stands only when every seed
    gives it, else "unclear". Returns label, the per-seed labels and the mean curve's label."""
    from eval_pipeline.trends import classify_trend
    curves = np.asarray(curves, dtype=float)
    fits = [classify_trend(x, c, n_items=n_items, **kwargs) for c in curves]
    labels = [f.label for f in fits]
    mean_label = classify_trend(x, curves.mean(axis=0), n_items=n_items * len(curves), **kwargs).label
    return {"label": labels[0] if len(set(labels)) == 1 else "unclear", "seed_labels": "/".join(labels),
            "mean_curve_label": mean_label, "n_seeds": len(curves),
            "at_chance": all(f.at_chance for f in fits)}   # every point of every seed within chance's 95% band


def aggregate(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per-seed rows → (per-cell mean/sd rows, per-ratio trend rows)."""
    import pandas as pd
    df = pd.DataFrame(rows)
    keys = [f"{r}_{m}" for r in READINGS for m in METRICS] + ["greedy_verdict_rate"]
    cells = []
    for (model, n, ratio), g in df.groupby(["model", "non_embedding_params", "ratio"], sort=False):
        cell = {"model": model, "non_embedding_params": int(n), "ratio": ratio, "n_seeds": len(g),
                "n_test": int(g["n_test"].iloc[0])}
        for k in keys:
            cell[f"{k}_mean"], cell[f"{k}_sd"] = float(g[k].mean()), float(g[k].std(ddof=1)) if len(g) > 1 else 0.0
        cells.append(cell)
    cells.sort(key=lambda c: (c["ratio"], c["non_embedding_params"]))
    trends = []
    sizes = sorted(df["non_embedding_params"].unique())
    for ratio, g in df.groupby("ratio"):
        wide = g.pivot_table(index="seed", columns="non_embedding_params", aggfunc="first",
                             values=[f"{r}_{m}" for r in READINGS for m in METRICS])
        complete = wide.dropna()
        for reading in READINGS:
            for metric in METRICS:
                row = {"ratio": ratio, "reading": reading, "metric": metric}
                if len(sizes) < 3 or complete.empty:
                    row.update(label="too few points", seed_labels="", mean_curve_label="", n_seeds=len(complete),
                               at_chance=None)
                else:
                    curves = complete[f"{reading}_{metric}"][sizes].to_numpy()
                    row.update(seed_trend(sizes, curves, int(g["n_test"].iloc[0])))
                trends.append(row)
    return cells, trends


# ------------------------------------------------------------------------------------------- figure

def figure(cells: list[dict], trends: list[dict], out_dir: Path) -> list[Path]:
    """The paper's Figure 6 as curves: accuracy against size, one line per ratio (mean ± sd over seeds);
    top row greedy (the paper's reading), bottom row P(good) vs P(bad); the legend gives each trend label."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ratios = sorted({c["ratio"] for c in cells})
    label_of = {(t["ratio"], t["reading"], t["metric"]): t["label"] for t in trends}
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(ratios)))
    fig, axes = plt.subplots(len(READINGS), len(METRICS), figsize=(14, 8), sharex=True, sharey=True, squeeze=False)
    for i, reading in enumerate(READINGS):
        for j, metric in enumerate(METRICS):
            ax = axes[i, j]
            for ratio, color in zip(ratios, colors):
                cs = [c for c in cells if c["ratio"] == ratio]
                x = [c["non_embedding_params"] for c in cs]
                ax.errorbar(x, [c[f"{reading}_{metric}_mean"] for c in cs], yerr=[c[f"{reading}_{metric}_sd"] for c in cs],
                            marker="o", ms=4, capsize=3, color=color,
                            label=f"r={ratio:g}: {label_of.get((ratio, reading, metric), '')}")
            ax.axhline(0.5, color="grey", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{TITLES[metric]}\n{READING_NAMES[reading]}", fontsize=9)
            ax.legend(fontsize=7, loc="best")
            if i == len(READINGS) - 1:
                ax.set_xlabel("non-embedding parameters")
            if j == 0:
                ax.set_ylabel("accuracy (mean ± sd over seeds)")
    n_seeds, n_test = cells[0]["n_seeds"], cells[0]["n_test"]
    fig.suptitle(f"Figure 6: fine-tuned with a fraction r of negated verdicts ({n_seeds} seeds, {n_test} test reviews)")
    fig.tight_layout()
    return save_figure(fig, out_dir, FIG_NAME)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", type=Path, default=Path("runs/sentiment"), help="the grid's folder (settings.json, finetuned/)")
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path,
                   help="where the CSVs and the figure go (default RUNS/figures)")
    p.add_argument("--n-test", type=positive_int,
                   help="held-out reviews (default: generated 200; SST-2 all 872 of its validation split)")
    p.add_argument("--jobs", type=positive_int, default=1, help="evaluation processes (one thread each on CPU)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads per process")
    p.add_argument("--device", default="auto", type=device, help="auto | cpu | cuda | cuda:N")
    return p


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging
    from simulation.sentiment_train import run_jobs
    hf_logging.disable_progress_bar()
    settings_path = args.runs / "settings.json"
    if not settings_path.exists():
        raise DataError(settings_path, None, None, "missing: train the grid first (python -m simulation.sentiment_train)")
    settings = read_json(settings_path)
    runs = find_runs(args.runs)
    if not runs:
        raise DataError(args.runs, None, None, "no finished runs (finetuned/*/run.json and final/) found")
    data = settings.get("data") or {}
    for field in ("source", "n_train"):
        if field not in data:
            raise DataError(settings_path, None, f"data.{field}", "missing")
    sst2 = data["source"] == "sst2"
    n_test = args.n_test or (None if sst2 else 200)
    _, test, source = sentiment.reviews(data["source"], data["n_train"], n_test)
    jobs = [{"folder": str(run["folder"] / "final"), "test": test, "device": args.device} for run in runs]
    scores = run_jobs(evaluate_job, jobs, min(args.jobs, len(jobs)), args.threads, "evaluating", False)
    rows = [{"model": run["model"], "non_embedding_params": run["non_embedding_params"], "ratio": run["ratio"],
             "seed": run["seed"], "n_test": len(test), **score} for run, score in zip(runs, scores)]
    rows.sort(key=lambda r: (r["ratio"], r["non_embedding_params"], r["seed"]))
    cells, trends = aggregate(rows)
    out = args.out_dir or args.runs / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(out / f"{FIG_NAME}_seeds.csv", rows), write_csv(out / f"{FIG_NAME}_cells.csv", cells),
             write_csv(out / f"{FIG_NAME}_trends.csv", trends)]
    settings["scoring"] = {"primary": "greedy next token over the whole vocabulary = the word (paper)",
                           "second": "P(' good') vs P(' bad')", "prompt": "review + suffix, no start token",
                           "test": "SST-2 validation" if sst2 else "generated, disjoint from training, balanced",
                           "n_test": len(test), "trend": "classify_trend per seed; a label only when all seeds agree"}
    write_json(settings_path, settings)
    print(f"{len(test)} test reviews ({source}), {len(rows)} runs")
    for t in trends:
        chance = " (every point at chance)" if t["at_chance"] else ""
        print(f"{t['reading']:>6} r={t['ratio']:<5g} {t['metric']:>6}: {t['label']:<10} (seeds {t['seed_labels']}){chance}")
    for p in paths + figure(cells, trends, out):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
