"""What every command shares: one error contract and the checks on its arguments.

    @command
    def main(argv=None) -> int: ...

Bad input (a DataError: a file, a line, a field; or a UsageError: a flag, a name, a folder in use) and an
OSError naming a file print one line, `error: ...`, on stderr and exit 2. Anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from pathlib import Path

from neqa.io import DataError, UsageError


def command(main):
    """Wrap a command's main(argv) -> int with the error contract above."""
    @functools.wraps(main)
    def run(argv=None) -> int:
        try:
            return main(argv)
        except DataError as e:
            message = str(e)
        except OSError as e:
            if e.filename is None:   # not about a file the user named: a bug or the system, keep the traceback
                raise
            message = f"{e.filename}: {e.strerror or e}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    return run


def _int_at_least(text: str, low: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{rule}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    return _int_at_least(text, 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "must be 0 or more")


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def device(text: str) -> str:
    """argparse type: auto, cpu, cuda, cuda:N, mps; refused at once when torch does not know it or it is absent."""
    if text == "auto":
        return text
    import torch
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: CUDA is not available on this machine (use cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"unsupported device {text!r} (use auto, cpu, cuda, cuda:N or mps)")
    return text


def check_name(name: str, what: str) -> str:
    """A name used as one folder of an output path (family, member, revision): never '.', '..' or a path."""
    if (not isinstance(name, str) or not name.strip() or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or (os.altsep and os.altsep in name)):
        raise UsageError(f"{what} {name!r} cannot be a folder name (no '/', '\\', '.' or '..')")
    return name


def inside(folder, path) -> Path:
    """`path`, after checking that it lies inside `folder` (no escape through '..' or links)."""
    folder, path = Path(folder), Path(path)
    if not path.resolve().is_relative_to(folder.resolve()):
        raise UsageError(f"{path} is outside the output folder {folder}")
    return path


def check_outputs(outputs, inputs=()) -> None:
    """Before any work: every output can be written (not a folder, not below a file, a writable folder)
    and none of them is one of the inputs."""
    ins = [Path(p).resolve() for p in inputs if p]
    for out in outputs:
        out = Path(out)
        if out.resolve() in ins:
            raise UsageError(f"output {out} is also an input; refusing to overwrite it (choose another output)")
        if out.is_dir():
            raise DataError(out, None, None, "is a folder; give a file name for the output")
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise DataError(out, None, None, f"cannot be created: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DataError(out, None, None, f"cannot be written: {parent} is not writable")
