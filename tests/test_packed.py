"""Packed batches (suffixes end to end in one row, packed_attention keeping them apart) equal a plain
forward pass for each model family's architecture, and the backend falls back to padded batches where
packing is not available or disagrees."""
from __future__ import annotations

import pytest
import torch
from conftest import REPO, make_tiny_model

from data_pipeline.prompts import neqa_prompt, prefix
from data_pipeline.schema import load_neqa
from eval_pipeline.backends import ScoreRequest, packed
from eval_pipeline.backends.hf import HFBackend
from eval_pipeline.backends.packed import Packing

ITEMS = load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:6]
ARCHS = ["gpt2", "opt", "gpt_neox", "llama", "qwen2"]


@pytest.fixture(scope="module", params=ARCHS)
def arch_model(request, tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp(request.param) / "model", seed=2, arch=request.param)


def full_forward_logprobs(model_dir, requests):
    """log p(option | context), one unbatched forward pass per (context, option), no cache, no packing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for req in requests:
        row = []
        for option in req.options:
            ctx = tok(req.context, add_special_tokens=False)["input_ids"]
            whole = tok(req.context + option, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                lp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), dim=-1)
            row.append(sum(lp[j - 1, whole[j]].item() for j in range(len(ctx), len(whole))))
        out.append(row)
    return out


@pytest.mark.parametrize("method", ["zeroshot", "fewshot"])
def test_packed_scores_equal_full_forward(arch_model, method):
    requests = [ScoreRequest(neqa_prompt(it, method), [" A", " B", " the answer"]) for it in ITEMS]
    backend = HFBackend(str(arch_model), batch_size=4, device="cpu", dtype="float32")
    got = [r.logprobs for r in backend.score(requests, shared_prefix=prefix(method))]
    assert backend.packed == {True: True}
    assert backend.describe()["scoring_path"] == "prefix-cache"
    for g, e in zip(got, full_forward_logprobs(arch_model, requests)):
        assert g == pytest.approx(e, abs=1e-4)
    # the prefix ran inline in the first packed batch; its cache equals one made on its own, and a second
    # call, reusing it, gives the same scores
    key, made = backend._kv_cache
    for (k, v), (k0, v0) in zip(made, backend._prefix_cache(list(key)), strict=True):
        assert torch.allclose(k, k0, atol=1e-5) and torch.allclose(v, v0, atol=1e-5)
    again = [r.logprobs for r in backend.score(requests, shared_prefix=prefix(method))]
    assert backend._kv_cache[1] is made
    for g, a in zip(got, again):
        assert a == pytest.approx(g, abs=1e-5)


def test_packing_indices():
    p = Packing([3, 1, 2], None, "cpu")
    assert (p.B, p.S) == (3, 3)
    # padded slots (b, s) -> packed positions
    assert p.to_padded.tolist() == [0, 1, 2, 3, 3, 3, 4, 5, 4]   # pad slots repeat the suffix's first token
    assert p.to_packed.tolist() == [0, 1, 2, 3, 6, 7]
    # suffix 2 (two tokens): its second token sees both, its first only itself; pad keys never
    assert p.mask[2].tolist() == [[True, False, False], [True, True, False], [True, True, False]]


@pytest.mark.parametrize("failure", ["raises", "disagrees"])
def test_falls_back_to_padded_batches(tiny_model_dir, monkeypatch, failure):
    requests = [ScoreRequest(neqa_prompt(it, "fewshot"), [" A", " B"]) for it in ITEMS]
    expected = [r.logprobs for r in HFBackend(str(tiny_model_dir), device="cpu", dtype="float32").score(
        requests, shared_prefix=prefix("fewshot"))]
    backend = HFBackend(str(tiny_model_dir), batch_size=3, device="cpu", dtype="float32")
    real = packed.run_packed

    def broken(backend, rows, n, kv):
        if failure == "raises":
            raise NotImplementedError("attention not routed through AttentionInterface")
        states, kv = real(backend, rows, n, kv)
        return states * 1.01, kv
    monkeypatch.setattr(packed, "run_packed", broken)
    got = [r.logprobs for r in backend.score(requests, shared_prefix=prefix("fewshot"))]
    assert backend.packed == {True: False}
    assert backend.describe()["scoring_path"] == "prefix-cache-padded"
    for g, e in zip(got, expected):
        assert g == pytest.approx(e, abs=1e-5)


def test_a_lone_row_does_not_decide_packing(tiny_model_dir):
    backend = HFBackend(str(tiny_model_dir), device="cpu", dtype="float32")
    backend.score([ScoreRequest(neqa_prompt(ITEMS[0], "zeroshot"), [" A", " B"])])
    assert backend.packed == {} and backend.describe()["scoring_path"] == "plain-padded"
    backend.score([ScoreRequest(neqa_prompt(it, "zeroshot"), [" A", " B"]) for it in ITEMS[:2]])
    assert backend.packed == {False: True} and backend.describe()["scoring_path"] == "plain"


def test_a_prefix_cache_that_cannot_be_shared_means_no_reuse(tiny_model_dir, monkeypatch):
    requests = [ScoreRequest(neqa_prompt(it, "fewshot"), [" A", " B"]) for it in ITEMS]
    expected = [r.logprobs for r in HFBackend(str(tiny_model_dir), device="cpu", dtype="float32").score(requests)]
    backend = HFBackend(str(tiny_model_dir), batch_size=3, device="cpu", dtype="float32")
    backend.packed = {True: False}                              # e.g. a sliding-window model: padded batches,
    monkeypatch.setattr(backend, "_prefix_cache", lambda ids: None)   # whose cache layers cannot be expanded
    got = [r.logprobs for r in backend.score(requests, shared_prefix=prefix("fewshot"))]
    assert backend.describe()["scoring_path"] == "plain-padded" and backend._kv_cache is None
    for g, e in zip(got, expected):
        assert g == pytest.approx(e, abs=1e-5)


@pytest.mark.parametrize("window,path", [(4096, "prefix-cache"), (16, "plain-padded")])
def test_sliding_window_attention(tmp_path, window, path):
    """Gemma 3's shape: sliding-window layers beside full ones. A window at least as long as every row masks
    nothing, so batches are packed and share the prefix cache; a shorter one makes the backend fall back
    (padded batches, no reuse of a sliding-window cache). Both equal a plain forward pass."""
    import transformers as tf
    folder = make_tiny_model(tmp_path / "model", seed=3, arch="llama")   # its tokenizer; the model replaced
    vocab = tf.AutoTokenizer.from_pretrained(folder).vocab_size + 1
    config = tf.Gemma3TextConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=window,
                                 layer_types=["sliding_attention", "full_attention"], max_position_embeddings=1024,
                                 pad_token_id=0, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(3)
    model = tf.Gemma3ForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    requests = [ScoreRequest(neqa_prompt(it, "fewshot"), [" A", " B", " the answer"]) for it in ITEMS]
    backend = HFBackend(str(folder), batch_size=4, device="cpu", dtype="float32")
    got = [r.logprobs for r in backend.score(requests, shared_prefix=prefix("fewshot"))]
    assert backend.describe()["scoring_path"] == path
    for g, e in zip(got, full_forward_logprobs(folder, requests)):
        assert g == pytest.approx(e, abs=1e-4)
