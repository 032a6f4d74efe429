"""OpenAI-compatible completions backend (OpenAI, vLLM/llama.cpp/TGI servers with /v1/completions).

Two ways to score a request, tried in this order (`scoring="auto"`; "echo" or "top" force one):

echo  exact, as lm-evaluation-harness scores API models: one request per item whose prompts are
      context + option for each option, with echo=True, max_tokens=0, logprobs=1. The server returns the
      log-probability of every prompt token; an option's log-prob is the sum over its tokens (the tokens
      starting at or after the end of the context, plus one that straddles it). Multi-token options
      (cloze, prize classes) are exact too. Path "api-echo".
top   the paper's 2022 reading: max_tokens=1, logprobs=K, and log p(" A"), log p(" B") looked up in the
      first answer token's top-K. Path "api-topK". An option missing from the top-K gets
      (smallest top-K log-prob) - log 2: an upper bound, halved, of its true log-prob. With at most one
      option missing the prediction is still exact (every shown option beats a missing one); with two or
      more missing their order is unknown and they tie. Each result carries `missing_options`; evaluate
      prints and stores the counts and refuses a run where too many items are undetermined
      (eval_pipeline.metrics.MAX_UNDETERMINED_SHARE). Options that are several words can never be one
      token and are refused at once: use a server that supports echo.

"auto" probes echo on the first request; a server that rejects it (400/404/422, or answers without
prompt log-probs) is scored by "top" instead, and describe()["scoring_path"] says which ran.

HTTP retries are the openai client's own (`max_retries`, exponential back-off with jitter, Retry-After
honoured); requests and retries are counted from the HTTP requests actually sent. A failure that
survives them (persistent 5xx, unreachable server, timeout), a chat-only model, or a response without
log-probabilities raises APIError (a DataError naming the server) with the retry count.

The API key is read from the environment (OPENAI_API_KEY or the variable named by api_key_env) and is
never logged or returned by describe().
"""
from __future__ import annotations

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from neqa.io import DataError, UsageError

from .base import Backend, GenerateRequest, ScoreRequest, ScoreResult

LOG2 = math.log(2.0)
SCORING = ("auto", "echo", "top")


class APIError(DataError):
    """The API could not answer (after the client's retries), or answered without what scoring needs."""

    def __init__(self, where: str, message: str):
        super().__init__(where, None, None, message)


def read_top_logprobs(top: dict[str, float], options: list[str], next_tokens: list[str | None] | None = None
                      ) -> ScoreResult:
    """ScoreResult from one position's top-K {token: logprob} (missing_options = how many were floored).
    A requested next token not in the top-K has no log-prob (None).

    Pure function: the scoring rule without any HTTP."""
    if not top:
        raise ValueError("empty top_logprobs")
    floor = min(top.values()) - LOG2
    logprobs = [float(top[opt]) if opt in top else floor for opt in options]
    next_lps = None if next_tokens is None else [float(top[t]) if t in top else None for t in next_tokens]
    return ScoreResult(logprobs=logprobs, top_token=max(top, key=top.get), next_token_logprobs=next_lps,
                       missing_options=sum(opt not in top for opt in options))


def read_echo(tokens: list[str], token_logprobs: list, offsets: list[int], context_len: int, prompt_len: int
              ) -> tuple[float, int]:
    """(sum of the option's token log-probs, index of its first token) from an echoed prompt.

    The option is the text from context_len to prompt_len; its tokens are those starting at or after
    context_len, plus a token that starts before and ends after it (merged across the boundary).
    Tokens at or after prompt_len (a server that also generated) are ignored. Pure function."""
    first = None
    for k, (tok, off) in enumerate(zip(tokens, offsets)):
        if off >= prompt_len:
            break
        if off >= context_len or off + len(tok) > context_len:
            first = k
            break
    if first is None:
        raise ValueError("the echoed tokens do not reach the option")
    total = 0.0
    for k in range(first, len(tokens)):
        if offsets[k] >= prompt_len:
            break
        lp = token_logprobs[k]
        if lp is None:      # the prompt's first token has no log-prob: the context was empty
            raise ValueError("the option starts the prompt; an empty context cannot be scored by echo")
        total += float(lp)
    return total, first


def _top_dict(top) -> dict[str, float]:
    if not isinstance(top, dict):   # some servers send [{"token": ..., "logprob": ...}, ...]
        top = {t["token"]: t["logprob"] for t in top}
    return {str(k): float(v) for k, v in top.items()}


