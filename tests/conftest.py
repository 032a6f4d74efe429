"""Shared fixtures: a really tiny GPT-2 (2 layers, 64 dims, ~300-token byte-level BPE) saved offline.

`tiny_model_dir` is session-scoped: any test may load it with
`AutoModelForCausalLM.from_pretrained(tiny_model_dir)` / `AutoTokenizer.from_pretrained(tiny_model_dir)`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The test models are tiny; one CPU thread avoids oversubscription when test processes share a few cores.
try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu are skipped, with the reason shown, where no CUDA device is visible."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _training_text() -> list[str]:
    from data_pipeline.prompts import NEQA_PROMPTS, neqa_prompt
    from data_pipeline.schema import load_neqa
    items = load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:20]
    texts = [neqa_prompt(it, m) + " A. B." for it in items for m in NEQA_PROMPTS]
    # The byte-level pre-tokenizer splits letters from punctuation (" A." is " A" + "."), so surface
    # competition gets its single tokens from punctuation options: " ?" / " ?." and " !" / " !." are merged.
    return texts + ["So the answer is A.", "So the answer is B.", "the same", "different"] * 50 + ["x ?. y !."] * 2000


def _tiny_config(arch: str, vocab: int, n_layer: int, n_embd: int):
    """Configs of the families in eval_pipeline/families, at toy size: learned positions (GPT-2, OPT) and
    rotary ones (Pythia's GPT-NeoX with partial rotary, Llama and Qwen2 with grouped-query attention)."""
    import transformers as tf
    common = dict(vocab_size=vocab, bos_token_id=0, eos_token_id=0)
    if arch == "gpt2":
        return tf.GPT2Config(n_positions=1024, n_embd=n_embd, n_layer=n_layer, n_head=2, **common)
    common["pad_token_id"] = 0
    if arch == "opt":
        return tf.OPTConfig(hidden_size=n_embd, num_hidden_layers=n_layer, num_attention_heads=2, ffn_dim=4 * n_embd,
                            word_embed_proj_dim=n_embd, max_position_embeddings=1024, **common)
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(hidden_size=n_embd, num_hidden_layers=n_layer, num_attention_heads=2,
                                intermediate_size=4 * n_embd, rotary_pct=0.25, max_position_embeddings=1024, **common)
    if arch in ("llama", "qwen2"):
        cls = tf.LlamaConfig if arch == "llama" else tf.Qwen2Config
        return cls(hidden_size=n_embd, num_hidden_layers=n_layer, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=2 * n_embd, max_position_embeddings=1024, **common)
    raise ValueError(f"unknown test architecture {arch!r}")


def make_tiny_model(path: Path, seed: int = 0, vocab_size: int = 300, n_layer: int = 2, n_embd: int = 64,
                    arch: str = "gpt2") -> Path:
    """Save a randomly initialised tiny model (GPT-2 unless `arch` says otherwise) and its tokenizer (trained
    here, offline) to `path`."""
    import torch
    from transformers import AutoModelForCausalLM

    from neqa.tokenizer import byte_bpe
    fast = byte_bpe(_training_text(), vocab_size)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_tiny_config(arch, len(fast), n_layer, n_embd)).eval()
    with torch.no_grad():  # sharper than the default init, so that predictions differ item to item
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (tiny training runs are faster and reproducible that way)."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-gpt2") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir_2(tmp_path_factory) -> Path:
    """A second tiny model (different weights), e.g. to check that results of two models never mix."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-gpt2-b") / "model", seed=1)


def pytest_configure(config):
    config.addinivalue_line("markers", "fault: a fault-injection test (bad input, crash, concurrency, hostile "
                                       "data); `pytest -m fault` runs the suite the README counts")
