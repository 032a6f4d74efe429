"""The two sources NeQA is built from, validated on load.

OpenBookQA comes from the vendored copy in data_pipeline/sources/openbookqa/ unless
`prefer_hub=True`, which tries the Hugging Face hub first (`allenai/openbookqa`, config
`main`) and falls back to the vendored files when the hub cannot be reached.
Negated-LAMA (two-choice cloze items, already negated) is only vendored.
"""
from __future__ import annotations

import sys
from pathlib import Path

from neqa.io import DataError, FieldError, read_jsonl

from .schema import check_obqa

SOURCES = Path(__file__).resolve().parent / "sources"
OBQA_DIR = SOURCES / "openbookqa"
LAMA_FILE = SOURCES / "negated_lama" / "negated_lama_mc.jsonl"
OBQA_SPLITS = ("train", "dev", "test")
HUB_ID, HUB_CONFIG = "allenai/openbookqa", "main"
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def _splits(split: str) -> tuple[str, ...]:
    if split == "all":
        return OBQA_SPLITS
    if split not in OBQA_SPLITS:
        raise ValueError(f"unknown OpenBookQA split {split!r}; choose from {', '.join(OBQA_SPLITS)} or 'all'")
    return (split,)


def hub_to_record(row: dict) -> dict:
    """One hub row ({id, question_stem, choices: {text, label}, answerKey}) in the vendored format."""
    choices = [{"text": t, "label": l} for t, l in zip(row["choices"]["text"], row["choices"]["label"])]
    return {"id": row["id"], "question": {"stem": row["question_stem"], "choices": choices},
            "answerKey": row["answerKey"]}


def _load_hub(splits: tuple[str, ...]) -> list[dict]:
    from datasets import load_dataset  # imported here: slow, and only needed online
    ds = load_dataset(HUB_ID, HUB_CONFIG)
    records = []
    for split in splits:
        for i, row in enumerate(ds[HUB_SPLITS[split]]):
            r = hub_to_record(row)
            try:
                check_obqa(r)
            except FieldError as e:
                raise DataError(f"hub:{HUB_ID}/{HUB_SPLITS[split]}", i + 1, e.field, e.message) from None
            records.append({**r, "split": split})
    return records


def load_openbookqa(split: str = "all", prefer_hub: bool = False, directory=OBQA_DIR) -> list[dict]:
    """OpenBookQA records `{"id", "question": {"stem", "choices"}, "answerKey", "split"}`, in file order."""
    splits = _splits(split)
    if prefer_hub:
        try:
            return _load_hub(splits)
        except DataError:
            raise
        except Exception as e:  # no network, no hub cache, datasets missing: use the vendored copy
            print(f"[sources] hub load of {HUB_ID} failed ({type(e).__name__}); using the vendored copy",
                  file=sys.stderr)
    records = []
    for s in splits:
        records += [{**r, "split": s} for r in read_jsonl(Path(directory) / f"{s}.jsonl", check_obqa)]
    return records


def check_lama(r: dict) -> None:
    check_obqa({**r, "id": r.get("id", "")})
    if len(r["question"]["choices"]) != 2:
        raise FieldError("question.choices", f"expected 2 choices, got {len(r['question']['choices'])}")
    meta = r.get("metadata")
    if not isinstance(meta, dict):
        raise FieldError("metadata", "missing or not an object")
    for key in ("dataset", "category", "subdataset", "idx"):
        if key not in meta:
            raise FieldError(f"metadata.{key}", "missing")


def load_negated_lama(path=LAMA_FILE) -> list[dict]:
    """Negated-LAMA two-choice records `{"question": {"stem", "choices"}, "answerKey", "metadata"}`."""
    return read_jsonl(path, check_lama)


# Licences of the sources NeQA items are made from (see sources/README.md). Only OpenBookQA-derived items
# may be used commercially; Negated LAMA (from LAMA) is CC-BY-NC-4.0.
LICENCES = {"openbookqa": "Apache-2.0", "negated_lama": "CC-BY-NC-4.0"}


def source_of(item: dict) -> str:
    """The source a NeQA-format item was made from, read off its metadata: OpenBookQA items carry
    `negation_rule` (with `id`, `split`); Negated-LAMA items carry `dataset` (ConceptNet, GoogleRE,
    SQUAD, TREx). Items whose metadata says neither (e.g. the 100-item subsets) are "unknown"."""
    meta = item.get("metadata") or {}
    if meta.get("negation_rule") is not None:
        return "openbookqa"
    if meta.get("dataset") is not None:
        return "negated_lama"
    return "unknown"

