"""What a backend answers: score continuations, generate text, describe itself.

Tasks turn items into requests, backends answer requests, metrics read answers.
A new backend is one small file implementing `Backend`; `get_backend` finds it by name.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class ScoreRequest:
    context: str            # prompt up to the answer position, e.g. "...\nAnswer:"
    options: list[str]      # continuations, e.g. [" A", " B"]; multi-token options are scored as summed log-probs


@dataclass
class ScoreResult:
    logprobs: list[float]                          # log p(option | context), per option
    top_token: str | None = None                   # most likely single next token (strict accuracy)
    surface_logprobs: list[float] | None = None    # per option: log(p(opt) + p(opt + ".")) over single next tokens
    missing_options: int | None = None             # top-K reading only: options not in the list (their log-prob is a bound)


@dataclass
class GenerateRequest:
    context: str
    max_tokens: int = 200
    stop: str = "\n\n"


class Backend(ABC):
    """A language model that scores and generates. Implementations keep request order."""

    @abstractmethod
    def score(self, requests: list[ScoreRequest], shared_prefix: str = "") -> list[ScoreResult]:
        """One ScoreResult per request, in order. `shared_prefix` is text every context starts
        with (e.g. the few-shot header); a backend may compute it once, or ignore it."""

    @abstractmethod
    def generate(self, requests: list[GenerateRequest], shared_prefix: str = "") -> list[str]:
        """Greedy continuation of each context (without the context), cut at `stop` (exclusive)."""

    def score_iter(self, requests: list[ScoreRequest], shared_prefix: str = ""):
        """score(), one result at a time in request order, each as soon as it is known, so that a caller can
        save what is done before a failure. This default scores all requests at once."""
        yield from self.score(requests, shared_prefix)

    def generate_iter(self, requests: list[GenerateRequest], shared_prefix: str = ""):
        """generate(), one text at a time in request order (see score_iter)."""
        yield from self.generate(requests, shared_prefix)

    @abstractmethod
    def describe(self) -> dict:
        """model, revision, dtype, n_params, scoring_path ("prefix-cache", "plain", "api", ...)."""


BACKENDS = {
    "hf": "eval_pipeline.backends.hf:HFBackend",
    "openai": "eval_pipeline.backends.openai_api:OpenAIBackend",
    "vllm": "eval_pipeline.backends.vllm_backend:VLLMBackend",
}


def get_backend(name: str, **kwargs) -> Backend:
    """Backend by name, imported lazily so that e.g. `openai` is only needed when used."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
