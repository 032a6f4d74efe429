"""What a backend answers: score continuations, generate text, describe itself.

Tasks turn items into requests, backends answer requests, metrics read answers.
A new backend is one small file implementing `Backend`; `get_backend` finds it by name.
Backends with a local tokenizer (hf, vllm) inherit the tokenisation rule from `TokenizedBackend`,
so both score the same token ids.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class ScoreRequest:
    context: str            # prompt up to the answer position, e.g. "...\nAnswer:"
    options: list[str]      # continuations, e.g. [" A", " B"]; multi-token options are scored as summed log-probs
    # texts wanted only as one next token after the context, e.g. [" A.", " B."] (None: none wanted)
    next_tokens: list[str | None] | None = None


@dataclass
class ScoreResult:
    logprobs: list[float]                          # log p(option | context), per option
    top_token: str | None = None                   # most likely single next token (strict accuracy)
    # per request.next_tokens entry: its log-prob as the next token, None where that text is not one token;
    # the whole list None where the backend reads no next tokens (options of several tokens)
    next_token_logprobs: list[float | None] | None = None
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


class TokenizedBackend(Backend):
    """The tokenisation rule of lm-evaluation-harness, written once for every backend with a local tokenizer.

    - a context's trailing spaces belong to the option ("Answer: " + "A" is scored as "Answer:" + " A");
    - option tokens = tokens(context + option) minus tokens(context), so a merge across the boundary
      goes to the option (where the whole is not longer than the context, the option alone);
    - BOS is put first only where the tokenizer adds it by default (Llama; GPT-2 and Pythia add nothing);
    - an empty context is conditioned on the end-of-text token.
    Subclasses set self.tokenizer and call self._init_tokenization()."""

    tokenizer = None

    def _init_tokenization(self) -> None:
        tok = self.tokenizer
        bos = tok.bos_token_id
        self.start = [bos] if bos is not None and tok("a")["input_ids"][:1] == [bos] else []
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else (
            tok.eos_token_id if tok.eos_token_id is not None else 0)
        self._single_cache: dict[str, int | None] = {}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []

    def with_start(self, ids: list[int]) -> list[int]:
        ids = self.start + ids
        if not ids:   # empty context: condition on the end-of-text token, as lm-evaluation-harness does
            ids = [self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.pad_id]
        return ids

    def context_ids(self, context: str) -> list[int]:
        return self.with_start(self.encode(context))

    @staticmethod
    def split(context: str, option: str) -> tuple[str, str]:
        """Trailing spaces of the context belong to the option (as in lm-evaluation-harness)."""
        n_spaces = len(context) - len(context.rstrip())
        return (context[:-n_spaces], context[-n_spaces:] + option) if n_spaces else (context, option)

    def pairs_ids(self, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context tokens, option tokens) per (context, option), tokenised in two batched calls."""
        pairs = [self.split(c, o) for c, o in pairs]
        contexts = sorted({c for c, _ in pairs})
        ctx_ids = dict(zip(contexts, (self.with_start(x) for x in self.encode_many(contexts))))
        wholes = self.encode_many([c + o for c, o in pairs])
        out = []
        for (c, o), whole in zip(pairs, wholes):
            ctx, whole = ctx_ids[c], self.start + whole
            opt = whole[len(ctx):] if len(whole) > len(ctx) else self.encode(o)
            if not opt:
                raise ValueError(f"option {o!r} encodes to no tokens")
            out.append((ctx, opt))
        return out

    def single_token(self, text: str | None) -> int | None:
        """The id of `text` where it is exactly one token, else None."""
        if not text:
            return None
        if text not in self._single_cache:
            ids = self.encode(text)
            self._single_cache[text] = ids[0] if len(ids) == 1 else None
        return self._single_cache[text]


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
