"""The family registry: every shipped YAML loads; bad files fail naming file and field."""
import csv
from pathlib import Path

import pytest

from eval_pipeline.registry import REPO_ROOT, list_families, load_family, main
from neqa.io import DataError

PAPER_FAMILIES = {"gpt3", "gpt3-text", "cohere", "jurassic"}


def test_every_shipped_family_loads():
    names = list_families()
    assert {"gpt2", "pythia", "opt", "qwen2.5", "llama"} | PAPER_FAMILIES <= set(names)
    for name in names:
        fam = load_family(name)
        assert fam.name == name
        assert fam.members
        sizes = [m.params for m in fam.members]
        assert sizes == sorted(sizes), f"{name}: members must be ordered small to large"
        assert len({m.name for m in fam.members}) == len(fam.members)


def test_published_csv_families_and_members_are_in_the_registry():
    """--published plots take sizes from the registry, matched by label and member name."""
    by_label = {load_family(n).label: load_family(n) for n in list_families()}
    with open(REPO_ROOT / "eval_pipeline/published/paper_figure_values.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        fam = by_label[row["family"]]
        fam.member(row["model"])          # raises KeyError if missing
        assert fam.backend == "published"


def test_known_sizes_and_flops_default():
    pythia = load_family("pythia")
    assert [m.name for m in pythia.members][0] == "pythia-70m"
    m = pythia.member("pythia-12b")
    assert m.params == 11846072320 and m.train_tokens == 3e11
    assert m.flops == pytest.approx(6 * 11846072320 * 3e11)
    assert "step143000" in m.revisions and "step1000" in m.revisions
    gpt3 = load_family("gpt3")
    assert gpt3.member("davinci").params == 175_000_000_000
    assert gpt3.order("curie") == 3
    assert load_family("gpt2").member("gpt2").flops is None     # no token count published


def write(tmp_path, text, name="fam.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = """
name: mine
backend: hf
data: {neqa: data/my_neqa.jsonl}
members:
  - {name: small, model: runs/mine/small, params: 1000, train_tokens: 2.0e6}
  - {name: big, model: org/hub-model, params: 1e6, flops: 5.0e+12}
"""


def test_user_family_from_path_resolves_relative_paths(tmp_path):
    fam = load_family(write(tmp_path, GOOD))
    small, big = fam.members
    assert Path(small.model) == REPO_ROOT / "runs/mine/small"     # a folder, relative to the repo root
    assert big.model == "org/hub-model"                           # a hub id stays a hub id
    assert small.flops == 6 * 1000 * 2e6 and big.flops == 5e12 and big.params == 1_000_000
    assert Path(fam.data["neqa"]) == REPO_ROOT / "data/my_neqa.jsonl"
    assert fam.label == "mine"


@pytest.mark.parametrize("bad, field", [
    (GOOD.replace("backend: hf", "backend: magic"), "backend"),
    (GOOD.replace("params: 1000,", "params: lots,"), "members[0].params"),
    (GOOD.replace("params: 1e6", "params: -5"), "members[1].params"),
    (GOOD.replace("name: big", "name: small"), "members[1].name"),
    (GOOD.replace("flops: 5.0e+12", "flop: 5"), "members[1].flop"),
    (GOOD.replace("neqa: data", "nqa: data"), "data.nqa"),
    (GOOD.replace("name: mine", "nam: mine"), "nam"),
    ("name: x\nbackend: hf\nmembers: []\n", "members"),
])
def test_bad_yaml_names_file_and_field(tmp_path, bad, field):
    p = write(tmp_path, bad)
    with pytest.raises(DataError) as e:
        load_family(p)
    assert e.value.field == field
    assert str(p) in str(e.value) and f"field '{field}'" in str(e.value)


def test_malformed_yaml_and_unknown_family(tmp_path, capsys):
    with pytest.raises(DataError, match="malformed YAML"):
        load_family(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(DataError, match="no such family"):
        load_family("no-such-family")
    assert main(["no-such-family"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["pythia"]) == 0
    assert "pythia-12b" in capsys.readouterr().out
