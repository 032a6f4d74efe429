"""Shared fixtures: a really tiny GPT-2 (2 layers, 64 dims, ~300-token byte-level BPE) saved offline.

`tiny_model_dir` is session-scoped: any test may load it with
`AutoModelForCausalLM.from_pretrained(tiny_model_dir)` / `AutoTokenizer.from_pretrained(tiny_model_dir)`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The test models are tiny; one CPU thread avoids oversubscription when test processes share a few cores.
try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _training_text() -> list[str]:
    from data_pipeline.prompts import NEQA_PROMPTS, neqa_prompt
    from data_pipeline.schema import load_neqa
    items = load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:20]
    texts = [neqa_prompt(it, m) + " A. B." for it in items for m in NEQA_PROMPTS]
    # The byte-level pre-tokenizer splits letters from punctuation (" A." is " A" + "."), so surface
    # competition gets its single tokens from punctuation options: " ?" / " ?." and " !" / " !." are merged.
    return texts + ["So the answer is A.", "So the answer is B.", "the same", "different"] * 50 + ["x ?. y !."] * 2000


def make_tiny_model(path: Path, seed: int = 0, vocab_size: int = 300, n_layer: int = 2, n_embd: int = 64) -> Path:
    """Save a randomly initialised tiny GPT-2 and its tokenizer (trained here, offline) to `path`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_training_text(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=1024, n_embd=n_embd, n_layer=n_layer, n_head=2,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # sharper than the default init, so that predictions differ item to item
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-gpt2") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir_2(tmp_path_factory) -> Path:
    """A second tiny model (different weights), e.g. to check that results of two models never mix."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-gpt2-b") / "model", seed=1)
