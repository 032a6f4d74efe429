"""JSONL and JSON reading with errors that name file, line and field; atomic writes; file hashes.

Every stage reads and writes through these helpers so that bad input always
fails the same way and an interrupted write never leaves a half-written file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


class FieldError(ValueError):
    """Raised by a record validator; the reader turns it into a DataError with file and line."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"field '{field}': {message}")


class DataError(ValueError):
    """A problem with an input file, located by path, line and field. Commands print it as
    `error: ...` and exit 2 (neqa.cli); anything else keeps its traceback."""

    def __init__(self, path, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "")
        what = f", field '{field}'" if field else ""
        super().__init__(f"{where}{what}: {message}")


class UsageError(DataError):
    """Bad input that is not inside a file: a flag, a model name, a folder in use by another run."""

    def __init__(self, message: str):
        self.path = self.line = self.field = None
        ValueError.__init__(self, message)


def _open_input(path):
    """Open an input file (bytes), with DataError for a missing file, a folder or an unreadable file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    if path.is_dir():
        raise DataError(path, None, None, "is a folder, not a file")
    try:
        return open(path, "rb")
    except OSError as e:
        raise DataError(path, None, None, f"cannot read ({e.strerror})") from None


def _decode(path, raw: bytes, line: int | None = None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, line, None, f"not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start} "
                                          "cannot be decoded)") from None


def read_text(path) -> str:
    """A whole UTF-8 input file, with DataError (naming it) for a missing file, a folder or other bytes."""
    with _open_input(path) as f:
        return _decode(path, f.read())


def read_jsonl(path, validate: Callable[[dict], None] | None = None) -> list[dict]:
    """All records of a JSONL file. `validate(record)` may raise FieldError, which is
    re-raised as a DataError naming this file and line."""
    return list(iter_jsonl(path, validate))


def iter_jsonl(path, validate: Callable[[dict], None] | None = None) -> Iterator[dict]:
    path = Path(path)
    with _open_input(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = _decode(path, raw, lineno)
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


def _output_dir(path: Path) -> None:
    """Create the folder an output goes into, with DataError when that cannot be."""
    if path.is_dir():
        raise DataError(path, None, None, "is a folder; give a file name for the output")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(path, None, None, f"cannot create the output's folder ({e.strerror})") from None


@contextlib.contextmanager
def atomic_open(path, mode: str = "w"):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds.
    The data reach the disk (fsync) before the rename, so a crash leaves the old file or the new one."""
    path = Path(path)
    _output_dir(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise DataError(path, None, None, f"cannot write the output here ({e.strerror})") from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside `path` to fill; put it in place of `path` only if the block succeeds.
    An existing `path` is moved aside, not deleted, until the new folder is in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_dir(path) -> None:
    """After a crash between atomic_dir's two renames: put the moved-aside folder back."""
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if old.is_dir() and not path.exists():
        os.replace(old, path)


def read_json(path) -> dict:
    """A JSON file holding one object (a summary, a config), with DataError on anything else."""
    path = Path(path)
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, None, f"malformed JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(path, None, None, "expected a JSON object")
    return obj


def finite(obj: Any) -> Any:
    """`obj` with NaN and infinities written as None: JSON has no NaN (json.dump would write invalid JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_jsonl(path, records: Iterable[dict]) -> None:
    with atomic_open(path) as f:
        for r in records:
            f.write(json.dumps(finite(r), ensure_ascii=False, allow_nan=False) + "\n")


def write_json(path, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(finite(obj), f, indent=2, ensure_ascii=False, allow_nan=False)
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
