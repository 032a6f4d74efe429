"""The repository root, and paths as records and YAML files hold them.

Paths inside the checkout are stored relative to its root, so results stay valid when the checkout moves.
(With `pip install -e .` the root is the checkout; the data files live there, not in site-packages.)
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def repo_relative(path) -> str:
    """The path relative to the repository root when inside it (what YAML files and records hold), else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)

