"""OpenAI-compatible completions backend (OpenAI, vLLM/llama.cpp/TGI servers with /v1/completions).

Scoring reads the first answer token's top-K log-probabilities, as the paper did with the 2022 API:
one request per item with max_tokens=1, logprobs=K, temperature=0, and log p(" A"), log p(" B") looked up
in `choices[0].logprobs.top_logprobs[0]`.

Floor rule: an option missing from the top-K gets (smallest top-K log-prob) - log 2, i.e. half the probability
of the least likely token shown — an upper bound halved, since its true log-prob is below every listed one.
Such options are counted (describe()["n_floored_items"]); if both options are floored they tie.
Options must be single tokens (the letters " A"/" B" are); the API gives no log-probability for longer text.

The API key is read from the environment (OPENAI_API_KEY or the variable named by api_key_env) and is
never logged or returned by describe().
"""
from __future__ import annotations

import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from .base import Backend, GenerateRequest, ScoreRequest, ScoreResult

LOG2 = math.log(2.0)


def _logaddexp(a: float, b: float) -> float:
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def read_top_logprobs(top: dict[str, float], options: list[str]) -> tuple[ScoreResult, int]:
    """ScoreResult from one position's top-K {token: logprob}; also the number of floored options.

    Pure function: the scoring rule without any HTTP."""
    if not top:
        raise ValueError("empty top_logprobs")
    floor = min(top.values()) - LOG2
    logprobs, floored = [], 0
    for opt in options:
        if opt in top:
            logprobs.append(float(top[opt]))
        else:
            logprobs.append(floor)
            floored += 1
    surface = [_logaddexp(lp, top[opt + "."]) if opt + "." in top else lp for lp, opt in zip(logprobs, options)]
    top_token = max(top, key=top.get)
    return ScoreResult(logprobs=logprobs, top_token=top_token, surface_logprobs=surface), floored


class OpenAIBackend(Backend):
    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, max_retries: int = 6, timeout: float = 60.0, top_logprobs: int = 5,
                 retry_base_delay: float = 1.0, retry_max_delay: float = 60.0, progress: bool = True,
                 revision: str | None = None, **_ignored):
        import openai  # imported here so that the hf backend never needs the package

        if revision not in (None, "", "main"):
            raise ValueError(f"the openai backend cannot load revision {revision!r} of {model!r}")
        key = os.environ.get(api_key_env)
        if not key:
            if base_url is None:
                raise RuntimeError(f"set the environment variable {api_key_env} to your API key "
                                   "(or name another variable with --api-key-env)")
            key = "EMPTY"  # local OpenAI-compatible servers usually accept any key
        self.model, self.base_url = model, base_url
        self.concurrency, self.max_retries = max(1, int(concurrency)), int(max_retries)
        self.top_logprobs = int(top_logprobs)
        self.retry_base_delay, self.retry_max_delay = retry_base_delay, retry_max_delay
        self.progress = progress
        self._openai = openai
        # The client's own retries are off: ours are counted, jittered and configurable.
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)
        self._lock = threading.Lock()
        self._rng = random.Random(0)
        self.n_requests = self.n_retries = self.n_floored_items = self.n_floored_options = 0

    # -- HTTP with retries -------------------------------------------------------------------------
    def _retryable(self, e: Exception) -> bool:
        o = self._openai
        if isinstance(e, (o.RateLimitError, o.APITimeoutError, o.APIConnectionError)):
            return True
        return isinstance(e, o.APIStatusError) and e.status_code >= 500

    def _delay(self, attempt: int, e: Exception) -> float:
        with self._lock:
            jitter = self._rng.uniform(0.5, 1.0)
        delay = min(self.retry_max_delay, self.retry_base_delay * 2 ** attempt) * jitter
        response = getattr(e, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        try:
            delay = max(delay, min(self.retry_max_delay, float(retry_after)))
        except (TypeError, ValueError):
            pass
        return delay

    def _create(self, **kwargs):
        for attempt in range(self.max_retries + 1):
            try:
                with self._lock:
                    self.n_requests += 1
                return self._client.completions.create(model=self.model, temperature=0, **kwargs)
            except Exception as e:  # noqa: BLE001 - re-raised unless retryable
                if not self._retryable(e) or attempt == self.max_retries:
                    raise
                with self._lock:
                    self.n_retries += 1
                time.sleep(self._delay(attempt, e))
        raise AssertionError("unreachable")

    def _imap(self, fn, items, desc):
        # ThreadPoolExecutor.map keeps input order, whatever order the answers arrive in, and yields each
        # answer as soon as it and those before it are in; a failure cancels the requests not yet sent.
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            yield from tqdm(pool.map(fn, items), total=len(items), desc=desc, leave=False,
                            disable=not self.progress or len(items) < 2)

    def _map(self, fn, items, desc):
        return list(self._imap(fn, items, desc))

    def score_iter(self, requests: list[ScoreRequest], shared_prefix: str = ""):
        return self._imap(self._score_one, list(requests), f"score {self.model}")

    def generate_iter(self, requests: list[GenerateRequest], shared_prefix: str = ""):
        return self._imap(self._generate_one, list(requests), f"generate {self.model}")

    # -- Backend interface -------------------------------------------------------------------------
    def _score_one(self, req: ScoreRequest) -> ScoreResult:
        response = self._create(prompt=req.context, max_tokens=1, logprobs=self.top_logprobs)
        choice = response.choices[0] if response.choices else None
        lp = getattr(choice, "logprobs", None)
        top_list = getattr(lp, "top_logprobs", None) if lp is not None else None
        if not top_list or not top_list[0]:
            raise RuntimeError(f"model {self.model!r} returned no log-probabilities; the paper's scoring reads "
                               "the top log-probabilities of the first answer token, so this model cannot be "
                               "scored (use a completions model/server that supports `logprobs`)")
        top = top_list[0]
        if not isinstance(top, dict):  # some servers send [{"token": ..., "logprob": ...}, ...]
            top = {t["token"]: t["logprob"] for t in top}
        result, floored = read_top_logprobs({str(k): float(v) for k, v in top.items()}, req.options)
        if floored:
            with self._lock:
                self.n_floored_items += 1
                self.n_floored_options += floored
        return result

    def score(self, requests: list[ScoreRequest], shared_prefix: str = "") -> list[ScoreResult]:
        # shared_prefix is not used: an API request always carries the whole prompt.
        return self._map(self._score_one, list(requests), f"score {self.model}")

    def _generate_one(self, req: GenerateRequest) -> str:
        response = self._create(prompt=req.context, max_tokens=req.max_tokens, stop=[req.stop])
        text = response.choices[0].text or ""
        return text.split(req.stop)[0] if req.stop else text

    def generate(self, requests: list[GenerateRequest], shared_prefix: str = "") -> list[str]:
        return self._map(self._generate_one, list(requests), f"generate {self.model}")

    def describe(self) -> dict:
        return {"model": self.model, "revision": None, "dtype": None, "n_params": None,
                "scoring_path": f"api-top{self.top_logprobs}", "base_url": self.base_url,
                "n_requests": self.n_requests, "n_retries": self.n_retries,
                "n_floored_items": self.n_floored_items, "n_floored_options": self.n_floored_options}
