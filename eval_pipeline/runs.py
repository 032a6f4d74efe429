"""One evaluation run on disk: RESULTS_DIR/<family>/<member>/<task>__<prompt>/.

    run.json      written at the start: what is being computed and its key (and the scoring paths used), and
                  `shared_prefix`: the text every prompt of the run starts with (header, few-shot examples),
                  stored once; each record's `prompt` is the rest, so shared_prefix + prompt is the text scored
    items.jsonl   one record per item, appended (flushed) as they are computed
    summary.json  written atomically at the end
    .lock         held (flock) by the one process writing the folder

The run key is the sha256 of (model, revision, dtype, task, prompt, data sha256) and, where known, the
model's weights (sha256 of a local model's weight, config and tokenizer files) or the API server's base
URL. Rerunning the same command resumes from the records present; a folder holding another key is
refused (naming what changed), never mixed. Hashing is cheap on resume: run.json keeps each file's size
and modification time, and the files are hashed again only when those change.
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from neqa.io import DataError, UsageError, sha256, write_json
from neqa.paths import REPO_ROOT

KEY_FIELDS = ("model", "revision", "dtype", "task", "prompt", "data_sha256")
SOURCE_FIELDS = ("weights", "base_url")   # in the key when known (None keeps keys of hub-model runs as they were)
OPTIONAL_KEY_FIELDS = ("order_balanced",)   # in the key only when set, so older keys stay valid
# the files of a local model that decide its answers (weights, config, tokenizer)
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".json", ".model", ".txt", ".tiktoken")


class RunMismatchError(UsageError):
    """The results folder belongs to a different run (other model, weights, server, revision, dtype, task,
    prompt or data)."""


class RunBusyError(UsageError):
    """Another process is writing the results folder."""


def run_key(meta: dict) -> str:
    missing = [k for k in KEY_FIELDS if k not in meta]
    if missing:
        raise KeyError(f"run key needs {', '.join(missing)}")
    keyed = {k: meta[k] for k in KEY_FIELDS}
    keyed.update({k: meta[k] for k in SOURCE_FIELDS if meta.get(k) is not None})
    keyed.update({k: meta[k] for k in OPTIONAL_KEY_FIELDS if meta.get(k)})
    blob = json.dumps(keyed, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ModelFiles:
    """The files of a local model (a folder, or one file such as a GGUF) and their sha256, hashed at most
    once per process and not at all when run.json already holds them with the same sizes and times."""

    def __init__(self, path):
        self.path = Path(path)
        self._hashed: tuple[dict, dict] | None = None

    def stat(self) -> dict[str, list[int]]:
        """name -> [size, mtime_ns] of every file that decides the model's answers."""
        if self.path.is_file():
            files = [self.path]
        else:
            files = sorted(p for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix in MODEL_FILE_SUFFIXES)
        out = {}
        for p in files:
            st = p.stat()
            out[p.name] = [st.st_size, st.st_mtime_ns]
        return out

    def describe(self, recorded: dict | None = None) -> dict:
        """{"sha256": of all files, "files": {name: {"size", "mtime_ns", "sha256"}}}. `recorded` (the same from
        run.json) is trusted for files whose size and time are unchanged."""
        stat = self.stat()
        recorded_files = (recorded or {}).get("files") or {}
        if recorded and set(recorded_files) == set(stat) and all(
                [recorded_files[n].get("size"), recorded_files[n].get("mtime_ns")] == stat[n] for n in stat):
            return recorded
        if self._hashed is None or self._hashed[0] != stat:
            hashes = {n: sha256(self.path if self.path.is_file() else self.path / n) for n in stat}
            self._hashed = (stat, hashes)
        hashes = self._hashed[1]
        files = {n: {"size": stat[n][0], "mtime_ns": stat[n][1], "sha256": hashes[n]} for n in stat}
        total = hashlib.sha256(json.dumps({n: hashes[n] for n in sorted(hashes)}).encode()).hexdigest()
        return {"sha256": total, "files": files}


