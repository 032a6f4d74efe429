"""Why the tuned TinyWorld family answers the paper's letter prompts at chance: how many fine-tuning steps a
pretrained member needs to answer in the letter format when the answer is in plain sight, and when it must come
from what the member knows.

    python -m simulation.letter_format --pretrained runs/tinyworld/tw-1m/final   # after simulation.family

Each arm fine-tunes the same member with the tuned stage's loss (the answer letter only) and rows (one quiz per
row from position 0) at a constant learning rate after a 10-step warmup, on
  quizzes   the tuned stage's data: plain letter-format questions over trained facts
  binding   the same questions with the right option as the whole question ("Question: marsh"), so that
            finding it among the options is all there is to do
  both      the two, half each
Every --every steps the checkpoint is scored zero-shot by the evaluator's rule (log p(" A") vs log p(" B"),
nothing before the prompt) on the held-out binding questions (the format alone), the task-1 questions over
trained facts (format and memory), and the held-out task-1 and NeQA questions. Prints and writes
OUT/letter_format.csv and OUT/letter_format.json (the first step each set reaches --threshold).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neqa.cli import command, non_negative_int, positive_float, positive_int
from neqa.io import DataError, UsageError, read_jsonl, write_csv, write_json

ARMS = ("quizzes", "binding", "both")
SETS = ("binding", "seen_task1", "task1", "neqa")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pretrained", type=Path, required=True, help="a TinyWorld member's model folder")
    p.add_argument("--data", type=Path, default=None,
                   help="the family's data folder (world.json and test sets; default: the member's family/data)")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=["quizzes", "binding"])
    p.add_argument("--steps", type=positive_int, default=400)
    p.add_argument("--every", type=positive_int, default=50, help="checkpoint and score every this many steps")
    p.add_argument("--lr", type=positive_float, default=2e-3, help="learning rate, constant after a 10-step warmup")
    p.add_argument("--batch-size", type=positive_int, default=32, help="quizzes per step")
    p.add_argument("--threshold", type=positive_float, default=0.75, help="accuracy that counts as learnt")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, default=Path("runs/letter_format"))
    p.add_argument("--restart", action="store_true", help="train again from nothing")
    return p


def first_steps(rows: list[dict], threshold: float) -> dict:
    """{arm: {set: the first checkpoint step at or above threshold, or None}}."""
    out: dict = {}
    for r in rows:
        hit = out.setdefault(r["arm"], {}).setdefault(r["set"], None)
        if hit is None and r["accuracy"] >= threshold:
            out[r["arm"]][r["set"]] = r["step"]
    return out


def score_sets(folder: Path, sets: dict[str, list[dict]], device: str) -> dict[str, tuple[float, float]]:
    """{set: (accuracy, share answered A)} under the zero-shot letter prompt, by the evaluator's backend."""
    from eval_pipeline.backends import get_backend
    from eval_pipeline.metrics import argmax
    from eval_pipeline.tasks import get_task
    task, backend = get_task("task1"), get_backend("hf", model=str(folder), device=device)
    out = {}
    for name, items in sets.items():
        results = backend.score([task.request(it, "zeroshot") for it in items], task.prefix("zeroshot", items))
        picks = [argmax(r.logprobs) for r in results]
        out[name] = (sum(p == it["answer"] for p, it in zip(picks, items)) / len(items),
                     picks.count(0) / len(picks))
    return out


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.every > args.steps:
        raise UsageError(f"--every {args.every} is more than --steps {args.steps}: no checkpoint would be scored")
    if not (args.pretrained / "config.json").exists():
        raise DataError(args.pretrained, None, None, "no model here (config.json missing); train the family first: "
                        "python -m simulation.family")
    data = args.data or args.pretrained.resolve().parents[1] / "data"
    if not (data / "world.json").exists():
        raise DataError(data / "world.json", None, None, "no TinyWorld data here; pass the family's --data folder")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from data_pipeline.schema import check_neqa
    from neqa import checkpoints as ckpt
    from neqa.tokenizer import EOS
    from simulation import tuning as T
    from simulation import world as W
    from simulation.loop import TrainConfig, train
    hf_logging.disable_progress_bar()
    cfg = W.WorldConfig(**json.loads((data / "world.json").read_text())["config"])
    quizzes = T.tuning_items(W.make_world(cfg), cfg)
    tokenizer = AutoTokenizer.from_pretrained(args.pretrained)
    pools = {"quizzes": T.encode_examples(T.tuning_texts(quizzes), tokenizer),
             "binding": T.encode_examples(T.tuning_texts(T.binding_items(quizzes)), tokenizer)}
    pools["both"] = pools["quizzes"] + pools["binding"]
    task1 = read_jsonl(data / "task1.jsonl", check_neqa)
    sets = {"binding": T.binding_items(task1), "seen_task1": read_jsonl(data / "seen_task1.jsonl", check_neqa),
            "task1": task1, "neqa": read_jsonl(data / "neqa.jsonl", check_neqa)}
    seq_len = max(len(p) for pool in pools.values() for p, _ in pool) + 1
    rows = []
    for arm in dict.fromkeys(args.arms):
        get_batch = T.row_batches(pools[arm], args.batch_size, tokenizer.convert_tokens_to_ids(EOS))
        tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, seq_len=seq_len, lr=args.lr, warmup=10,
                           min_lr_ratio=1.0, weight_decay=0.0, seed=args.seed, ckpt_every=args.every,
                           log_every=args.every, device=args.device, progress=False)
        out = args.out_dir / arm
        model = AutoModelForCausalLM.from_pretrained(args.pretrained)
        train(model, get_batch, tcfg, out, tokenizer=tokenizer, log=lambda *a, **k: None, restart=args.restart,
              settings={"pretrained": str(args.pretrained), "arm": arm})
        for step in range(args.every, args.steps + 1, args.every):
            for name, (acc, share_a) in score_sets(ckpt.checkpoint_dir(out, step), sets, args.device).items():
                rows.append({"arm": arm, "step": step, "set": name, "accuracy": acc, "answers_A": share_a,
                             "n": len(sets[name])})
        print(f"arm {arm} (accuracy every {args.every} steps):")
        for name in SETS:
            print(f"  {name:10s} " + " ".join(f"{r['accuracy']:.2f}" for r in rows if r["arm"] == arm and r["set"] == name))
    summary = {"pretrained": str(args.pretrained), "data": str(data), "lr": args.lr, "steps": args.steps,
               "batch_size": args.batch_size, "seed": args.seed, "threshold": args.threshold,
               "n": {k: len(v) for k, v in sets.items()}, "first_step": first_steps(rows, args.threshold)}
    write_json(args.out_dir / "letter_format.json", summary)
    print(f"wrote {write_csv(args.out_dir / 'letter_format.csv', rows)} and {args.out_dir / 'letter_format.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