class _EchoUnsupported(Exception):
    pass


class OpenAIBackend(Backend):
    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, max_retries: int = 6, timeout: float = 60.0, top_logprobs: int = 5,
                 scoring: str = "auto", progress: bool = True, revision: str | None = None, **_ignored):
        import openai  # imported here so that the hf backend never needs the package

        if revision not in (None, "", "main"):
            raise UsageError(f"the openai backend cannot load revision {revision!r} of {model!r}")
        if scoring not in SCORING:
            raise ValueError(f"unknown API scoring {scoring!r}; choose from {', '.join(SCORING)}")
        if int(top_logprobs) < 1:
            raise ValueError(f"top_logprobs must be at least 1, got {top_logprobs}")
        key = os.environ.get(api_key_env)
        if not key:
            if base_url is None:
                raise UsageError(f"set the environment variable {api_key_env} to your API key "
                                   "(or name another variable with --api-key-env)")
            key = "EMPTY"  # local OpenAI-compatible servers usually accept any key
        self.model, self.base_url = model, base_url
        self.where = base_url or "the OpenAI API"
        self.concurrency, self.max_retries, self.timeout = max(1, int(concurrency)), int(max_retries), float(timeout)
        self.top_logprobs, self.scoring = int(top_logprobs), scoring
        self.progress = progress
        self._openai = openai
        self._lock = threading.Lock()
        self.n_calls = self.n_requests = 0
        self.n_missing_items = self.n_missing_options = 0

        def count(_request):
            with self._lock:
                self.n_requests += 1
        http = openai.DefaultHttpxClient(event_hooks={"request": [count]})   # the client's defaults, counted
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=self.timeout,
                                     max_retries=self.max_retries, http_client=http)

    @property
    def n_retries(self) -> int:
        return max(0, self.n_requests - self.n_calls)

    # -- HTTP ----------------------------------------------------------------------------------------
    def _create(self, **kwargs):
        """One completions call; the client retries 429/5xx/timeouts/connection errors itself."""
        o = self._openai
        with self._lock:
            self.n_calls += 1
        try:
            return self._client.completions.create(model=self.model, temperature=0, **kwargs)
        except o.APITimeoutError:
            raise APIError(self.where, f"no answer within --timeout {self.timeout:g} s "
                                       f"(gave up after {self.max_retries} retries)") from None
        except o.APIConnectionError as e:
            raise APIError(self.where, f"cannot reach the server ({e.__cause__ or e}); "
                                       f"gave up after {self.max_retries} retries") from None
        except o.APIStatusError as e:
            message = _error_message(e)
            if e.status_code in (400, 404) and "chat" in message.lower():
                raise APIError(self.where, f"model {self.model!r} is a chat model ({message}); chat completions "
                                           "give no log-probabilities of given options, so it cannot be "
                                           "scored: use a completions model or server") from None
            if kwargs.get("echo") and e.status_code in (400, 404, 422):
                raise _EchoUnsupported(message) from None
            retried = self.max_retries if e.status_code >= 500 or e.status_code in (408, 409, 429) else 0
            raise APIError(self.where, f"HTTP {e.status_code} from the server ({message}); "
                                       f"gave up after {retried} retries") from None

    def _imap(self, fn, items, desc):
        # ThreadPoolExecutor.map keeps input order, whatever order the answers arrive in, and yields each
        # answer as soon as it and those before it are in; a failure cancels the requests not yet sent.
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            yield from tqdm(pool.map(fn, items), total=len(items), desc=desc, leave=False,
                            disable=not self.progress or len(items) < 2)

    def _map(self, fn, items, desc):
        return list(self._imap(fn, items, desc))


    def generate_iter(self, requests: list[GenerateRequest], shared_prefix: str = ""):
        return self._imap(self._generate_one, list(requests), f"generate {self.model}")

    def _no_logprobs(self) -> APIError:
        return APIError(self.where, f"model {self.model!r} answered without log-probabilities; scoring reads "
                                    "them, so this model cannot be scored (use a completions model/server "
                                    "that supports `logprobs`)")

    # -- scoring ---------------------------------------------------------------------------------------
    def _score_echo(self, req: ScoreRequest) -> ScoreResult:
        n_spaces = len(req.context) - len(req.context.rstrip(" "))
        context_len = len(req.context) - n_spaces   # trailing spaces belong to the option (as in hf.py)
        prompts = [req.context + opt for opt in req.options]
        response = self._create(prompt=prompts, echo=True, max_tokens=0, logprobs=1)
        by_index = {getattr(c, "index", i): c for i, c in enumerate(response.choices or [])}
        logprobs, top_token = [], None
        for i, prompt in enumerate(prompts):
            lp = getattr(by_index.get(i), "logprobs", None)
            tokens = getattr(lp, "tokens", None)
            token_lps = getattr(lp, "token_logprobs", None)
            offsets = getattr(lp, "text_offset", None)
            if not tokens or not token_lps or offsets is None or len(token_lps) < len(tokens) \
                    or all(x is None for x in token_lps):
                raise _EchoUnsupported("no prompt log-probabilities in the answer")
            try:
                total, first = read_echo(tokens, token_lps, offsets, context_len, len(prompt))
            except ValueError as e:
                raise APIError(self.where, f"cannot score option {req.options[i]!r} by echo: {e}") from None
            logprobs.append(total)
            tops = getattr(lp, "top_logprobs", None)
            if i == 0 and tops and len(tops) > first and tops[first]:
                top = _top_dict(tops[first])
                top_token = max(top, key=top.get)
        return ScoreResult(logprobs=logprobs, top_token=top_token)

    def _score_top(self, req: ScoreRequest) -> ScoreResult:
        several = [o for o in req.options if len(o.split()) > 1]
        if several:
            raise APIError(self.where, f"option {several[0]!r} is several words; the server gives only its top "
                             f"{self.top_logprobs} next tokens, so it cannot be scored (cloze and multi-word "
                             "classes need a server that supports echo: --api-scoring echo)")
        response = self._create(prompt=req.context, max_tokens=1, logprobs=self.top_logprobs)
        choice = response.choices[0] if response.choices else None
        lp = getattr(choice, "logprobs", None)
        top_list = getattr(lp, "top_logprobs", None) if lp is not None else None
        if not top_list or not top_list[0]:
            raise self._no_logprobs()
        result = read_top_logprobs(_top_dict(top_list[0]), req.options, req.next_tokens)
        if result.missing_options:
            with self._lock:
                self.n_missing_items += 1
                self.n_missing_options += result.missing_options
        return result

    def _probe(self, req: ScoreRequest) -> ScoreResult:
        """Settle "auto" on the first request: echo if the server answers it, else top-K."""
        try:
            result = self._score_echo(req)
            self.scoring = "echo"
            return result
        except _EchoUnsupported as e:
            print(f"note: {self.where} does not score prompts by echo ({e}); reading the top "
                  f"{self.top_logprobs} log-probs of the answer token instead", file=sys.stderr)
            self.scoring = "top"
            return self._score_top(req)

    def _score_one(self, req: ScoreRequest) -> ScoreResult:
        if self.scoring == "top":
            return self._score_top(req)
        try:
            return self._score_echo(req)
        except _EchoUnsupported as e:
            raise APIError(self.where, f"echo scoring failed ({e}); try --api-scoring top") from None

    def score_iter(self, requests: list[ScoreRequest], shared_prefix: str = ""):
        # shared_prefix is not used: an API request always carries the whole prompt.
        requests = list(requests)
        if requests and self.scoring == "auto":
            yield self._probe(requests[0])
            requests = requests[1:]
        yield from self._imap(self._score_one, requests, f"score {self.model}")

    def score(self, requests: list[ScoreRequest], shared_prefix: str = "") -> list[ScoreResult]:
        return list(self.score_iter(requests, shared_prefix))

    def _generate_one(self, req: GenerateRequest) -> str:
        response = self._create(prompt=req.context, max_tokens=req.max_tokens, stop=[req.stop])
        text = response.choices[0].text or ""
        return text.split(req.stop)[0] if req.stop else text

    def generate(self, requests: list[GenerateRequest], shared_prefix: str = "") -> list[str]:
        return self._map(self._generate_one, list(requests), f"generate {self.model}")

    def describe(self) -> dict:
        path = {"echo": "api-echo", "top": f"api-top{self.top_logprobs}"}.get(self.scoring, "api")
        return {"model": self.model, "revision": None, "dtype": None, "n_params": None,
                "scoring_path": path, "base_url": self.base_url,
                "n_requests": self.n_requests, "n_retries": self.n_retries,
                "n_missing_items": self.n_missing_items, "n_missing_options": self.n_missing_options}


def _error_message(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(e, "message", "") or e)
