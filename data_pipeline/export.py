"""Export NeQA for other evaluation tools.

1. Inverse Scaling Prize classification tables, one CSV per prompt style:
   columns `prompt`, `classes` (the list string `[" A", " B"]`, as the prize wrote it) and
   `answer_index`; the scored quantity is log p(class | prompt). Made for every style in
   prompts.NEQA_PROMPTS except `fewshot_cot`: chain of thought is scored on a generated
   answer, which a classification table cannot hold. Task 2 gives `task2_weak.csv` and
   `task2_strong.csv`.
2. lm-evaluation-harness tasks (`neqa.yaml` = zero-shot, and neqa_zeroshot_hint, neqa_fewshot,
   neqa_fewshot_hint): `lm_eval --model hf --model_args pretrained=... --tasks neqa
   --include_path data_pipeline/exports`, from any directory. The harness scores context +
   target_delimiter + choice, i.e. the prompt ending in "Answer:" followed by " A" / " B", the same
   continuation as the prize tables.
3. lm-evaluation-harness configs for the prize tables (`neqa_prize_zeroshot`, ..., `task2_prize_weak`,
   `task2_prize_strong`): the harness's generic inverse-scaling multiple-choice config (doc_to_text
   prompt, doc_to_choice classes, doc_to_target answer_index, no delimiter) over our CSVs, whose
   `classes` cells are parsed into lists.

The YAMLs load their data through `neqa_data.py`, written beside them (`custom_dataset: !function`, which
the harness resolves relative to the YAML): it reads the data file relative to its own folder, so the
tasks work whatever the working directory (the data path is written relative to the output folder).

    python -m data_pipeline.export [INPUT] [--task2 FILE] [--out-dir data_pipeline/exports]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from neqa.io import atomic_open, read_jsonl

from neqa.cli import check_outputs, command
from .prompts import LETTERS, NEQA_PROMPTS, TASK2_PROMPTS, neqa_prompt, prefix, task2_prompt
from .schema import check_task2, load_neqa

CLASSES = [" " + letter for letter in LETTERS]  # [" A", " B"]: the first answer token the prize compared
TABLE_PROMPTS = tuple(m for m in NEQA_PROMPTS if m != "fewshot_cot")
HARNESS_TASKS = {"zeroshot": "neqa", "zeroshot_hint": "neqa_zeroshot_hint", "fewshot": "neqa_fewshot",
                 "fewshot_hint": "neqa_fewshot_hint"}
QUESTION_TEMPLATE = "Question: {{question}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nAnswer:"


def prize_rows(items: list[dict], render) -> list[dict]:
    return [{"prompt": render(it), "classes": json.dumps(CLASSES), "answer_index": it["answer"]} for it in items]


def write_prize_csv(path, rows: list[dict]) -> None:
    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=["prompt", "classes", "answer_index"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def read_prize_csv(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return [{"prompt": r["prompt"], "classes": json.loads(r["classes"]), "answer_index": int(r["answer_index"])}
                for r in csv.DictReader(f)]


LOADER = '''"""Data loaders for the lm-evaluation-harness tasks beside this file (written by python -m data_pipeline.export).

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
'''


def read_harness_yaml(text: str) -> dict:
    """A task YAML read safely (yaml.SafeLoader), the harness's `!function X` tag kept as the string "!function X"."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))
    return yaml.load(text, Loader=Loader)   # noqa: S506 - a SafeLoader subclass


def write_harness_task(folder, task: str, method: str, data_path: str) -> Path:
    """One lm-evaluation-harness task YAML and the data loader it needs, into `folder`."""
    folder = Path(folder)
    with atomic_open(folder / "neqa_data.py") as f:
        f.write(LOADER)
    with atomic_open(folder / f"{task}.yaml") as f:
        f.write(harness_yaml(task, method, data_path))
    return folder / f"{task}.yaml"


def _yaml_header(task: str, what: str, *notes: str) -> list[str]:
    return [f"# {what}, generated by python -m data_pipeline.export; from any directory:",
            f"#   lm_eval --model hf --model_args pretrained=EleutherAI/pythia-160m --tasks {task} "
            "--include_path data_pipeline/exports", *(f"# {n}" for n in notes),
            f"task: {task}"]


def _dataset(loader: str, data_path: str) -> list[str]:
    return [f"custom_dataset: !function neqa_data.{loader}",
            "dataset_kwargs:",
            f"  data_file: {json.dumps(data_path)}",
            "test_split: test",
            "output_type: multiple_choice"]


def harness_yaml(task: str, method: str, data_path: str) -> str:
    """An lm-evaluation-harness task config whose rendered doc_to_text equals neqa_prompt(doc, method);
    data_path: the NeQA file, relative to the YAML's folder (or absolute)."""
    fixed = prefix(method)
    if "{" in fixed or "}" in fixed:  # would be read as Jinja
        raise ValueError(f"prompt prefix of {method!r} contains braces")
    template = fixed + QUESTION_TEMPLATE
    return "\n".join([
        *_yaml_header(task, f"NeQA ({method} prompt)", "The harness scores doc_to_text + target_delimiter + "
                      "choice = prompt + \" A\" / prompt + \" B\"."),
        *_dataset("load_neqa", data_path),
        f"doc_to_text: {json.dumps(template, ensure_ascii=False)}",
        'doc_to_choice: ["A", "B"]',
        'target_delimiter: " "',
        "doc_to_target: answer",
        "metric_list:",
        "  - metric: acc",
        "    aggregation: mean",
        "    higher_is_better: true",
        "metadata:",
        "  version: 1.0",
        "",
    ])


def prize_yaml(task: str, csv_name: str) -> str:
    """lm-evaluation-harness's generic inverse-scaling multiple-choice config over one of our prize CSVs."""
    return "\n".join([
        *_yaml_header(task, f"The prize table {csv_name} in the harness's inverse-scaling multiple-choice config"),
        *_dataset("load_prize", csv_name),
        "doc_to_text: prompt",
        "doc_to_choice: classes",
        "doc_to_target: answer_index",
        'target_delimiter: ""',
        "metric_list:",
        "  - metric: acc",
        "    aggregation: mean",
        "    higher_is_better: true",
        "  - metric: acc_norm",
        "    aggregation: mean",
        "    higher_is_better: true",
        "metadata:",
        "  version: 1.0",
        "",
    ])


def export(input_path, task2_path, out_dir, data_path: str | None = None) -> list[str]:
    """Write every table and task config; return one report line per file."""
    out_dir = Path(out_dir)
    check_outputs([out_dir / f"neqa_{m}.csv" for m in TABLE_PROMPTS]
                     + [out_dir / f"task2_{m}.csv" for m in TASK2_PROMPTS]
                     + [out_dir / f"{t}.yaml" for t in HARNESS_TASKS.values()], [input_path, task2_path])
    items = load_neqa(input_path)
    task2 = read_jsonl(task2_path, check_task2) if task2_path else []
    out_dir = Path(out_dir)
    lines = []
    tables = []
    for method in TABLE_PROMPTS:
        path = out_dir / f"neqa_{method}.csv"
        write_prize_csv(path, prize_rows(items, lambda it, m=method: neqa_prompt(it, m)))
        tables.append((f"neqa_prize_{method}", path))
        lines.append(f"wrote {len(items)} rows to {path}")
    for method in TASK2_PROMPTS if task2 else ():
        path = out_dir / f"task2_{method}.csv"
        write_prize_csv(path, prize_rows(task2, lambda it, m=method: task2_prompt(it, m)))
        tables.append((f"task2_prize_{method}", path))
        lines.append(f"wrote {len(task2)} rows to {path}")
    with atomic_open(out_dir / "neqa_data.py") as f:
        f.write(LOADER)
    for task, path in tables:
        with atomic_open(out_dir / f"{task}.yaml") as f:
            f.write(prize_yaml(task, path.name))
        lines.append(f"wrote lm-eval task {task} to {out_dir / f'{task}.yaml'}")
    data_path = data_path or Path(os.path.relpath(Path(input_path).resolve(), out_dir.resolve())).as_posix()
    for method, task in HARNESS_TASKS.items():
        path = write_harness_task(out_dir, task, method, data_path)
        lines.append(f"wrote lm-eval task {task} to {path}")
    return lines


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_pipeline.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", default="data_pipeline/neqa.jsonl",
                    help="NeQA-format file (default data_pipeline/neqa.jsonl)")
    ap.add_argument("--task2", default="data_pipeline/neqa_task2.jsonl",
                    help="task-2 file for task2_{weak,strong}.csv (default data_pipeline/neqa_task2.jsonl; "
                         "'' to skip)")
    ap.add_argument("--output-dir", "--out-dir", dest="out_dir", default="data_pipeline/exports", help="output folder (default data_pipeline/exports)")
    ap.add_argument("--data-path", help="data file path written into the lm-eval YAMLs, read relative to the "
                                        "output folder (default: INPUT, relative to the output folder)")
    args = ap.parse_args(argv)
    for line in export(args.input, args.task2 or None, args.out_dir, args.data_path):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
