"""JSONL and JSON reading with errors that name file, line and field; atomic writes; file hashes.

Every stage reads and writes through these helpers so that bad input always
fails the same way and an interrupted write never leaves a half-written file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


class FieldError(ValueError):
    """Raised by a record validator; the reader turns it into a DataError with file and line."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"field '{field}': {message}")


class DataError(ValueError):
    """A problem with an input file, located by path, line and field."""

    def __init__(self, path, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "")
        what = f", field '{field}'" if field else ""
        super().__init__(f"{where}{what}: {message}")


def read_jsonl(path, validate: Callable[[dict], None] | None = None) -> list[dict]:
    """All records of a JSONL file. `validate(record)` may raise FieldError, which is
    re-raised as a DataError naming this file and line."""
    return list(iter_jsonl(path, validate))


def iter_jsonl(path, validate: Callable[[dict], None] | None = None) -> Iterator[dict]:
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(path, lineno, None, f"malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise DataError(path, lineno, None, f"expected a JSON object, got {type(record).__name__}")
            if validate is not None:
                try:
                    validate(record)
                except FieldError as e:
                    raise DataError(path, lineno, e.field, e.message) from None
            yield record


@contextlib.contextmanager
def atomic_open(path, mode: str = "w"):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path) -> dict:
    """A JSON file holding one object (a summary, a config), with DataError on anything else."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, None, f"malformed JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(path, None, None, "expected a JSON object")
    return obj


def write_jsonl(path, records: Iterable[dict]) -> None:
    with atomic_open(path) as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_json(path, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_csv(path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """A table written atomically by pandas: one row per dict, `columns` in order (default: every key, in order
    of first appearance; keys not in `columns` are dropped), missing values and NaN as empty cells."""
    import pandas as pd
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns, dtype=object)
    with atomic_open(path) as f:
        df.to_csv(f, index=False, lineterminator="\n")
    return Path(path)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
