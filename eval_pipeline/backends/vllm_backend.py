"""vLLM backend (CUDA): prompt log-probabilities for scoring, greedy generation for chain of thought.

    python -m eval_pipeline.evaluate --backend vllm --model EleutherAI/pythia-1.4b ...

Scoring sends one prompt per (context, option): the context's tokens followed by the option's tokens,
with SamplingParams(max_tokens=1, prompt_logprobs=1). vLLM returns, per prompt position, the log-prob of
the prompt token there (plus the top-1 token); the option's log-prob is the sum over its positions.
vLLM's automatic prefix caching computes a context (and the few-shot header shared by all contexts)
once, so the shared_prefix hint is not needed. Tokenisation is the base class's (TokenizedBackend:
lm-evaluation-harness's rule), so the same token ids are scored as by the HF backend. A requested next
token (ScoreRequest.next_tokens) that is one token is scored as the prompt context + that token.

Parallelism: tensor_parallel_size shards one model over GPUs; data_parallel_size > 1 starts that many
worker processes, each with its own LLM on its own group of tensor_parallel_size GPUs, and splits the
requests between them.
"""
from __future__ import annotations

import os

from eval_pipeline.backends.base import GenerateRequest, ScoreRequest, ScoreResult, TokenizedBackend


def _require_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise ImportError("the vllm backend needs vLLM and a CUDA GPU: pip install vllm "
                          f"(import failed: {e})") from None
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError("the vllm backend needs a CUDA GPU; none is visible")


def _logprob(entry) -> float:
    """A vLLM Logprob object (has .logprob) or a plain number."""
    return float(getattr(entry, "logprob", entry))


def option_logprobs(prompt_logprobs: list, n_context: int, option_ids: list[int]) -> tuple[float, int | None]:
    """(sum of the option tokens' log-probs, the most likely token after the context) from the
    prompt_logprobs of the prompt context + option. prompt_logprobs[i] is None for i = 0, else a dict
    token id -> Logprob holding at least the prompt's own token (and the top-1 token, rank 1)."""
    if len(prompt_logprobs) != n_context + len(option_ids):
        raise ValueError(f"prompt_logprobs has {len(prompt_logprobs)} positions for "
                         f"{n_context} context + {len(option_ids)} option tokens")
    total = 0.0
    for j, token in enumerate(option_ids):
        entries = prompt_logprobs[n_context + j]
        if not entries or token not in entries:
            raise ValueError(f"no log-prob for option token {token} at position {n_context + j}")
        total += _logprob(entries[token])
    first = prompt_logprobs[n_context]
    ranked = [t for t, e in first.items() if getattr(e, "rank", None) == 1]
    top = ranked[0] if ranked else max(first, key=lambda t: _logprob(first[t]))
    return total, top


class _Engine:
    """One LLM in this process."""

    def __init__(self, model, revision, dtype, tensor_parallel_size, seed, max_model_len, gpu_memory_utilization,
                 trust_remote_code):
        from vllm import LLM
        self.llm = LLM(model=model, revision=revision, tokenizer_revision=revision, dtype=dtype,
                       tensor_parallel_size=tensor_parallel_size, seed=seed, max_model_len=max_model_len,
                       gpu_memory_utilization=gpu_memory_utilization, trust_remote_code=trust_remote_code,
                       enable_prefix_caching=True)

    def score(self, prompts: list[list[int]], n_contexts: list[int], options: list[list[int]]):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [option_logprobs(o.prompt_logprobs, n, opt) for o, n, opt in zip(outs, n_contexts, options)]

    def generate(self, prompts: list[list[int]], max_tokens: list[int], stops: list[str]) -> list[str]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        params = [SamplingParams(max_tokens=m, temperature=0.0, stop=[s] if s else None) for m, s in
                  zip(max_tokens, stops)]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [o.outputs[0].text for o in outs]


