"""Train models of the Figure-6 grid: GPT-2s of given sizes on sentiment reviews whose verdicts
are negated at given ratios (several sizes/ratios train the grid in one process).

    python -m simulation.sentiment_train --size 2 --ratio 0.05
    python -m simulation.sentiment_train --size 0 1 2 3 4 --ratio 0 0.01 0.05 0.2
    python -m simulation.sentiment_train --init pretrained --ratio 0.05   # starts from `gpt2` (hub)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from neqa.cli import command, device, non_negative_int, positive_float, positive_int
from neqa.device import non_embedding_params
from neqa.io import UsageError, write_json
from simulation import sentiment
from simulation.loop import TrainConfig, is_complete, train
from simulation.model import make_model

# The scratch ladder: (n_layer, n_head, n_embd), small to large.
SIZES = [(1, 2, 16), (2, 2, 32), (2, 4, 48), (2, 4, 64), (3, 4, 96)]
DEFAULTS = dict(steps=300, batch_size=32, seq_len=64, lr=3e-3, n_train=4000)


def run_dir(root, init: str, size: int, ratio: float) -> Path:
    name = "gpt2" if init == "pretrained" else f"s{size}"
    return Path(root) / f"{name}-r{ratio:g}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, nargs="+", default=[0],
                   help=f"index(es) into the ladder {SIZES} of (n_layer, n_head, n_embd)")
    p.add_argument("--ratio", type=float, nargs="+", required=True,
                   help="fraction(s) of training reviews with a negated verdict")
    p.add_argument("--init", choices=["scratch", "pretrained"], default="scratch",
                   help="pretrained: fine-tune the hub's `gpt2` (needs the hub) instead of the ladder")
    p.add_argument("--source", choices=["generated", "sst2", "auto"], default="generated",
                   help="reviews: the seeded generator, SST-2 from the hub, or SST-2 if reachable")
    p.add_argument("--runs", type=Path, default=Path("runs/sentiment"), help="parent of the run folder")
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, help="run folder for a single size and ratio (default RUNS/s<size>-r<ratio>)")
    p.add_argument("--objective", choices=["verdict", "lm"], default="verdict",
                   help="loss on the verdict word only (fine-tuning on the task) or on every token")
    p.add_argument("--steps", type=positive_int, default=DEFAULTS["steps"])
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"], help="reviews per step")
    p.add_argument("--seq-len", type=positive_int, default=DEFAULTS["seq_len"],
                   help="longest review (tokens) kept whole")
    p.add_argument("--lr", type=positive_float, default=DEFAULTS["lr"])
    p.add_argument("--n-train", type=positive_int, default=DEFAULTS["n_train"], help="training reviews")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto", type=device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--restart", action="store_true",
                   help="delete the run folder's earlier run and train from nothing (needed to change settings)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def train_one(args, size: int, ratio: float, train_reviews: list[dict], source: str, out: Path) -> int:
    texts = sentiment.training_texts(train_reviews, ratio, seed=args.seed)
    if args.init == "pretrained":
        from transformers import AutoTokenizer, GPT2LMHeadModel
        try:
            tokenizer = AutoTokenizer.from_pretrained("gpt2")
            model = GPT2LMHeadModel.from_pretrained("gpt2")
        except OSError as e:
            raise UsageError(f"cannot load the pretrained `gpt2` from the hub ({e.__class__.__name__}); "
                             "use --init scratch offline") from None
        shape = "gpt2"
    else:
        tokenizer = sentiment.train_tokenizer(texts)
        n_layer, n_head, n_embd = SIZES[size]
        model = make_model(len(tokenizer), n_layer, n_head, n_embd, n_positions=args.seq_len, seed=args.seed,
                           eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
        shape = f"{n_layer}x{n_head}x{n_embd}"
    examples = sentiment.encode_examples(train_reviews, ratio, tokenizer, seed=args.seed)
    batches = sentiment.example_batches(examples, args.batch_size, args.seq_len, args.objective)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
                      warmup=max(args.steps // 10, 1), seed=args.seed, device=args.device,
                      log_every=max(args.steps // 10, 1), progress=not args.quiet)
    already_done = not args.restart and is_complete(out / "final") and (out / "run.json").exists()
    settings = {"task": "sentiment", "init": args.init, "size": size, "shape": shape, "ratio": ratio, "source": source,
                "n_train": len(train_reviews), "objective": args.objective}
    t0 = time.perf_counter()
    history = train(model, batches, cfg, out, tokenizer=tokenizer, log=print, settings=settings,
                    restart=args.restart)
    seconds = time.perf_counter() - t0
    if already_done:   # keep the record of the run that did the training
        return 0
    write_json(out / "run.json", {"task": "sentiment", "init": args.init, "size": size, "shape": shape,
                                  "ratio": ratio, "source": source, "n_train": len(train_reviews),
                                  "seed": args.seed, "non_embedding_params": non_embedding_params(model),
                                  "objective": args.objective, "config": vars(cfg),
                                  "final_loss": history[-1]["loss"] if history else None,
                                  "train_seconds": round(seconds, 2)})
    if history:
        tps = sum(r["tokens_per_s"] for r in history) / len(history)
        print(f"{out}: {shape}, {non_embedding_params(model):,} non-embedding params, "
              f"{args.objective} loss {history[-1]['loss']:.3f} after {history[-1]['step']} steps "
              f"(~{tps:,.0f} tokens/s)")
    return 0


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()   # one bar per model load/save is noise here
    bad_size = [s for s in args.size if not 0 <= s < len(SIZES)]
    if bad_size:
        print(f"error: --size {bad_size[0]} is not in 0..{len(SIZES) - 1}", file=sys.stderr)
        return 2
    if any(not 0.0 <= r <= 1.0 for r in args.ratio):
        print("error: --ratio values must be in [0, 1]", file=sys.stderr)
        return 2
    sizes = [0] if args.init == "pretrained" else list(dict.fromkeys(args.size))
    grid = [(s, r) for s in sizes for r in dict.fromkeys(args.ratio)]
    if args.out_dir and len(grid) > 1:
        print("error: --out-dir names one run; give one --size and one --ratio, or use --runs", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    train_reviews, _, source = sentiment.reviews(args.source, args.n_train, 0, seed=args.seed)
    for size, ratio in grid:
        rc = train_one(args, size, ratio, train_reviews, source,
                       args.out_dir or run_dir(args.runs, args.init, size, ratio))
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
