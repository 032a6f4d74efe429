"""The OpenAI-compatible backend against a local fake server (tests/fake_openai_server.py)."""
import json
import math

import pytest
from fake_openai_server import CHAT_MODEL, NO_LOGPROBS_MODEL, FakeOpenAI, HFScorer

from eval_pipeline.backends.base import GenerateRequest, ScoreRequest, get_backend
from eval_pipeline.backends.openai_api import APIError, OpenAIBackend, read_echo, read_top_logprobs
from eval_pipeline.metrics import surface_forms, surface_logprobs
from neqa.io import UsageError

SECRET = "sk-test-DO-NOT-WRITE-0123456789"
AB = [" A", " B"]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("NEQA_TEST_KEY", SECRET)
    return "NEQA_TEST_KEY"


def backend(server, key, **kw):
    kw.setdefault("timeout", 10)
    return OpenAIBackend(kw.pop("model", "fake-model"), base_url=server.url, api_key_env=key, progress=False, **kw)


def test_read_top_logprobs_floor_and_surface():
    top = {" A": math.log(0.5), " A.": math.log(0.1), " C": math.log(0.05)}
    result = read_top_logprobs(top, AB, surface_forms(AB))
    assert result.missing_options == 1
    assert result.logprobs[0] == pytest.approx(math.log(0.5))
    assert result.logprobs[1] == pytest.approx(math.log(0.05 / 2))   # smallest shown, halved
    surface = surface_logprobs(result.logprobs, result.next_token_logprobs)
    assert surface[0] == pytest.approx(math.log(0.6))
    assert surface[1] == pytest.approx(result.logprobs[1])
    assert result.top_token == " A"


def test_scores_read_from_top_logprobs_in_order(key):
    prompts = [f"item {i} {'[B]' if i % 3 == 0 else ''}\nAnswer:" for i in range(9)]
    with FakeOpenAI() as server:
        b = backend(server, key, concurrency=4, scoring="top")
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
    assert b.describe()["n_missing_items"] == 0
    assert b.describe()["scoring_path"] == "api-top5"


def test_floored_option_is_counted(key):
    with FakeOpenAI() as server:
        b = backend(server, key, scoring="top")
        [r] = b.score([ScoreRequest("q [noB] [A.]\nAnswer:", AB, surface_forms(AB))])
    assert r.logprobs[1] == pytest.approx(math.log(0.01) - math.log(2))   # " A." is the smallest listed
    assert surface_logprobs(r.logprobs, r.next_token_logprobs)[0] == pytest.approx(math.log(0.71))
    assert r.missing_options == 1
    d = b.describe()
    assert d["n_missing_items"] == 1 and d["n_missing_options"] == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retry_then_success(key, status):
    with FakeOpenAI(fail=[status]) as server:
        b = backend(server, key, concurrency=1, scoring="top")
        [r] = b.score([ScoreRequest("q [B]\nAnswer:", AB)])
    assert server.statuses == [status, 200]           # the client's own retry happened
    assert b.describe()["n_retries"] == 1
    assert r.top_token == " B"


def test_gives_up_after_max_retries(key):
    with FakeOpenAI(fail=[500] * 10) as server:
        b = backend(server, key, max_retries=2, scoring="top")
        with pytest.raises(APIError, match=r"HTTP 500 .*gave up after 2 retries"):
            b.score([ScoreRequest("q\nAnswer:", AB)])
    assert len(server.requests) == 3
    assert b.describe()["n_retries"] == 2


def test_client_errors_are_not_retried(key):
    with FakeOpenAI(fail=[400]) as server:
        b = backend(server, key, scoring="top")
        with pytest.raises(APIError, match=r"HTTP 400 .*gave up after 0 retries"):
            b.score([ScoreRequest("q\nAnswer:", AB)])
    assert len(server.requests) == 1


def test_unreachable_server_is_an_api_error_with_retries(key):
    import socket
    with socket.socket() as s:            # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", api_key_env=key, progress=False,
                      max_retries=1, timeout=2, scoring="top")
    with pytest.raises(APIError, match=r"cannot reach the server.*gave up after 1 retries"):
        b.score([ScoreRequest("q\nAnswer:", AB)])
    assert b.describe()["n_requests"] == 2


def test_timeout_is_an_api_error_with_retries(key):
    with FakeOpenAI(delay=1.5) as server:
        b = backend(server, key, timeout=0.3, max_retries=1, scoring="top")
        with pytest.raises(APIError, match=r"no answer within --timeout 0.3 s \(gave up after 1 retries\)"):
            b.score([ScoreRequest("q\nAnswer:", AB)])
    assert b.describe()["n_requests"] == 2


def test_model_without_logprobs_is_a_clear_error(key):
    with FakeOpenAI() as server:
        b = backend(server, key, model=NO_LOGPROBS_MODEL)
        with pytest.raises(APIError, match=r"'chat-only' answered without log-probabilities.*cannot be scored"):
            b.score([ScoreRequest("q\nAnswer:", AB)])