def _weights_change(before: dict | None, now: dict | None) -> str:
    """Which files differ between two ModelFiles.describe() results, in words."""
    if not before or not now:
        return "weights: not recorded here (the run predates weight keys)" if now else "weights differ"
    a, b = before.get("files") or {}, now.get("files") or {}
    changed = [n for n in sorted(set(a) | set(b)) if (a.get(n) or {}).get("sha256") != (b.get(n) or {}).get("sha256")]
    words = []
    for n in changed:
        if n not in a:
            words.append(f"{n} added")
        elif n not in b:
            words.append(f"{n} removed")
        else:
            words.append(f"{n} changed (sha256 {a[n]['sha256'][:12]} here, {b[n]['sha256'][:12]} now)")
    return "weights: " + ", ".join(words)


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_dir(output_dir, member: str, task: str, prompt: str, family: str | None = None) -> Path:
    """output_dir/[family/]member/task__prompt (the family level only when a family is given)."""
    base = Path(output_dir) / family if family else Path(output_dir)
    return base / member / f"{task}__{prompt}"


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)
        self.items_path = self.path / "items.jsonl"
        self.run_path = self.path / "run.json"
        self.summary_path = self.path / "summary.json"
        self.lock_path = self.path / ".lock"
        self._lock = None

    def lock(self, wait: bool = False) -> None:
        """Become the one process writing this folder (an exclusive flock, released by close() or on exit,
        a kill included). Another holder: RunBusyError, or with `wait` block until it is done."""
        if self._lock is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        f = open(self.lock_path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise RunBusyError(f"{self.path} is being written by another process"
                                   f"{f' (pid {holder})' if holder else ''}; wait for it to finish, "
                                   "or pass --wait to queue behind it") from None
            raise
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock = f

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()   # closing the file releases the flock
            self._lock = None

    def _previous(self) -> dict | None:
        if not self.run_path.exists():
            return None
        try:
            previous = json.loads(self.run_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(self.run_path, None, None, f"malformed JSON ({e.msg})") from None
        if not isinstance(previous, dict):
            raise DataError(self.run_path, None, None, "expected a JSON object")
        return previous

    def open(self, meta: dict, model_files: ModelFiles | None = None, replace: bool = False,
             wait: bool = False) -> list[dict]:
        """Lock the folder, claim it for this run (or check that it is ours) and return the records already
        computed. `model_files` (a local model) puts its weights in the key; meta["base_url"] (an API) is
        keyed too. A folder holding another run is refused, or with `replace` emptied and recomputed."""
        self.lock(wait)
        try:
            return self._claim(dict(meta), model_files, replace)
        except BaseException:
            self.close()
            raise

    def _claim(self, meta: dict, model_files: ModelFiles | None, replace: bool) -> list[dict]:
        previous = self._previous()
        weights = None
        if model_files is not None:
            weights = model_files.describe((previous or {}).get("weights_files") if previous else None)
            meta["weights"] = weights["sha256"]
        key = run_key(meta)
        problem = None
        if previous is not None and previous.get("key") != key:
            diff = [f"{k}: {previous.get(k)!r} here, {meta[k]!r} asked" for k in KEY_FIELDS
                    if previous.get(k) != meta[k]]
            if meta.get("weights") != previous.get("weights") and weights is not None:
                diff.append(_weights_change(previous.get("weights_files"), weights))
            if meta.get("base_url") != previous.get("base_url"):
                diff.append(f"base_url: {previous.get('base_url')!r} here, {meta.get('base_url')!r} asked")
            diff += [f"{k}: {bool(previous.get(k))} here, {bool(meta.get(k))} asked" for k in OPTIONAL_KEY_FIELDS
                     if bool(previous.get(k)) != bool(meta.get(k))]
            problem = f"{self.path} holds another run ({'; '.join(diff) or 'different key'})"
        elif previous is None and (self.items_path.exists() or self.summary_path.exists()):
            problem = f"{self.path} holds results without run.json"
        if problem and not replace:
            raise RunMismatchError(f"{problem}; refusing to mix runs: use another --output-dir, delete the "
                                   "folder, or pass --replace to recompute it")
        if problem:
            print(f"replacing {self.path}: {problem.split(' holds ', 1)[1]}", file=sys.stderr)
            for p in (self.items_path, self.summary_path, self.run_path):
                p.unlink(missing_ok=True)
            previous = None
        record = {"key": key, **{k: meta[k] for k in KEY_FIELDS},
                  **{k: meta[k] for k in SOURCE_FIELDS if meta.get(k) is not None},
                  **{k: meta[k] for k in OPTIONAL_KEY_FIELDS if meta.get(k)},
                  "shared_prefix": meta.get("shared_prefix", "")}
        if weights is not None:
            record["weights_files"] = weights
        if previous is None:
            write_json(self.run_path, {**record, "code_version": meta.get("code_version"), "started": now(),
                                       "scoring_paths": []})
        else:
            update = {}
            if weights is not None and previous.get("weights_files") != weights:   # same content, new times
                update["weights_files"] = weights
            if "shared_prefix" in meta and "shared_prefix" not in previous:   # a run begun before it was recorded
                update["shared_prefix"] = meta["shared_prefix"]
            if update:
                write_json(self.run_path, {**previous, **update})
        return self._read_records()

    def scoring_paths(self) -> list[str]:
        """Every scoring path any invocation used on this folder (kept in run.json across resumes)."""
        previous = self._previous() or {}
        return list(previous.get("scoring_paths") or [])

    def add_scoring_path(self, path: str | None) -> None:
        if not path:
            return
        previous = self._previous() or {}
        paths = list(previous.get("scoring_paths") or [])
        if path not in paths:
            write_json(self.run_path, {**previous, "scoring_paths": paths + [path]})

    def _read_records(self) -> list[dict]:
        """Records present, in order. A last line cut short by a kill is dropped (it is recomputed)."""
        if not self.items_path.exists():
            return []
        records, good_bytes = [], 0
        with open(self.items_path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        for lineno, line in enumerate(lines, 1):
            is_last = lineno == len(lines)
            if not line.strip():
                good_bytes += len(line) + (0 if is_last else 1)
                continue
            try:
                record = json.loads(line)
                if is_last:   # no newline after it: the write was interrupted
                    raise ValueError
            except ValueError:
                if lineno >= len(lines) - 1:
                    break
                raise DataError(self.items_path, lineno, None, "malformed record in the middle of the file") from None
            index = record.get("index")
            if index != len(records):
                what = f"duplicate index {index!r}" if index in range(len(records)) else \
                    f"expected {len(records)}, got {index!r}"
                raise DataError(self.items_path, lineno, "index", f"{what} (two writers, or a damaged file)")
            records.append(record)
            good_bytes += len(line) + 1
        if good_bytes < len(raw):
            with open(self.items_path, "r+b") as f:
                f.truncate(good_bytes)
        return records

    def append(self, records: list[dict]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.items_path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finish(self, summary: dict) -> None:
        write_json(self.summary_path, summary)
