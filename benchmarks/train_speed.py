"""Training speed of simulation.loop.train for the TinyWorld shapes: tokens/s, useful FLOP/s and its share of a
matmul peak measured in the same process (model FLOP utilisation, MFU).

    python -m benchmarks.train_speed                                  # every LADDER shape at 16x64 and 16x256
    python -m benchmarks.train_speed --members tw-3m,tw-10m --batches 16x256
    python -m benchmarks.train_speed --threads 1 --compile            # also time torch.compile (first step)

Each cell (member shape x batch) runs the loop itself, `simulation.loop.train`, in a temporary folder on a
random token stream (seeded: every run does the same work) with a row per step, and reads the loop's own log
rows: the first --warmup steps are dropped, the median of the next --steps is reported. Definitions (those of
the loop's log, see simulation/loop.py):
  useful FLOP/s   6 x non-embedding parameters x input positions / s  (6ND; attention scores and the output
                  layer are not in it);
  attention       Kaplan et al.'s 6 x n_layer x T x d per position (causal QK^T and AV, forward + backward),
                  reported beside it, not added to it;
  peak            the best sustained rate of a 1024^3 float32 GEMM (bfloat16 4096^3 on CUDA) in the same
                  process on the same threads, measured by the loop once at the start of the cell
                  (neqa.device.matmul_peak); `peak_after` is measured again at the end of the cell;
  mfu             useful FLOP/s / peak (the loop's own reading); `mfu_around`: against the mean of the peaks
                  before and after the cell, steadier on a machine whose speed drifts.
On a shared machine the absolute numbers move with the load; the peak is measured in the same process, so the
ratio moves less. The load average before and after is recorded. Writes --json (default
benchmarks/last_run_train_speed_<device>.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from neqa.cli import command
from neqa.io import UsageError, atomic_open

VOCAB = 1024   # the TinyWorld tokenizer's size
TARGET = ("tw-3m", "tw-10m")


def parse_batches(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        try:
            b, t = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise UsageError(f"--batches: {part!r} is not BATCHxSEQ_LEN (e.g. 16x256)") from None
        if b <= 0 or t <= 0:
            raise UsageError(f"--batches: {part!r} needs positive numbers")
        out.append((b, t))
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_cell(name: str, shape: tuple[int, int, int], batch: tuple[int, int], args, device: str) -> dict:
    import torch

    from neqa.device import matmul_peak, non_embedding_params
    from simulation.family import N_POSITIONS
    from simulation.loop import TrainConfig, train
    from simulation.model import make_model

    n_layer, n_head, n_embd = shape
    b, t = batch
    steps = args.warmup + args.steps
    model = make_model(VOCAB, n_layer, n_head, n_embd, n_positions=max(N_POSITIONS, t), seed=args.seed)
    if args.compile:
        model.forward = torch.compile(model.forward)
    stream = torch.randint(0, VOCAB, (max(50 * b * (t + 1), 100_000),), generator=torch.Generator().manual_seed(args.seed))
    cfg = TrainConfig(steps=steps, batch_size=b, seq_len=t, lr=1e-3, warmup=1, seed=args.seed, device=device,
                      log_every=1, state_every=steps, progress=False)
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        t0 = time.perf_counter()
        rows = train(model, stream, cfg, Path(tmp) / "run", log=lambda *_: None)
        wall = time.perf_counter() - t0
    timed = rows[args.warmup:]
    med = lambda key: statistics.median(r[key] for r in timed)  # noqa: E731
    step_s = statistics.median(b * t / r["tokens_per_s"] for r in timed)
    cell = {"member": name, "n_layer": n_layer, "n_head": n_head, "d_model": n_embd,
            "non_embedding_params": non_embedding_params(model), "batch_size": b, "seq_len": t,
            "tokens_per_step": b * t, "steps_timed": len(timed), "tokens_per_s": med("tokens_per_s"),
            "step_s": step_s, "flops_per_s": med("flops_per_s"),
            "attention_flops_per_s": med("attention_flops_per_s"), "peak_flops_per_s": rows[0]["peak_flops_per_s"],
            "peak_after": matmul_peak(device), "mfu": med("mfu"), "mfu_all_steps": [r["mfu"] for r in timed],
            "first_step_s": b * t / rows[0]["tokens_per_s"], "cell_wall_s": wall, "threads": rows[0]["threads"],
            "compile": bool(args.compile)}
    cell["mfu_with_attention"] = (cell["flops_per_s"] + cell["attention_flops_per_s"]) / cell["peak_flops_per_s"]
    cell["mfu_around"] = cell["flops_per_s"] / statistics.mean([cell["peak_flops_per_s"], cell["peak_after"]])
    return cell


def table(report: dict) -> str:
    lines = [f"{report['machine']}, {report['threads']} thread(s), torch {report['torch']}; load average "
             f"{' '.join(f'{x:.2f}' for x in report['load_before'])} before, "
             f"{' '.join(f'{x:.2f}' for x in report['load_after'])} after",
             "useful FLOP/s = 6 x non-embedding params x tokens/s (attention not counted; +attn: with it); "
             "peak: same-process GEMM",
             f"{'member':8} {'params':>10} {'batch':>7} {'tok/s':>8} {'GFLOP/s':>8} {'peak':>7} {'after':>7} "
             f"{'MFU':>5} {'around':>6} {'+attn':>5} {'1st step s':>10}"]
    for c in report["cells"]:
        lines.append(f"{c['member']:8} {c['non_embedding_params']:>10,} {c['batch_size']:>3}x{c['seq_len']:<3} "
                     f"{c['tokens_per_s']:>8.0f} {c['flops_per_s'] / 1e9:>8.1f} {c['peak_flops_per_s'] / 1e9:>7.1f} "
                     f"{c['peak_after'] / 1e9:>7.1f} {c['mfu']:>5.2f} {c['mfu_around']:>6.2f} {c['mfu_with_attention']:>5.2f} "
                     f"{c['first_step_s']:>10.2f}")
    return "\n".join(lines)


@command
def main(argv=None) -> int:
    from simulation.family import BATCH_SIZE, LADDER, SEQ_LEN
    family_batch = f"{BATCH_SIZE}x{SEQ_LEN}"
    shapes = {name: (n_layer, n_head, n_embd) for name, n_layer, n_head, n_embd, _lr in LADDER}
    ap = argparse.ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", default=",".join(shapes),
                    help=f"comma-separated LADDER shapes (default: all: {','.join(shapes)})")
    ap.add_argument("--batches", default=f"{family_batch},16x256",
                    help=f"comma-separated BATCHxSEQ_LEN token batches (default: {family_batch} (the family's), "
                         "16x256 (a longer token batch))")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per cell (default 5; the median is reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own, the cores)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the model's forward (its compile time is in the first step's seconds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="where to write the report (default benchmarks/last_run_train_speed_<device>.json)")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or args.threads < 0:
        raise UsageError("--steps and --warmup must be at least 1, --threads at least 0")
    members = [m for m in args.members.split(",") if m]
    unknown = [m for m in members if m not in shapes]
    if unknown:
        raise UsageError(f"--members: unknown {', '.join(unknown)}; choose from {', '.join(shapes)}")
    batches = parse_batches(args.batches)

    import torch

    from neqa.device import resolve_device
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    report = {"machine": f"{cpu_name()}, {os.cpu_count()} cores" if device == "cpu" else torch.cuda.get_device_name(),
              "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "load_before": list(os.getloadavg()), "command": " ".join(["python -m benchmarks.train_speed", *(sys.argv[1:] if argv is None else argv)]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cells": []}
    for batch in batches:
        for name in members:
            cell = run_cell(name, shapes[name], batch, args, device)
            report["cells"].append(cell)
            print(f"{name} {batch[0]}x{batch[1]}: {cell['tokens_per_s']:.0f} tok/s, "
                  f"{cell['flops_per_s'] / 1e9:.1f} GFLOP/s, peak {cell['peak_flops_per_s'] / 1e9:.1f}, "
                  f"MFU {cell['mfu']:.2f}", flush=True)
    report["load_after"] = list(os.getloadavg())
    target = [c for c in report["cells"] if c["member"] in TARGET and (c["batch_size"], c["seq_len"]) == (BATCH_SIZE, SEQ_LEN)]
    report["target"] = {"rule": f"MFU >= 0.5 for tw-3m and tw-10m at the family's batch, {family_batch}",
                        "met": bool(target) and all(c["mfu"] >= 0.5 for c in target)}
    path = Path(args.json or Path(__file__).parent / f"last_run_train_speed_{device.split(':')[0]}.json")
    with atomic_open(path) as f:
        json.dump(report, f, indent=2)
    print(table(report))
    print(f"target ({report['target']['rule']}): {'met' if report['target']['met'] else 'NOT met'}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
