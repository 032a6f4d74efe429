"""The HF backend's fast paths (batching, prefix cache, gathered output layer) equal a plain forward pass."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import REPO

from data_pipeline.prompts import neqa_prompt, prefix
from data_pipeline.schema import load_neqa
from eval_pipeline.backends import GenerateRequest, ScoreRequest, get_backend, hf
from eval_pipeline.backends.hf import HFBackend, cpu_batch_size
from eval_pipeline.metrics import surface_forms, surface_logprobs

ITEMS = load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:10]


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """log p(option | context) from one unbatched forward pass: log_softmax of the full logits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()

    def logprob(context: str, option: str) -> float:
        ctx = tok(context)["input_ids"]
        whole = tok(context + option)["input_ids"]
        assert whole[:len(ctx)] == ctx, "test contexts must not merge with their options"
        opt = whole[len(ctx):]
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([ctx + opt])).logits[0].double(), dim=-1)
        return sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(opt))

    def next_token_logprobs(context: str) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(model(torch.tensor([tok(context)["input_ids"]])).logits[0, -1].double(), -1)

    def greedy(context: str, max_tokens: int, stop: str) -> str:
        ids = torch.tensor([tok(context)["input_ids"]])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=0)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        return text.split(stop)[0] if stop else text

    return type("Ref", (), {"logprob": staticmethod(logprob), "tok": tok,
                            "next": staticmethod(next_token_logprobs), "greedy": staticmethod(greedy)})


def _requests(method: str, options: list[str] | None = None) -> list[ScoreRequest]:
    # items differ in length, so batches mix lengths and use padding
    return [ScoreRequest(neqa_prompt(it, method), options or [" A", " B"]) for it in ITEMS]


@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("use_prefix", [False, True])
@pytest.mark.parametrize("method,options", [("zeroshot", None), ("fewshot", None),
                                            ("fewshot_hint", [" the answer", " B", " question is"])])
def test_scores_equal_plain_forward(tiny_model_dir, reference, batch_size, use_prefix, method, options):
    backend = HFBackend(str(tiny_model_dir), batch_size=batch_size, device="cpu", dtype="float32")
    requests = _requests(method, options)
    results = backend.score(requests, shared_prefix=prefix(method) if use_prefix else "")
    assert len(results) == len(requests)
    for req, res in zip(requests, results):
        expected = [reference.logprob(req.context, o) for o in req.options]
        assert res.logprobs == pytest.approx(expected, abs=1e-4)
    assert backend.describe()["scoring_path"] == ("prefix-cache" if use_prefix else "plain")


def test_order_restored_and_single_pass_fields(tiny_model_dir, reference):
    backend = HFBackend(str(tiny_model_dir), batch_size=4, device="cpu", dtype="float32")
    # options " ?" (whose "." extension " ?." is one token) and " A" (" A." is two): surface adds only the first
    requests = [ScoreRequest(neqa_prompt(it, "zeroshot"), [" ?", " A"], surface_forms([" ?", " A"])) for it in ITEMS[::-1]]
    results = backend.score(requests, shared_prefix=prefix("zeroshot"))
    tok = reference.tok
    assert len(tok(" ?.")["input_ids"]) == 1 and len(tok(" A.")["input_ids"]) == 2
    for req, res in zip(requests, results):
        lp = reference.next(req.context)
        q, a, qdot = (tok(s)["input_ids"][0] for s in (" ?", " A", " ?."))
        assert res.logprobs == pytest.approx([lp[q].item(), lp[a].item()], abs=1e-4)
        assert res.top_token == tok.decode([int(lp.argmax())])
        assert res.next_token_logprobs == pytest.approx([lp[qdot].item(), None], abs=1e-4)
        assert surface_logprobs(res.logprobs, res.next_token_logprobs) == pytest.approx(
            [math.log(math.exp(lp[q].item()) + math.exp(lp[qdot].item())), lp[a].item()], abs=1e-4)


def test_prefix_that_merges_across_the_boundary_still_exact(tiny_model_dir, reference):
    backend = HFBackend(str(tiny_model_dir), batch_size=5, device="cpu", dtype="float32")
    requests = _requests("fewshot")
    shared = prefix("fewshot") + "Quest"   # cuts a word: "Quest|ion" tokenises differently alone
    assert reference.tok(shared)["input_ids"] != reference.tok(requests[0].context)["input_ids"][
        :len(reference.tok(shared)["input_ids"])]
    results = backend.score(requests, shared_prefix=shared)
    for req, res in zip(requests, results):
        assert res.logprobs == pytest.approx([reference.logprob(req.context, o) for o in req.options], abs=1e-4)
    # the shorter, token-aligned part of the prefix is still reused
    assert backend.describe()["scoring_path"] == "prefix-cache"
    # a request that does not start with the prefix at all runs on the plain path
    odd = ScoreRequest("Something else entirely.\nAnswer:", [" A", " B"])
    res = backend.score(requests[:2] + [odd], shared_prefix=prefix("fewshot"))
    assert res[2].logprobs == pytest.approx([reference.logprob(odd.context, o) for o in odd.options], abs=1e-4)
    # (a lone row runs as a padded batch: packing without a prefix was never probed on this backend)
    assert backend.describe()["scoring_path"] == "plain-padded+prefix-cache"


