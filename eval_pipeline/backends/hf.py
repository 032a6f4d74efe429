"""Hugging Face causal language models (local folder or hub id, or a quantised GGUF file: gguf.py), on CPU or CUDA.

Built for speed without giving up exactness (scores equal an unbatched full forward pass):
- the output layer is applied only at the positions read, never to full sequence x vocabulary logits;
- options that are single tokens (" A", " B") are read from one forward pass over the context;
  multi-token options get one row per option, their token log-probs summed;
- the output layer runs once per group of about READ_GROUP read positions, gathered over batches: with
  few rows its cost is reading the (vocab x width) weights from memory, not the arithmetic;
- shared-prefix reuse: the tokens every context starts with (the few-shot header) are run once, and each
  batch runs only the suffixes. A request whose tokens do not start with the prefix's tokens (the
  tokenizer merged across the boundary) runs without the prefix cache, so results never depend on it;
- packed batches (packed.py): a batch's suffixes laid end to end in one row, so the linear layers see no
  padding; where a two-row probe shows the model does not allow it, padded batches are used
  (path "...-padded": right padding, explicit position ids and attention mask, the prefix cache
  expanded to the batch);
- rows are sorted by length (longest first) and batched; the original order is restored;
  batch_size="auto" halves on CUDA out-of-memory, and picks 8..32 from the sequence length on CPU;
  on CPU a padded batch (at most batch_size rows) also ends where padding would pass 10% of its tokens;
- GPT-2's "gelu_new" activation (a chain of Python-level tensor ops) runs as torch's fused
  gelu(approximate="tanh"): the same formula, equal up to float rounding, about 15% of a CPU forward pass.

Tokenisation is the base class's (TokenizedBackend: lm-evaluation-harness's rule).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from eval_pipeline.backends.base import GenerateRequest, ScoreRequest, ScoreResult, TokenizedBackend
from eval_pipeline.backends.gguf import dequantised, is_gguf
from eval_pipeline.backends.packed import probe_rows, register_packed_attention, run_packed, run_probed
from neqa.device import n_params, resolve_device, resolve_dtype
from neqa.io import UsageError
from neqa.maths import common_length

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def fuse_activations(model: torch.nn.Module) -> int:
    """Replace NewGELUActivation modules by the fused GELUTanh in place; returns how many were replaced."""
    from transformers.activations import GELUTanh, NewGELUActivation
    n = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is NewGELUActivation:
                setattr(module, name, GELUTanh())
                n += 1
    return n


PAD_SLACK, MIN_BATCH_TOKENS = 0.1, 256
READ_GROUP = 512   # read positions per output-layer pass
STOP_SLACK = 4     # tokens decoded beyond the stop text's length when looking for it


def cpu_batch_size(lengths: list[int], slack: float | None = None, min_tokens: int | None = None) -> int:
    """How many of `lengths` (sorted longest first) to run as one batch on CPU: as many as padding to the
    first allows while the padding stays within `slack` of the batch's tokens, or the batch is still under
    `min_tokens` (too small for efficient matrix products). A CPU gains nothing from wide batches beyond
    that, while every padding slot is computed in full."""
    slack = PAD_SLACK if slack is None else slack
    min_tokens = MIN_BATCH_TOKENS if min_tokens is None else min_tokens
    longest, n, total = lengths[0], 1, lengths[0]
    while n < len(lengths):
        total += lengths[n]
        padded = (n + 1) * longest
        if padded - total > slack * padded and padded > min_tokens:
            break
        n += 1
    return n


@dataclass
class _Row:
    """One sequence to run. reads: (position, token ids whose log-probs are wanted at that position)."""
    ids: list[int]
    reads: list[tuple[int, list[int]]]
    out: list[list[float]] = field(default_factory=list)   # per read, log-probs of its token ids
    top: int | None = None                                  # argmax token at the first read


@dataclass
class _Plan:
    """How one request's answer is read from its rows. single: every option is one token after the same
    context, so one row read once at the answer position gives the options and then the next tokens
    (next_ids: per requested next-token text, its id or None); else one row per option, log-probs summed."""
    first: int
    n_options: int
    single: bool
    next_ids: list[int | None] | None = None


@dataclass
class _Pass:
    """What one _run_all carries from batch to batch: the prefix length and cache (made by the first batch
    where not given), the probe still to run, and the states waiting for the output layer."""
    n_prefix: int
    kv: list | None
    probe: list[_Row] | None
    done: list[_Row] = field(default_factory=list)
    states: list[torch.Tensor] = field(default_factory=list)


class HFBackend(TokenizedBackend):
    def __init__(self, model: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
                 batch_size: int | str = "auto", trust_remote_code: bool = False, device_map: str | None = None,
                 prefix_cache: bool = True, tokenizer: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_name, self.revision = str(model), revision
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size if batch_size == "auto" else int(batch_size)
        self.prefix_cache = prefix_cache
        source, self.gguf = self.model_name, None
        if is_gguf(source):   # a quantised GGUF file: its dequantised float32 copy (see gguf.py)
            source, self.gguf = dequantised(source)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or source, revision=revision,
                                                       trust_remote_code=trust_remote_code)
        kwargs = dict(revision=revision, dtype=DTYPES[self.dtype], trust_remote_code=trust_remote_code)
        if device_map:
            kwargs["device_map"] = device_map
        self.model = AutoModelForCausalLM.from_pretrained(source, **kwargs).eval()
        if not device_map:
            self.model.to(self.device)
        fuse_activations(self.model)
        self.input_device = next(self.model.parameters()).device
        self.config = self.model.config
        body = getattr(self.model, self.model.base_model_prefix, None)
        self.body = body if isinstance(body, torch.nn.Module) and body is not self.model else None
        self.head = self.model.get_output_embeddings()
        if self.body is None or self.head is None:
            self.body = None   # no separate transformer body: full logits (slower, still exact)
        self.max_length = self._max_length()
        self._init_tokenization()
        self._auto_cuda_batch = 256
        self.last_paths: set[str] = set()
        self._kv_cache: tuple | None = None   # (prefix token ids, key/value tensors) of the last prefix
        # whether packed batches work for this model, without and with a prefix cache (absent: not probed yet)
        self.packed: dict[bool, bool] = {}
        register_packed_attention()

    def _max_length(self) -> int:
        for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
            value = getattr(self.config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 1 << 20

    # ---------------------------------------------------------------- forward passes
    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden).float()
        scale = getattr(self.config, "logit_scale", None)
        if isinstance(scale, (int, float)) and not isinstance(scale, bool):
            logits = logits * scale
        cap = getattr(self.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _prefix_cache(self, prefix_ids: list[int]):
        """Key/value cache of the shared prefix (batch 1), or None where the cache cannot be expanded."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer
        if self.body is None or not prefix_ids:
            return None
        ids = torch.tensor([prefix_ids], device=self.input_device)
        try:
            with torch.inference_mode():
                cache = self.body(input_ids=ids, use_cache=True).past_key_values
        except Exception:
            return None
        if not isinstance(cache, DynamicCache) or not all(type(layer) is DynamicLayer for layer in cache.layers):
            return None
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _padded(self, seqs: list[list[int]], n_prefix: int):
        """Right-padded suffixes of sequences that share their first n_prefix tokens (held in a cache):
        input ids (B, S), attention mask (B, n_prefix + S) and position ids (pad slots clamped to the
        model's last position)."""
        B, S = len(seqs), max(len(x) for x in seqs) - n_prefix
        input_ids = torch.full((B, S), self.pad_id, dtype=torch.long)
        mask = torch.zeros((B, n_prefix + S), dtype=torch.long)
        mask[:, :n_prefix] = 1
        for b, x in enumerate(seqs):
            input_ids[b, :len(x) - n_prefix] = torch.tensor(x[n_prefix:])
            mask[b, n_prefix:len(x)] = 1
        positions = (n_prefix + torch.arange(S)).unsqueeze(0).expand(B, S).clamp(max=self.max_length - 1)
        return input_ids, mask, positions

    @staticmethod
    def _expanded(prefix_kv, B: int):
        """A batch-B cache viewing the batch-1 prefix keys/values (expand: no copy)."""
        from transformers import DynamicCache
        return DynamicCache(ddp_cache_data=[(k.expand(B, *k.shape[1:]), v.expand(B, *v.shape[1:]))
                                            for k, v in prefix_kv])

    def _run(self, rows: list[_Row], n_prefix: int, prefix_kv) -> torch.Tensor:
        """Padded batch: hidden states (logits where the model has no separate output layer) at every read
        position of rows, in order. Rows start with the same n_prefix tokens, whose cache is prefix_kv."""
        dev = self.input_device
        input_ids, mask, positions = self._padded([r.ids for r in rows], n_prefix)
        inputs = dict(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev))
        rows_idx = torch.tensor([b for b, r in enumerate(rows) for _ in r.reads], device=dev)
        cols_idx = torch.tensor([pos - n_prefix for r in rows for pos, _ in r.reads], device=dev)
        with torch.inference_mode():
            if self.body is None:
                return self.model(**inputs, use_cache=False).logits[rows_idx, cols_idx].float()
            if prefix_kv is not None:
                inputs["past_key_values"] = self._expanded(prefix_kv, len(rows))
            return self.body(**inputs, use_cache=prefix_kv is not None).last_hidden_state[rows_idx, cols_idx]

    def _read(self, rows: list[_Row], states: torch.Tensor) -> None:
        """Fill rows[i].out / .top from the states _run returned for them (concatenated, in row order)."""
        with torch.inference_mode():
            logits = self._logits(states) if self.body is not None else states
            logprobs = torch.log_softmax(logits, dim=-1)
            tops = logprobs.argmax(dim=-1).tolist()
            # one gather and one device-to-host copy for every wanted (read, token) pair
            pick_read = [k for k, (_, targets) in enumerate(r for row in rows for r in row.reads) for _ in targets]
            pick_token = [t for row in rows for _, targets in row.reads for t in targets]
            values = iter(logprobs[torch.tensor(pick_read, device=logprobs.device),
                                   torch.tensor(pick_token, device=logprobs.device)].tolist())
        k = 0
        for r in rows:
            r.out = []
            for i, (_, targets) in enumerate(r.reads):
                r.out.append([next(values) for _ in targets])
                if i == 0:
                    r.top = tops[k]
                k += 1

    def _run_all(self, rows: list[_Row], n_prefix: int, prefix_kv) -> str:
        """Run rows in batches (packed where the model allows), the output layer over groups of READ_GROUP;
        returns the path taken. Rows start with the same n_prefix tokens; where their cache prefix_kv is
        None it is made by the first batch (packed) or on its own (padded), and kept for later calls."""
        mode = n_prefix > 0
        if self.body is None:
            self.packed[mode] = False
        # packing is checked once per model (with and without a prefix cache) on two rows of the first batch
        # (two, so that positions restart per suffix); a lone row runs padded and decides nothing
        probe = probe_rows(rows, n_prefix) if mode not in self.packed and len(rows) > 1 else None
        run = _Pass(n_prefix, prefix_kv, probe)
        self._batched(rows, lambda batch: self._run_batch(run, batch, mode), lambda r: len(r.ids) - n_prefix,
                      padded=not (self.packed.get(mode) or probe))
        if run.done:
            self._flush(run)
        return ("prefix-cache" if run.n_prefix else "plain") + ("" if self.packed.get(mode) else "-padded")

    def _run_batch(self, run: _Pass, batch: list[_Row], mode: bool) -> None:
        out = made = None
        if run.probe:
            out, made = run_probed(self, batch, run.probe, run.n_prefix, run.kv)
            run.probe = None
        elif self.packed.get(mode):
            try:
                out, made = run_packed(self, batch, run.n_prefix, run.kv)
            except NotImplementedError:   # rows longer than a sliding window: this batch unpacked, no cache
                out, made = self._run(batch, 0, None), run.kv
        if out is None:   # padded; a prefix cache not made yet is made on its own
            made = run.kv if run.kv is not None or not run.n_prefix else self._prefix_cache(batch[0].ids[:run.n_prefix])
            if made is None:   # a cache that cannot be shared: no reuse
                run.n_prefix = 0
            out = self._run(batch, run.n_prefix, made)
        if run.n_prefix and run.kv is None:
            run.kv = made
            self._kv_cache = (tuple(batch[0].ids[:run.n_prefix]), run.kv)
        run.states.append(out)
        run.done.extend(batch)
        if sum(len(x) for x in run.states) >= READ_GROUP:
            self._flush(run)

    def _flush(self, run: _Pass) -> None:
        self._read(run.done, torch.cat(run.states))
        run.done.clear()
        run.states.clear()

    def _auto_batch(self, length: int) -> int:
        if self.batch_size != "auto":
            return self.batch_size
        if self.input_device.type == "cuda":
            return self._auto_cuda_batch
        return int(max(8, min(32, 8192 // max(length, 1))))

    def _batched(self, rows: list, run_batch, length, padded: bool = True) -> None:
        """Run rows longest first in batches; on CUDA out-of-memory halve the batch and retry.
        For padded batches on CPU the batch size is a maximum: a batch ends early where padding would exceed
        PAD_SLACK of it."""
        order = sorted(range(len(rows)), key=lambda i: -length(rows[i]))
        start = 0
        while start < len(order):
            size = self._auto_batch(length(rows[order[start]]))
            if padded and self.input_device.type == "cpu":
                size = cpu_batch_size([length(rows[i]) for i in order[start:start + size]])
            batch = [rows[i] for i in order[start:start + size]]
            try:
                run_batch(batch)
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                torch.cuda.empty_cache()
                if self.batch_size == "auto":
                    self._auto_cuda_batch = max(1, size // 2)
                else:
                    self.batch_size = max(1, size // 2)
                continue
            start += len(batch)

    def _split_prefix(self, row_ids: list[list[int]], shared_prefix: str, min_suffix: list[int],
                      lazy: bool = False):
        """Prefix tokens shared by the rows that start with them, their cache, and which rows use it.

        n_prefix is the longest run of the prefix's tokens that every eligible row starts with, so a
        tokenizer that merges across the text boundary just shortens the reused part; a row that would
        keep fewer than min_suffix tokens after it runs on the plain path. With lazy=True a cache not made
        yet is returned as None (the first batch makes it)."""
        if not (self.prefix_cache and shared_prefix and self.body is not None):
            return 0, None, [False] * len(row_ids)
        p = self.context_ids(shared_prefix)
        commons = [common_length(p, ids) for ids in row_ids]
        eligible = [c >= max(1, len(p) - 8) for c in commons]   # tolerate a boundary merge of a few tokens
        if not any(eligible):
            return 0, None, eligible
        n = min(min(c, len(ids) - m) for c, ids, m, e in zip(commons, row_ids, min_suffix, eligible) if e)
        eligible = [e and len(ids) - n >= m for ids, m, e in zip(row_ids, min_suffix, eligible)]
        if n < 1:
            return 0, None, [False] * len(row_ids)
        key = tuple(p[:n])
        if self._kv_cache is None or self._kv_cache[0] != key:
            if lazy:
                return n, None, eligible
            self._kv_cache = (key, self._prefix_cache(p[:n]))
        kv = self._kv_cache[1]
        if kv is None:
            return 0, None, [False] * len(row_ids)
        return n, kv, eligible

    # ---------------------------------------------------------------- the interface
    def score(self, requests: list[ScoreRequest], shared_prefix: str = "") -> list[ScoreResult]:
        rows: list[_Row] = []
        plans: list[_Plan] = []
        flat = iter(self.pairs_ids([(req.context, o) for req in requests for o in req.options]))
        for req in requests:
            pairs = [next(flat) for _ in req.options]
            ctx = pairs[0][0]
            if all(p[0] == ctx and len(p[1]) == 1 for p in pairs):
                next_ids = None if req.next_tokens is None else [self.single_token(t) for t in req.next_tokens]
                targets = [p[1][0] for p in pairs] + [t for t in next_ids or [] if t is not None]
                plans.append(_Plan(len(rows), len(pairs), True, next_ids))
                rows.append(_Row(ctx, [(len(ctx) - 1, targets)]))
            else:
                plans.append(_Plan(len(rows), len(pairs), False))
                rows += [_Row(c + o[:-1], [(len(c) - 1 + j, [t]) for j, t in enumerate(o)]) for c, o in pairs]
        for r in rows:
            if len(r.ids) > self.max_length:
                raise UsageError(f"a prompt of {len(r.ids)} tokens exceeds {self.model_name}'s maximum length "
                                 f"{self.max_length}")
        # every read position must lie after the reused prefix: keep at least (ids - first read) tokens
        min_suffix = [len(r.ids) - r.reads[0][0] for r in rows]
        n_prefix, kv, use = self._split_prefix([r.ids for r in rows], shared_prefix, min_suffix, lazy=True)
        cached = [r for r, u in zip(rows, use) if u]
        plain = [r for r, u in zip(rows, use) if not u]
        self.last_paths = set()
        if cached:
            self.last_paths.add(self._run_all(cached, n_prefix, kv))
        if plain:
            self.last_paths.add(self._run_all(plain, 0, None))

        results = []
        for plan in plans:
            top = self.tokenizer.decode([rows[plan.first].top])
            if plan.single:
                values = rows[plan.first].out[0]
                extra = iter(values[plan.n_options:])
                next_lps = None if plan.next_ids is None else [
                    None if t is None else next(extra) for t in plan.next_ids]
                results.append(ScoreResult(values[:plan.n_options], top, next_lps))
            else:
                logprobs = [float(sum(v[0] for v in rows[plan.first + i].out)) for i in range(plan.n_options)]
                results.append(ScoreResult(logprobs, top))
        return results

    def generate(self, requests: list[GenerateRequest], shared_prefix: str = "") -> list[str]:
        ids = [self.with_start(x) for x in self.encode_many([r.context for r in requests])]
        for x in ids:
            if len(x) >= self.max_length:
                raise UsageError(f"a prompt of {len(x)} tokens leaves no room to generate in {self.model_name}")
        n_prefix, kv, use = self._split_prefix(ids, shared_prefix, [1] * len(ids))
        self.last_paths = {"prefix-cache" if u else "plain" for u in use} if ids else set()
        out: list[str | None] = [None] * len(requests)
        jobs = [(i, ids[i], requests[i]) for i in range(len(requests))]
        for group, n, cache in (([j for j in jobs if use[j[0]]], n_prefix, kv),
                                ([j for j in jobs if not use[j[0]]], 0, None)):
            if group:
                self._batched(group, lambda b, n=n, cache=cache: self._generate_batch(b, n, cache, out),
                              lambda j, n=n: len(j[1]) - n)
        return out

    def _generate_batch(self, jobs, n_prefix: int, prefix_kv, out: list) -> None:
        """Greedy decoding of a right-padded batch: pad slots stay masked holes in the cache. A row stops at
        end-of-text, at its budget, or when the stop text appears in the decoding of its last few tokens
        (a stop text of n characters spans at most n tokens); the whole text is decoded once at the end."""
        from transformers import DynamicCache
        B = len(jobs)
        dev = self.input_device
        input_ids, mask, positions = self._padded([x for _, x, _ in jobs], n_prefix)
        lengths_t = torch.tensor([len(x) for _, x, _ in jobs])
        budgets = [min(req.max_tokens, self.max_length - len(x)) for _, x, req in jobs]
        generated = [[] for _ in jobs]
        done = [b <= 0 for b in budgets]
        eos = self.tokenizer.eos_token_id
        if self.body is not None:
            cache = self._expanded(prefix_kv, B) if prefix_kv is not None else DynamicCache()
        with torch.inference_mode():
            step_ids, step_pos, step_mask = input_ids, positions, mask
            read_cols = lengths_t - n_prefix - 1
            for t in range(max(budgets) if budgets else 0):
                inputs = dict(input_ids=step_ids.to(dev), attention_mask=step_mask.to(dev),
                              position_ids=step_pos.to(dev))
                if self.body is not None:
                    res = self.body(**inputs, past_key_values=cache, use_cache=True)
                    h = res.last_hidden_state[torch.arange(B, device=dev), read_cols.to(dev)]
                    logits = self._logits(h)
                else:
                    full = self.model(**inputs, past_key_values=cache if t else None, use_cache=True)
                    cache = full.past_key_values
                    logits = full.logits[torch.arange(B, device=dev), read_cols.to(dev)].float()
                nxt = logits.argmax(dim=-1).cpu()
                for b in range(B):
                    if done[b]:
                        continue
                    tok = int(nxt[b])
                    if eos is not None and tok == eos:
                        done[b] = True
                        continue
                    generated[b].append(tok)
                    stop = jobs[b][2].stop
                    if (stop and stop in self.tokenizer.decode(generated[b][-len(stop) - STOP_SLACK:])
                            or len(generated[b]) >= budgets[b]):
                        done[b] = True
                if all(done):
                    break
                step_ids = nxt.unsqueeze(1)
                step_pos = (lengths_t + t).clamp(max=self.max_length - 1).unsqueeze(1)
                step_mask = torch.cat([step_mask, torch.ones((B, 1), dtype=torch.long)], dim=1)
                read_cols = torch.zeros(B, dtype=torch.long)
        for b, (i, _, req) in enumerate(jobs):
            text = self.tokenizer.decode(generated[b])
            if req.stop and req.stop in text:
                text = text[:text.index(req.stop)]
            out[i] = text

    def describe(self) -> dict:
        path = "+".join(sorted(self.last_paths)) if self.last_paths else (
            "prefix-cache" if self.prefix_cache and self.body is not None else "plain")
        if self.body is None:
            path = "full-logits"
        return {"model": self.model_name, "revision": self.revision, "dtype": self.dtype,
                "n_params": n_params(self.model), "scoring_path": path,
                "device": str(self.input_device), "batch_size": self.batch_size,
                **({"gguf": self.gguf} if self.gguf else {})}
