"""The OpenAI-compatible backend against a local fake server (tests/fake_openai_server.py)."""
import json
import math

import pytest
from fake_openai_server import NO_LOGPROBS_MODEL, FakeOpenAI

from eval_pipeline.backends.base import GenerateRequest, ScoreRequest, get_backend
from eval_pipeline.backends.openai_api import OpenAIBackend, read_top_logprobs
from eval_pipeline.metrics import surface_forms, surface_logprobs

SECRET = "sk-test-DO-NOT-WRITE-0123456789"
AB = [" A", " B"]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("NEQA_TEST_KEY", SECRET)
    return "NEQA_TEST_KEY"


def backend(server, key, **kw):
    kw.setdefault("retry_base_delay", 0.01)
    kw.setdefault("timeout", 10)
    return OpenAIBackend(kw.pop("model", "fake-model"), base_url=server.url, api_key_env=key, progress=False, **kw)


def test_read_top_logprobs_floor_and_surface():
    top = {" A": math.log(0.5), " A.": math.log(0.1), " C": math.log(0.05)}
    result, floored = read_top_logprobs(top, AB, surface_forms(AB))
    assert floored == 1
    assert result.logprobs[0] == pytest.approx(math.log(0.5))
    assert result.logprobs[1] == pytest.approx(math.log(0.05 / 2))   # smallest shown, halved
    surface = surface_logprobs(result.logprobs, result.next_token_logprobs)
    assert surface[0] == pytest.approx(math.log(0.6))
    assert surface[1] == pytest.approx(result.logprobs[1])
    assert result.top_token == " A"


def test_scores_read_from_top_logprobs_in_order(key):
    prompts = [f"item {i} {'[B]' if i % 3 == 0 else ''}\nAnswer:" for i in range(9)]
    with FakeOpenAI() as server:
        b = backend(server, key, concurrency=4)
        results = b.score([ScoreRequest(p, AB) for p in prompts])
    assert len(results) == 9
    for p, r in zip(prompts, results):
        want_b = "[B]" in p
        assert r.logprobs == pytest.approx([math.log(0.2), math.log(0.7)] if want_b else [math.log(0.7), math.log(0.2)])
        assert r.top_token == (" B" if want_b else " A")
    body = server.requests[0]
    assert body["max_tokens"] == 1 and body["logprobs"] == 5 and body["temperature"] == 0
    assert body["model"] == "fake-model"
    assert all(h == f"Bearer {SECRET}" for h in server.auth_headers)
    assert b.describe()["n_floored_items"] == 0


def test_floored_option_is_counted(key):
    with FakeOpenAI() as server:
        b = backend(server, key)
        [r] = b.score([ScoreRequest("q [noB] [A.]\nAnswer:", AB, surface_forms(AB))])
    assert r.logprobs[1] == pytest.approx(math.log(0.01) - math.log(2))   # " A." is the smallest listed
    assert surface_logprobs(r.logprobs, r.next_token_logprobs)[0] == pytest.approx(math.log(0.71))
    d = b.describe()
    assert d["n_floored_items"] == 1 and d["n_floored_options"] == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retry_then_success(key, status):
    with FakeOpenAI(fail=[status]) as server:
        b = backend(server, key, concurrency=1)
        [r] = b.score([ScoreRequest("q [B]\nAnswer:", AB)])
    assert server.statuses == [status, 200]           # the retry happened
    assert b.describe()["n_retries"] == 1
    assert r.top_token == " B"


def test_gives_up_after_max_retries(key):
    import openai
    with FakeOpenAI(fail=[500] * 10) as server:
        b = backend(server, key, max_retries=2)
        with pytest.raises(openai.InternalServerError):
            b.score([ScoreRequest("q\nAnswer:", AB)])
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(key):
    import openai
    with FakeOpenAI(fail=[400]) as server:
        b = backend(server, key)
        with pytest.raises(openai.BadRequestError):
            b.score([ScoreRequest("q\nAnswer:", AB)])
    assert len(server.requests) == 1


def test_model_without_logprobs_is_a_clear_error(key):
    with FakeOpenAI() as server:
        b = backend(server, key, model=NO_LOGPROBS_MODEL)
        with pytest.raises(RuntimeError, match=r"'chat-only' returned no log-probabilities.*cannot be scored"):
            b.score([ScoreRequest("q\nAnswer:", AB)])


def test_generate_uses_stop_and_greedy(key):
    with FakeOpenAI() as server:
        b = backend(server, key)
        [text] = b.generate([GenerateRequest("Question: x\nAnswer:", max_tokens=200)])
    assert text == " Let's think.\nSo the answer is B."
    body = server.requests[0]
    assert body["stop"] == ["\n\n"] and body["max_tokens"] == 200 and body["temperature"] == 0


def test_missing_key_without_base_url_is_an_error(monkeypatch):
    monkeypatch.delenv("NEQA_MISSING_KEY", raising=False)
    with pytest.raises(RuntimeError, match="NEQA_MISSING_KEY"):
        OpenAIBackend("gpt-x", api_key_env="NEQA_MISSING_KEY")


def test_get_backend_finds_openai_and_key_is_never_written(key, tmp_path, capsys):
    """Score through get_backend, write describe() and the scores as the pipeline would, and
    check the key appears neither in the files nor in anything printed."""
    from neqa.io import write_json, write_jsonl
    with FakeOpenAI() as server:
        b = get_backend("openai", model="fake-model", base_url=server.url, api_key_env=key,
                        retry_base_delay=0.01, progress=False)
        results = b.score([ScoreRequest(f"q{i}\nAnswer:", AB) for i in range(3)])
        write_json(tmp_path / "summary.json", b.describe())
        write_jsonl(tmp_path / "items.jsonl", [{"choice_logprobs": r.logprobs, "top": r.top_token} for r in results])
    assert server.auth_headers[0] == f"Bearer {SECRET}"   # the key was used ...
    out = capsys.readouterr()
    for f in tmp_path.iterdir():                        # ... and never written or printed
        assert SECRET not in f.read_text()
    assert SECRET not in out.out + out.err
    assert json.loads((tmp_path / "summary.json").read_text())["model"] == "fake-model"


def test_evaluate_cli_end_to_end_and_key_never_written(key, tmp_path, capsys):
    """`evaluate --backend openai` against the fake server: accuracies follow from the server's rule
    (always " A" for scored prompts, "So the answer is B." for chain of thought), and the key is nowhere."""
    from data_pipeline.schema import load_neqa
    from eval_pipeline.evaluate import main as evaluate
    items = load_neqa("data_pipeline/neqa.jsonl")[:8]
    out = tmp_path / "results"
    with FakeOpenAI() as server:
        rc = evaluate(["--backend", "openai", "--model", "fake-model", "--base-url", server.url,
                       "--api-key-env", key, "--task", "neqa", "--prompt", "zeroshot,fewshot_cot",
                       "--limit", "8", "--output-dir", str(out), "--no-progress"])
    assert rc == 0
    assert server.auth_headers and all(h == f"Bearer {SECRET}" for h in server.auth_headers)
    summaries = {p.parent.name: json.loads(p.read_text()) for p in out.rglob("summary.json")}
    assert summaries["neqa__zeroshot"]["accuracy"] == pytest.approx(sum(it["answer"] == 0 for it in items) / 8)
    assert summaries["neqa__fewshot_cot"]["accuracy"] == pytest.approx(sum(it["answer"] == 1 for it in items) / 8)
    assert summaries["neqa__zeroshot"]["n_items"] == 8
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 4
    for p in written:
        assert SECRET not in p.read_text(errors="replace"), p
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
