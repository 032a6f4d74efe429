"""The vendored benchmark is the published release, byte for byte."""
from pathlib import Path

import pytest

from data_pipeline.io import sha256
from data_pipeline.schema import load_neqa

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