@pytest.mark.parametrize("batch_size,use_prefix", [(1, False), (3, True), (16, True)])
def test_batched_greedy_generation_matches_generate(tiny_model_dir, reference, batch_size, use_prefix):
    backend = HFBackend(str(tiny_model_dir), batch_size=batch_size, device="cpu", dtype="float32")
    contexts = [neqa_prompt(it, "fewshot_cot") for it in ITEMS[:4]]
    stop = "e"   # a stop string the random model meets at different steps in different rows
    requests = [GenerateRequest(c, max_tokens=12, stop=stop) for c in contexts]
    out = backend.generate(requests, shared_prefix=prefix("fewshot_cot") if use_prefix else "")
    expected = [reference.greedy(c, 12, stop) for c in contexts]
    assert out == expected
    assert any(len(x) < len(reference.greedy(c, 12, "")) for x, c in zip(out, contexts)), "stop never exercised"


def test_get_backend_and_describe(tiny_model_dir):
    backend = get_backend("hf", model=str(tiny_model_dir), device="cpu")
    d = backend.describe()
    assert d["dtype"] == "float32" and d["model"] == str(tiny_model_dir)
    assert d["n_params"] == sum(p.numel() for p in backend.model.parameters()) > 0
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("nope")


def test_too_long_prompt_is_a_clear_error(tiny_model_dir):
    backend = HFBackend(str(tiny_model_dir), device="cpu")
    with pytest.raises(ValueError, match="maximum length"):
        backend.score([ScoreRequest("word " * 2000, [" A", " B"])])


def test_cpu_batch_size_stops_where_padding_grows():
    # 100, 95, 90 pad to 300 slots with 15 wasted (5%); adding 50 would waste 65 of 400 (16%)
    assert cpu_batch_size([100, 95, 90, 50, 49], slack=0.1, min_tokens=0) == 3
    # with 20% allowed: 50 joins (65 of 400 wasted), 49 does not (116 of 500)
    assert cpu_batch_size([100, 95, 90, 50, 49], slack=0.2, min_tokens=0) == 4
    # small batches grow regardless: 5 rows of at most 100 tokens are under 1000 slots
    assert cpu_batch_size([100, 95, 90, 50, 49], slack=0.1, min_tokens=1000) == 5
    assert cpu_batch_size([7], slack=0.0, min_tokens=0) == 1


def test_padding_aware_cpu_batches_stay_exact(tiny_model_dir, reference, monkeypatch):
    monkeypatch.setattr(hf, "MIN_BATCH_TOKENS", 0)   # tiny prompts: make the padding rule cut batches
    backend = HFBackend(str(tiny_model_dir), batch_size=16, device="cpu", dtype="float32")
    backend.packed = {True: False, False: False}   # the padding rule applies to padded batches
    sizes = []
    run = backend._run
    monkeypatch.setattr(backend, "_run", lambda rows, n, kv: (sizes.append(len(rows)), run(rows, n, kv))[1])
    requests = _requests("fewshot_hint")
    results = backend.score(requests, shared_prefix=prefix("fewshot_hint"))
    assert len(sizes) > 1 and sum(sizes) == len(requests) and max(sizes) <= 16
    for req, res in zip(requests, results):
        assert res.logprobs == pytest.approx([reference.logprob(req.context, o) for o in req.options], abs=1e-4)


def test_gpt2_activation_is_fused_and_equal(tiny_model_dir):
    from transformers import AutoModelForCausalLM
    from transformers.activations import GELUTanh, NewGELUActivation
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    x = torch.linspace(-6, 6, 1001)
    assert torch.allclose(GELUTanh()(x), NewGELUActivation()(x), atol=1e-6)
    n_blocks = model.config.n_layer
    assert hf.fuse_activations(model) == n_blocks
    assert not any(isinstance(m, NewGELUActivation) for m in model.modules())
    assert sum(isinstance(m, GELUTanh) for m in model.modules()) == n_blocks
