"""Data loaders for the lm-evaluation-harness tasks beside this file (written by python -m data_pipeline.export).

A relative `data_file` is read relative to this folder, so that the tasks work from any directory."""
import ast
import json
from pathlib import Path

import datasets


def _path(data_file):
    path = Path(data_file)
    return path if path.is_absolute() else Path(__file__).resolve().parent / path


def load_neqa(data_file, **_):
    return datasets.load_dataset("json", data_files={"test": str(_path(data_file))})


def _classes(cell):
    try:
        return json.loads(cell)
    except ValueError:
        return ast.literal_eval(cell)   # a Python list literal, as the prize's own tables wrote it


def load_prize(data_file, **_):
    """A prize CSV with its `classes` cells as lists, as the harness's multiple-choice config expects."""
    table = datasets.load_dataset("csv", data_files={"test": str(_path(data_file))})
    return table.map(lambda row: {"classes": _classes(row["classes"])})