def _serve(conn, gpus: str, engine_kwargs: dict) -> None:
    """A data-parallel worker: one LLM on `gpus`, answering (method, args) messages until None."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    engine = _Engine(**engine_kwargs)
    conn.send(("ready", None))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        method, args = msg
        try:
            conn.send(("ok", getattr(engine, method)(*args)))
        except Exception as e:   # report to the parent instead of dying silently
            conn.send(("error", repr(e)))


class VLLMBackend(TokenizedBackend):
    def __init__(self, model: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
                 batch_size=None, trust_remote_code: bool = False, tensor_parallel_size: int = 1,
                 data_parallel_size: int = 1, seed: int = 0, max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.85, tokenizer: str | None = None, **_ignored):
        _require_vllm()
        from transformers import AutoTokenizer
        self.model_name, self.revision, self.dtype = str(model), revision, dtype
        self.tensor_parallel_size, self.data_parallel_size = int(tensor_parallel_size), int(data_parallel_size)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or self.model_name, revision=revision,
                                                       trust_remote_code=trust_remote_code)
        self._init_tokenization()
        kwargs = dict(model=self.model_name, revision=revision, dtype=dtype,
                      tensor_parallel_size=self.tensor_parallel_size, seed=seed, max_model_len=max_model_len,
                      gpu_memory_utilization=gpu_memory_utilization, trust_remote_code=trust_remote_code)
        self.engines, self.workers = [], []
        if self.data_parallel_size == 1:
            self.engines = [_Engine(**kwargs)]
        else:
            import multiprocessing as mp

            import torch
            need = self.data_parallel_size * self.tensor_parallel_size
            if torch.cuda.device_count() < need:
                raise RuntimeError(f"data_parallel_size x tensor_parallel_size = {need} GPUs requested, "
                                   f"{torch.cuda.device_count()} visible")
            ctx = mp.get_context("spawn")
            for r in range(self.data_parallel_size):
                gpus = ",".join(str(r * self.tensor_parallel_size + g) for g in range(self.tensor_parallel_size))
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child, gpus, kwargs), daemon=True)
                proc.start()
                self.workers.append((proc, parent))
            for _, conn in self.workers:
                status, _ = conn.recv()
                if status != "ready":
                    raise RuntimeError("a vLLM data-parallel worker failed to start")

    def _map(self, method: str, columns: list[list]) -> list:
        """Run engine.method over the rows given column-wise, split across data-parallel workers."""
        n = len(columns[0])
        if not self.workers:
            return getattr(self.engines[0], method)(*columns)
        k = len(self.workers)
        shards = [(i * n // k, (i + 1) * n // k) for i in range(k)]
        for (a, b), (_, conn) in zip(shards, self.workers):
            conn.send((method, [col[a:b] for col in columns]))
        out = []
        for _, conn in self.workers:
            status, value = conn.recv()
            if status != "ok":
                raise RuntimeError(f"vLLM worker failed: {value}")
            out.extend(value)
        return out

    def score(self, requests: list[ScoreRequest], shared_prefix: str = "") -> list[ScoreResult]:
        ids = self.pairs_ids([(req.context, o) for req in requests for o in req.options])
        prompts, n_contexts, targets = [c + o for c, o in ids], [len(c) for c, _ in ids], [o for _, o in ids]
        plans, k = [], 0
        for req in requests:   # where every option is one token after one context, next tokens are read too
            pairs = ids[k:k + len(req.options)]
            k += len(req.options)
            single = all(c == pairs[0][0] and len(o) == 1 for c, o in pairs)
            next_ids = [self.single_token(t) for t in req.next_tokens] if single and req.next_tokens is not None \
                else None
            for t in next_ids or []:
                if t is not None:
                    prompts.append(pairs[0][0] + [t])
                    n_contexts.append(len(pairs[0][0]))
                    targets.append([t])
            plans.append(next_ids)
        scored = self._map("score", [prompts, n_contexts, targets])
        options, extra = iter(scored[:len(ids)]), iter(scored[len(ids):])
        results = []
        for req, next_ids in zip(requests, plans):
            opts = [next(options) for _ in req.options]
            next_lps = None if next_ids is None else [None if t is None else next(extra)[0] for t in next_ids]
            top = opts[0][1]
            results.append(ScoreResult([lp for lp, _ in opts], None if top is None else self.tokenizer.decode([top]),
                                       next_lps))
        return results

    def generate(self, requests: list[GenerateRequest], shared_prefix: str = "") -> list[str]:
        ids = [self.start + x for x in self.encode_many([r.context for r in requests])]
        out = self._map("generate", [ids, [r.max_tokens for r in requests], [r.stop for r in requests]])
        return [text.split(r.stop)[0] if r.stop else text for text, r in zip(out, requests)]

    def describe(self) -> dict:
        return {"model": self.model_name, "revision": self.revision, "dtype": self.dtype, "n_params": None,
                "scoring_path": "vllm-prompt-logprobs", "tensor_parallel_size": self.tensor_parallel_size,
                "data_parallel_size": self.data_parallel_size}

    def close(self) -> None:
        for proc, conn in getattr(self, "workers", []):
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=30)
        self.workers = []

    def __del__(self):
        self.close()
