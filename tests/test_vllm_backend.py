"""The vLLM backend: mapping of prompt_logprobs to option log-probs (everywhere); real scoring where a GPU and
vLLM are present (equal to the HF backend within float tolerance)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from eval_pipeline.backends.vllm_backend import option_logprobs


@dataclass
class FakeLogprob:   # the fields of vllm.sequence.Logprob that the backend reads
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def _prompt_logprobs(context, option, table):
    """What vLLM returns for the prompt context + option: None first, then per position a dict holding the
    prompt's own token and the top-1 token (rank 1). table[pos] = {token: logprob} of the full distribution."""
    ids = context + option
    out = [None]
    for pos in range(1, len(ids)):
        dist = table[pos]
        top = max(dist, key=dist.get)
        ranks = {t: r + 1 for r, t in enumerate(sorted(dist, key=dist.get, reverse=True))}
        out.append({ids[pos]: FakeLogprob(dist[ids[pos]], ranks[ids[pos]]), top: FakeLogprob(dist[top], 1)})
    return out


def test_option_logprobs_sums_option_positions_and_reads_top():
    context, option = [5, 6, 7], [8, 9]
    table = {p: {t: math.log(w) for t, w in zip(range(5, 11), weights)}
             for p, weights in {1: [.1, .2, .3, .1, .1, .2], 2: [.05, .05, .1, .5, .2, .1],
                                3: [.3, .1, .1, .1, .2, .2], 4: [.1, .1, .1, .1, .5, .1]}.items()}
    lp, top = option_logprobs(_prompt_logprobs(context, option, table), len(context), option)
    assert lp == pytest.approx(math.log(.1) + math.log(.5))   # token 8 at position 3, token 9 at position 4
    assert top == 5                                          # argmax after the context (position 3)


def test_option_logprobs_without_ranks_uses_the_largest_and_accepts_plain_numbers():
    plp = [None, {3: -0.5, 4: -1.0}, {4: -2.0, 7: -0.1}]
    lp, top = option_logprobs(plp, 2, [4])
    assert lp == -2.0 and top == 7


def test_option_logprobs_errors_are_clear():
    with pytest.raises(ValueError, match="positions"):
        option_logprobs([None, {1: -1.0}], 1, [2, 3])
    with pytest.raises(ValueError, match="no log-prob for option token 9"):
        option_logprobs([None, {1: -1.0}], 1, [9])


def test_missing_vllm_is_a_clear_error():
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here; the missing-import message cannot be checked")
    except ImportError:
        pass
    from eval_pipeline.backends import get_backend
    with pytest.raises(ImportError, match="pip install vllm"):
        get_backend("vllm", model="unused")


def _gpu_vllm():
    pytest.importorskip("vllm", reason="vLLM is not installed")
    import torch
    if not torch.cuda.is_available():
        pytest.skip("vLLM backend tests need a CUDA GPU")


@pytest.mark.gpu
def test_vllm_scores_equal_hf(tiny_model_dir):
    _gpu_vllm()
    from data_pipeline.prompts import neqa_prompt, prefix
    from data_pipeline.schema import load_neqa
    from eval_pipeline.backends.base import ScoreRequest
    from eval_pipeline.backends.hf import HFBackend
    from eval_pipeline.backends.vllm_backend import VLLMBackend
    from conftest import REPO
    items = load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:8]
    requests = [ScoreRequest(neqa_prompt(it, "fewshot"), [" A", " B"]) for it in items]
    hf = HFBackend(str(tiny_model_dir), device="cpu", dtype="float32").score(requests, prefix("fewshot"))
    backend = VLLMBackend(str(tiny_model_dir), dtype="float32", gpu_memory_utilization=0.3)
    try:
        got = backend.score(requests)
    finally:
        backend.close()
    for a, b in zip(got, hf):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-3)
        assert a.top_token == b.top_token


def test_evaluate_cli_without_vllm_fails_with_one_clear_line(tmp_path, capsys):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here; this checks the message shown without it")
    except ImportError:
        pass
    from eval_pipeline.evaluate import main
    assert main(["--model", "m", "--backend", "vllm", "--output-dir", str(tmp_path), "--limit", "1"]) == 2
    assert "pip install vllm" in capsys.readouterr().err
