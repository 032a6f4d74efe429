"""Why Figure 6's offline ladder weights the verdict word: the fine-tuning step at which a pretrained size first
reads the review's sentiment, for several verdict weights (1 = the paper's plain LM loss).

    python -m simulation.sentiment_plateau --pretrained runs/sentiment/pretrained/s4/final   # after simulation/run.sh

Each weight fine-tunes the same pretrained model on the same reviews (r = 0, the grid's defaults: 3,300 reviews,
128-token blocks, batch 8) at a *constant* learning rate for --steps steps, saving a checkpoint every --every
steps; every checkpoint is scored on the held-out reviews as P(good) vs P(bad) after the affirmative suffix (task
1). Prints and writes (OUT/plateau.csv) the accuracy along steps and the first step at or above --threshold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neqa.cli import command, non_negative_int, positive_float, positive_int
from neqa.io import DataError, write_csv, write_json


def build_parser() -> argparse.ArgumentParser:
    from simulation.sentiment_train import DEFAULTS, PAPER
    ladder = DEFAULTS["ladder"]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pretrained", type=Path, required=True, help="a pretrained model folder (with its tokenizer)")
    p.add_argument("--weights", type=positive_float, nargs="+", default=[1.0, 10.0, 30.0], help="verdict weights")
    p.add_argument("--steps", type=positive_int, default=400)
    p.add_argument("--every", type=positive_int, default=25, help="checkpoint and score every this many steps")
    p.add_argument("--lr", type=positive_float, default=ladder["lr"], help="constant learning rate")
    p.add_argument("--n-train", type=positive_int, default=ladder["n_train"])
    p.add_argument("--n-test", type=positive_int, default=200)
    p.add_argument("--threshold", type=positive_float, default=0.75, help="task-1 accuracy that counts as learnt")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=PAPER["batch"])
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, default=Path("runs/sentiment_plateau"))
    p.add_argument("--restart", action="store_true", help="train again from nothing")
    return p


def first_step(rows: list[dict], weight: float, threshold: float) -> int | None:
    """The first checkpoint step whose accuracy reaches the threshold (None: never within the run)."""
    hits = [r["step"] for r in rows if r["weight"] == weight and r["task1"] >= threshold]
    return min(hits) if hits else None


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.pretrained / "config.json").exists():
        raise DataError(args.pretrained, None, None, "no model here (config.json missing); pretrain the ladder "
                        "first: bash simulation/run.sh")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from neqa import checkpoints as ckpt
    from simulation import sentiment
    from simulation.loop import TrainConfig, train
    from simulation.sentiment_eval import evaluate_run
    from simulation.sentiment_train import PAPER
    hf_logging.disable_progress_bar()
    train_reviews, test, _ = sentiment.reviews("generated", args.n_train, args.n_test)
    tokenizer = AutoTokenizer.from_pretrained(args.pretrained)
    blocks = sentiment.lm_blocks(sentiment.training_texts(train_reviews, 0.0, args.seed), tokenizer, 128)
    rows = []
    for weight in dict.fromkeys(args.weights):
        get_batch, _ = sentiment.epoch_batches(blocks, args.batch_size, args.seed,
                                               sentiment.verdict_weights(blocks, tokenizer, weight))
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, seq_len=128, lr=args.lr, warmup=0,
                          min_lr_ratio=1.0, weight_decay=PAPER["weight_decay"], seed=args.seed, ckpt_every=args.every,
                          log_every=args.every, progress=False)
        out = args.out_dir / f"w{weight:g}"
        model = AutoModelForCausalLM.from_pretrained(args.pretrained)
        train(model, get_batch, cfg, out, tokenizer=tokenizer, log=lambda *a, **k: None, restart=args.restart,
              settings={"pretrained": str(args.pretrained), "weight": weight, "n_train": args.n_train})
        for step in range(args.every, args.steps + 1, args.every):
            folder = ckpt.checkpoint_dir(out, step)
            rows.append({"weight": weight, "step": step, "task1": evaluate_run(folder, test)["pair_task1"]})
        print(f"verdict weight {weight:g}: task 1 " + " ".join(f"{r['task1']:.2f}" for r in rows if r["weight"] == weight)
              + f" (every {args.every} steps); first >= {args.threshold:g} at step "
              + str(first_step(rows, weight, args.threshold) or f"> {args.steps}"))
    summary = {"pretrained": str(args.pretrained), "lr": args.lr, "n_train": args.n_train, "n_test": len(test),
               "threshold": args.threshold, "steps": args.steps,
               "first_step": {f"{w:g}": first_step(rows, w, args.threshold) for w in dict.fromkeys(args.weights)}}
    write_json(args.out_dir / "plateau.json", summary)
    print(f"wrote {write_csv(args.out_dir / 'plateau.csv', rows)} and {args.out_dir / 'plateau.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
