"""The vendored benchmark is the published release, byte for byte."""
from pathlib import Path

import pytest

from data_pipeline.schema import load_neqa
from neqa.io import sha256

REPO = Path(__file__).resolve().parents[1]
RELEASE = ["neqa.jsonl", "neqa_100.jsonl", "neqa_100_nonnegated.jsonl", "neqa_100_normalized.jsonl",
           "neqa_100_normalized_nonnegated.jsonl"]
SHARED = REPO.parent / "shared" / "data" / "neqa_release"


def test_release_make_up():
    items = load_neqa(REPO / "data_pipeline" / "neqa.jsonl")
    assert len(items) == 1718
    assert sum(it["answer"] for it in items) == 859
    assert sum("negation_rule" in it["metadata"] for it in items) == 500


@pytest.mark.parametrize("name", RELEASE)
def test_vendored_files_equal_the_reference_copy(name):
    if not (SHARED / name).exists():
        pytest.skip("the reference copy of the release is not beside this checkout")
    assert sha256(REPO / "data_pipeline" / name) == sha256(SHARED / name)


def test_commercial_selection_is_the_openbookqa_part():
    """The dataset card's two ways of selecting the commercially usable (Apache-2.0) items agree."""
    from datasets import load_dataset

    from data_pipeline.sources import LICENCES, source_of
    items = load_neqa(REPO / "data_pipeline" / "neqa.jsonl")
    by_source = {s: [it for it in items if source_of(it) == s] for s in ("openbookqa", "negated_lama", "unknown")}
    assert [len(v) for v in by_source.values()] == [500, 1218, 0]
    assert LICENCES["openbookqa"] == "Apache-2.0" and "NC" in LICENCES["negated_lama"]
    assert all(it["metadata"]["dataset"] in {"ConceptNet", "GoogleRE", "SQUAD", "TREx"}
               for it in by_source["negated_lama"])
    ds = load_dataset("json", data_files=str(REPO / "data_pipeline" / "neqa.jsonl"), split="train",
                      cache_dir=None)
    usable = ds.filter(lambda x: x["metadata"].get("negation_rule") is not None)
    assert usable["question"] == [it["question"] for it in by_source["openbookqa"]]