def test_chat_only_model_is_a_clear_error(key):
    with FakeOpenAI() as server:
        b = backend(server, key, model=CHAT_MODEL)
        with pytest.raises(APIError, match=r"'chat-model' is a chat model .*cannot be scored"):
            b.score([ScoreRequest("q\nAnswer:", AB)])
    assert len(server.requests) == 1   # not retried, not probed twice


def test_multi_word_options_are_refused_by_top_k(key):
    with FakeOpenAI() as server:
        b = backend(server, key, scoring="top")
        with pytest.raises(APIError, match=r"' the salt marsh' is several words"):
            b.score([ScoreRequest("The heron lives in", [" the salt marsh", " a desert"])])
    assert server.requests == []


def test_auto_falls_back_to_top_k_where_echo_is_refused(key, capsys):
    with FakeOpenAI() as server:
        b = backend(server, key, concurrency=2)
        results = b.score([ScoreRequest(f"q{i} [B]\nAnswer:", AB) for i in range(3)])
    assert [r.top_token for r in results] == [" B"] * 3
    assert server.requests[0]["echo"] is True and server.statuses[0] == 400
    assert all(body["max_tokens"] == 1 for body in server.requests[1:]) and len(server.requests) == 4
    assert b.describe()["scoring_path"] == "api-top5"
    assert "does not score prompts by echo" in capsys.readouterr().err


def test_read_echo_sums_the_option_tokens():
    # "Answer:" + " A" + " B" -> tokens "Answer", ":", " A", "B" ; a generated token after the prompt is ignored
    tokens, lps, offsets = ["Answer", ":", " A", "B", " x"], [None, -1.0, -2.0, -0.5, -9.0], [0, 6, 7, 9, 10]
    assert read_echo(tokens, lps, offsets, 7, 10) == (-2.5, 2)
    # a token merged across the boundary (":A" covers the context's ":" and the option's "A") counts for the option
    assert read_echo(["Answer", ":A"], [None, -3.0], [0, 6], 7, 8) == (-3.0, 1)
    with pytest.raises(ValueError, match="empty context"):
        read_echo([" A"], [None], [0], 0, 2)


def test_echo_scores_match_the_hf_backend(key, tiny_model_dir):
    """Exact API scoring: a server computing prompt log-probs with the tiny model gives the HF backend's
    log-probs (letters, and multi-token cloze options) to 1e-4, and the same most likely next token."""
    from eval_pipeline.backends.hf import HFBackend
    requests = [ScoreRequest("Question: x\nA. one\nB. two\nAnswer:", AB),
                ScoreRequest("The heron does not live in the", [" marsh", " open desert sand"]),
                ScoreRequest("So the answer is ", ["A.", "B."])]        # trailing space moves to the option
    with FakeOpenAI(scorer=HFScorer(tiny_model_dir)) as server:
        b = backend(server, key)
        api = b.score(requests)
    hf = HFBackend(str(tiny_model_dir), device="cpu").score(requests)
    assert b.describe()["scoring_path"] == "api-echo"
    assert all(body["echo"] is True and body["max_tokens"] == 0 for body in server.requests)
    assert len(server.requests) == len(requests)                      # one request per item, options batched
    for a, h in zip(api, hf):
        assert a.logprobs == pytest.approx(h.logprobs, abs=1e-4)
        assert a.missing_options is None
    assert api[0].top_token == hf[0].top_token


def test_generate_uses_stop_and_greedy(key):
    with FakeOpenAI() as server:
        b = backend(server, key)
        [text] = b.generate([GenerateRequest("Question: x\nAnswer:", max_tokens=200)])
    assert text == " Let's think.\nSo the answer is B."
    body = server.requests[0]
    assert body["stop"] == ["\n\n"] and body["max_tokens"] == 200 and body["temperature"] == 0


def test_missing_key_without_base_url_is_an_error(monkeypatch):
    monkeypatch.delenv("NEQA_MISSING_KEY", raising=False)
    with pytest.raises(UsageError, match="NEQA_MISSING_KEY"):
        OpenAIBackend("gpt-x", api_key_env="NEQA_MISSING_KEY")


def test_get_backend_finds_openai_and_key_is_never_written(key, tmp_path, capsys):
    """Score through get_backend, write describe() and the scores as the pipeline would, and
    check the key appears neither in the files nor in anything printed."""
    from neqa.io import write_json, write_jsonl
    with FakeOpenAI() as server:
        b = get_backend("openai", model="fake-model", base_url=server.url, api_key_env=key,
                        progress=False)
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


def _neqa_file(path, questions):
    with open(path, "w", encoding="utf-8") as f:
        for i, q in enumerate(questions):
            f.write(json.dumps({"question": q, "choices": ["yes", "no"], "answer": i % 2}) + "\n")
    return str(path)


