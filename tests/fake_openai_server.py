"""A tiny OpenAI-compatible /v1/completions server for tests (stdlib only, 127.0.0.1, random port).

    with FakeOpenAI(fail=[429, 500]) as server:       # the first two requests fail with these statuses
        OpenAIBackend("fake", base_url=server.url)

Log-probabilities are a pure function of the prompt, so tests can know the right answer independently:
a prompt containing "[B]" prefers " B" (log p = log 0.7) over " A" (log 0.2); otherwise " A" is preferred.
"[A.]" adds a " A." token; "[noB]" leaves " B" out of the top-K, "[noAB]" leaves both out. The model named
"chat-only" answers without logprobs; the model "chat-model" gets OpenAI's 404 for chat models.

Without `scorer` the server offers only the top-K reading and refuses echo=True with a 400 (as OpenAI's
newer completions models do). With `scorer=HFScorer(model_dir)` it answers echo=True, max_tokens=0
requests (one prompt or a list) with every prompt token's log-prob computed by that Hugging Face model,
the way a vLLM server does. `delay` seconds are slept before each answer (timeouts). The server refuses
requests beyond `max_requests` and shuts itself down after `lifetime` s.
"""
from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NO_LOGPROBS_MODEL = "chat-only"
CHAT_MODEL = "chat-model"


class HFScorer:
    """Echoed prompt log-probs from a (tiny) Hugging Face causal LM: a model server stand-in."""

    def __init__(self, model_dir):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self._lock = threading.Lock()

    def echo(self, prompt: str, k: int) -> dict:
        import torch
        enc = self.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids, spans = enc["input_ids"], enc["offset_mapping"]
        with self._lock, torch.no_grad():
            logits = self.model(torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        tokens = [prompt[a:b] for a, b in spans]
        token_logprobs, top = [None], [None]
        for i in range(1, len(ids)):
            token_logprobs.append(float(logp[i - 1, ids[i]]))
            values, index = logp[i - 1].topk(max(1, k))
            top.append({self.tokenizer.decode([int(j)]): float(v) for v, j in zip(values, index)})
        return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top,
                "text_offset": [a for a, _ in spans]}


def top_logprobs_for(prompt: str) -> dict[str, float]:
    hi, lo = math.log(0.7), math.log(0.2)
    top = {" A": hi, " B": lo} if "[B]" not in prompt else {" A": lo, " B": hi}
    top.update({" C": math.log(0.04), "\n": math.log(0.03), " The": math.log(0.02)})
    if "[A.]" in prompt:
        top[" A."] = math.log(0.01)
    if "[noB]" in prompt or "[noAB]" in prompt:
        del top[" B"]
    if "[noAB]" in prompt:
        del top[" A"]
    return top


class FakeOpenAI:
    def __init__(self, fail: list[int] | None = None, max_requests: int = 200, lifetime: float = 60.0,
                 generation: str = " Let's think.\nSo the answer is B.\n\nQuestion: more",
                 scorer: HFScorer | None = None, delay: float = 0.0):
        self.fail = list(fail or [])
        self.scorer, self.delay = scorer, delay
        self.max_requests, self.lifetime, self.generation = max_requests, lifetime, generation
        self.requests: list[dict] = []      # JSON bodies, in arrival order
        self.auth_headers: list[str] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):   # the client gave up (a timeout test)
                    return
                with fake._lock:
                    fake.statuses.append(status)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.auth_headers.append(self.headers.get("Authorization", ""))
                    n = len(fake.requests)
                    status = fake.fail.pop(0) if fake.fail else 200
                if self.path.rstrip("/") != "/v1/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if n > fake.max_requests:
                    return self._send(400, {"error": {"message": "fake server: too many requests"}})
                if status != 200:
                    # retry-after-ms keeps the client's retries fast in tests
                    return self._send(status, {"error": {"message": f"fake {status}", "type": "fake"}},
                                      {"retry-after-ms": "5"})
                if fake.delay:
                    time.sleep(fake.delay)
                if body.get("model") == CHAT_MODEL:
                    return self._send(404, {"error": {"message": "This is a chat model and not supported in the "
                                                      "v1/completions endpoint. Did you mean to use "
                                                      "v1/chat/completions?", "type": "invalid_request_error"}})
                prompt = body.get("prompt", "")
                if body.get("echo"):
                    if fake.scorer is None:
                        return self._send(400, {"error": {"message": "Setting 'echo' and 'logprobs' at the same "
                                                          "time is not supported for this model.",
                                                          "type": "invalid_request_error"}})
                    prompts = prompt if isinstance(prompt, list) else [prompt]
                    choices = [{"text": p, "index": i, "finish_reason": "length",
                                "logprobs": fake.scorer.echo(p, int(body.get("logprobs") or 0))}
                               for i, p in enumerate(prompts)]
                    return self._send(200, {"id": f"cmpl-{n}", "object": "text_completion", "created": 0,
                                            "model": body.get("model"), "choices": choices})
                if body.get("max_tokens") == 1:
                    top = top_logprobs_for(prompt)
                    best = max(top, key=top.get)
                    text, logprobs = best, {"tokens": [best], "token_logprobs": [top[best]],
                                            "top_logprobs": [top], "text_offset": [len(prompt)]}
                else:
                    text, logprobs = fake.generation, None
                    for s in body.get("stop") or []:
                        text = text.split(s)[0]
                if body.get("model") == NO_LOGPROBS_MODEL:
                    logprobs = None
                self._send(200, {"id": f"cmpl-{n}", "object": "text_completion", "created": 0,
                                 "model": body.get("model"),
                                 "choices": [{"text": text, "index": 0, "logprobs": logprobs,
                                              "finish_reason": "length"}]})

        return Handler

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self._server.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
