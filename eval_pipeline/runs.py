"""One evaluation run on disk: RESULTS_DIR/<family>/<member>/<task>__<prompt>/.

    run.json      written at the start: what is being computed and its key
    items.jsonl   one record per item, appended (flushed) batch by batch as they are computed
    summary.json  written atomically at the end

The run key is the sha256 of (model, revision, dtype, task, prompt, data sha256). Rerunning the same
command resumes from the records present; a folder holding another key is refused, never mixed.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
from pathlib import Path

from neqa.io import DataError, write_json
from neqa.paths import REPO_ROOT

KEY_FIELDS = ("model", "revision", "dtype", "task", "prompt", "data_sha256")


class RunMismatchError(ValueError):
    """The results folder belongs to a different run (other model, revision, dtype, task, prompt or data)."""


def run_key(meta: dict) -> str:
    missing = [k for k in KEY_FIELDS if k not in meta]
    if missing:
        raise KeyError(f"run key needs {', '.join(missing)}")
    blob = json.dumps({k: meta[k] for k in KEY_FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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

    def open(self, meta: dict) -> list[dict]:
        """Claim the folder for this run (or check that it is ours) and return the records already computed."""
        key = run_key(meta)
        if self.run_path.exists():
            try:
                previous = json.loads(self.run_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise DataError(self.run_path, None, None, f"malformed JSON ({e.msg})") from None
            if previous.get("key") != key:
                diff = [f"{k}: {previous.get(k)!r} here, {meta[k]!r} asked" for k in KEY_FIELDS
                        if previous.get(k) != meta[k]]
                raise RunMismatchError(f"{self.path} holds another run ({'; '.join(diff) or 'different key'}); "
                                       "use another --output-dir or delete the folder")
        elif self.items_path.exists() or self.summary_path.exists():
            raise RunMismatchError(f"{self.path} holds results without run.json; refusing to mix runs")
        else:
            write_json(self.run_path, {"key": key, **{k: meta[k] for k in KEY_FIELDS},
                                       "code_version": meta.get("code_version"), "started": now()})
        return self._read_records()

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
            if record.get("index") != len(records):
                raise DataError(self.items_path, lineno, "index",
                                f"expected {len(records)}, got {record.get('index')!r}")
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