def _cli(args, key, capsys):
    from eval_pipeline.evaluate import main as evaluate
    rc = evaluate(["--backend", "openai", "--model", "fake-model", "--api-key-env", key, "--no-progress",
                   "--max-retries", "1", "--timeout", "5", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_top5_server_refuses_a_run_of_ties_and_keeps_its_records(key, tmp_path, capsys):
    """A server with only top-5 log-probs and answers outside them: never a silent 0.500."""
    data = _neqa_file(tmp_path / "d.jsonl", [f"q{i} [noAB]" for i in range(10)])
    with FakeOpenAI() as server:
        rc, out, err = _cli(["--base-url", server.url, "--data", data, "--output-dir", str(tmp_path / "r")],
                            key, capsys)
    assert rc == 2 and err.splitlines()[-1].startswith("error:")
    assert "10 of 10 items have every option outside the server's top log-probs" in err
    run = tmp_path / "r" / "fake-model" / "neqa__zeroshot"
    assert not (run / "summary.json").exists() and "accuracy" not in out
    records = [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]
    assert len(records) == 10 and all(r["missing_options"] == 2 for r in records)


def test_top5_server_reports_missing_options_below_the_threshold(key, tmp_path, capsys):
    questions = [f"q{i}" + (" [noAB]" if i == 0 else " [noB]" if i in (1, 2, 3) else "") for i in range(40)]
    data = _neqa_file(tmp_path / "d.jsonl", questions)
    with FakeOpenAI() as server:
        rc, out, err = _cli(["--base-url", server.url, "--data", data, "--output-dir", str(tmp_path / "r"),
                             "--top-logprobs", "5"], key, capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "r" / "fake-model" / "neqa__zeroshot" / "summary.json").read_text())
    assert summary["n_items_missing_options"] == 4 and summary["n_items_undetermined"] == 1
    assert summary["scoring_path"] == "api-top5"
    assert "4 items with an option outside the top log-probs, 1 undetermined" in out


def test_echo_server_through_the_cli_matches_the_hf_backend(key, tmp_path, capsys, tiny_model_dir):
    from eval_pipeline.evaluate import main as evaluate
    args = ["--prompt", "zeroshot,cloze", "--limit", "6", "--no-progress"]
    with FakeOpenAI(scorer=HFScorer(tiny_model_dir)) as server:
        rc, _, err = _cli(["--base-url", server.url, "--output-dir", str(tmp_path / "api"), *args], key, capsys)
    assert rc == 0, err
    assert evaluate(["--model", str(tiny_model_dir), "--member", "fake-model", "--device", "cpu",
                     "--output-dir", str(tmp_path / "hf"), *args]) == 0
    for method in ("zeroshot", "cloze"):
        run = f"fake-model/neqa__{method}"
        api = [json.loads(x) for x in (tmp_path / "api" / run / "items.jsonl").read_text().splitlines()]
        hf = [json.loads(x) for x in (tmp_path / "hf" / run / "items.jsonl").read_text().splitlines()]
        assert len(api) == len(hf) == 6
        for a, h in zip(api, hf):
            assert a["choice_logprobs"] == pytest.approx(h["choice_logprobs"], abs=1e-4)
            assert a["prediction"] == h["prediction"]
        summary = json.loads((tmp_path / "api" / run / "summary.json").read_text())
        assert summary["scoring_path"] == "api-echo" and "n_items_missing_options" not in summary


@pytest.mark.parametrize("case", ["5xx", "unreachable", "timeout", "no-logprobs", "chat"])
def test_api_failures_are_one_line_errors(key, tmp_path, capsys, case):
    import socket
    data = _neqa_file(tmp_path / "d.jsonl", ["q0", "q1"])
    args = ["--data", data, "--output-dir", str(tmp_path / "r")]
    if case == "unreachable":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        rc, _, err = _cli(["--base-url", f"http://127.0.0.1:{port}/v1", *args], key, capsys)
    else:
        server_kw = {"5xx": {"fail": [503] * 20}, "timeout": {"delay": 1.5}}.get(case, {})
        extra = {"timeout": ["--timeout", "0.3"], "no-logprobs": ["--model", NO_LOGPROBS_MODEL],
                 "chat": ["--model", CHAT_MODEL]}.get(case, [])
        with FakeOpenAI(**server_kw) as server:
            rc, _, err = _cli(["--base-url", server.url, *args, *extra], key, capsys)
    assert rc == 2
    lines = [x for x in err.strip().splitlines() if not x.startswith("note: ")]   # auto's note on echo
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    want = {"5xx": "HTTP 503 .*gave up after 1 retries", "unreachable": "cannot reach the server.*after 1 retries",
            "timeout": r"no answer within --timeout 0.3 s \(gave up after 1 retries\)",
            "no-logprobs": "answered without log-probabilities", "chat": "is a chat model"}[case]
    import re
    assert re.search(want, err), err
