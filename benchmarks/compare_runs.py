"""Compare two evaluation runs of the same items, e.g. float32 against bfloat16 (benchmarks/gpu.sh).

    python -m benchmarks.compare_runs RUN_A RUN_B --tolerance 0.15

RUN_A and RUN_B are run folders (…/MEMBER/TASK__PROMPT holding items.jsonl). They agree when both scored
the same items with the same prompts, their accuracies are equal, and every option log-probability differs
by at most --tolerance (nats). Prints one line per check; exit code 0 when all hold, 1 when one fails, 2 on
bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neqa.cli import command
from neqa.io import UsageError, read_jsonl


def compare(a: list[dict], b: list[dict], tolerance: float) -> dict:
    """The comparison of two runs' records (items.jsonl), item by item."""
    if len(a) != len(b):
        raise ValueError(f"the runs scored {len(a)} and {len(b)} items")
    diffs, flipped = [], []
    for ra, rb in zip(a, b):
        if ra.get("prompt") != rb.get("prompt") or ra.get("index") != rb.get("index"):
            raise ValueError(f"item {ra.get('index')}: the runs scored different prompts")
        la, lb = ra.get("choice_logprobs"), rb.get("choice_logprobs")
        if la is not None and lb is not None:
            diffs += [abs(x - y) for x, y in zip(la, lb)]
        if ra["prediction"] != rb["prediction"]:
            flipped.append(ra["index"])
    n = len(a)
    acc_a, acc_b = sum(bool(r["correct"]) for r in a) / n, sum(bool(r["correct"]) for r in b) / n
    max_diff = max(diffs) if diffs else None
    return {"n_items": n, "accuracy_a": acc_a, "accuracy_b": acc_b, "max_abs_logprob_diff": max_diff,
            "tolerance": tolerance, "changed_predictions": flipped,
            "accuracy_equal": acc_a == acc_b, "logprobs_within_tolerance": max_diff is None or max_diff <= tolerance,
            "ok": acc_a == acc_b and (max_diff is None or max_diff <= tolerance)}


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare_runs", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", help="run folder holding items.jsonl")
    ap.add_argument("run_b", help="run folder holding items.jsonl")
    ap.add_argument("--tolerance", type=float, required=True, help="largest allowed |difference| of a log-prob (nats)")
    ap.add_argument("--json", help="also write the comparison to this file")
    args = ap.parse_args(argv)
    if not args.tolerance >= 0:
        ap.error("--tolerance must be a non-negative number")
    runs = [read_jsonl(Path(r) / "items.jsonl") for r in (args.run_a, args.run_b)]
    try:
        result = compare(*runs, tolerance=args.tolerance)
    except (ValueError, KeyError) as e:   # runs of other items or prompts, records without the fields compared
        raise UsageError(f"{args.run_a} vs {args.run_b}: {e.args[0] if e.args else e}") from None
    diff = result["max_abs_logprob_diff"]
    print(f"{args.run_a} vs {args.run_b}: {result['n_items']} items; accuracy {result['accuracy_a']:.3f} vs "
          f"{result['accuracy_b']:.3f} ({'equal' if result['accuracy_equal'] else 'DIFFERENT'}); max |Δ log p| "
          f"{'n/a' if diff is None else f'{diff:.2e}'} (tolerance {args.tolerance:g}: "
          f"{'within' if result['logprobs_within_tolerance'] else 'EXCEEDED'}); "
          f"{len(result['changed_predictions'])} predictions changed")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
