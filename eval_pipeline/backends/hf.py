"""Hugging Face causal language models (local folder or hub id), on CPU or CUDA.

Built for speed without giving up exactness (scores equal an unbatched full forward pass):
- the output layer is applied only at the positions read, never to full sequence x vocabulary logits;
- options that are single tokens (" A", " B") are read from one forward pass over the context;
  multi-token options get one row per option, their token log-probs summed;
- the output layer runs once per group of about READ_GROUP read positions, gathered over batches: with
  few rows its cost is reading the (vocab x width) weights from memory, not the arithmetic;
- shared-prefix reuse: the tokens every context starts with (the few-shot header) are run once, and each
  batch runs only the suffixes. A request whose tokens do not start with the prefix's tokens (the
  tokenizer merged across the boundary) runs without the prefix cache, so results never depend on it;
- packed batches: a batch's suffixes are laid end to end in one row, so the linear layers (nearly all
  the work) see no padding; packed_attention keeps them apart (each suffix attends to the prefix, read
  from one batch-1 cache and never copied per row, and causally to itself). The prefix itself runs at
  the head of the first batch's row, and its keys/values are kept for the batches (and calls) after it.
  A two-row probe checks the packed result against a padded batch once per model; where the model does
  not route attention through transformers' AttentionInterface, or disagrees, padded batches are used
  (path "...-padded": right padding, explicit position ids and attention mask, the prefix cache
  expanded to the batch);
- rows are sorted by length (longest first) and batched; the original order is restored;
  batch_size="auto" halves on CUDA out-of-memory, and picks 8..32 from the sequence length on CPU;
  on CPU a padded batch (at most batch_size rows) also ends where padding would pass 10% of its tokens;
- GPT-2's "gelu_new" activation (a chain of Python-level tensor ops) runs as torch's fused
  gelu(approximate="tanh"): the same formula, equal up to float rounding, about 15% of a CPU forward pass.

Tokenisation follows lm-evaluation-harness: option tokens = tokens(context + option) minus tokens(context),
with trailing spaces of the context moved to the option.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch

from data_pipeline.io import UsageError
from eval_pipeline.backends.base import Backend, GenerateRequest, ScoreRequest, ScoreResult

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str = "auto", device: str = "auto") -> str:
    """float32 on CPU; bfloat16 on CUDA when supported (else float16) for dtype="auto"."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose from auto, {', '.join(DTYPES)}")
        return dtype
    if resolve_device(device).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def _logaddexp(a: float, b: float) -> float:
    top = max(a, b)
    return top + math.log(math.exp(a - top) + math.exp(b - top)) if top > -math.inf else top


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


class _Packing:
    """A batch of suffixes laid end to end in one row of T tokens, and the index tensors packed_attention
    uses to attend within each suffix: suffix b's tokens are packed positions starts[b]..starts[b]+len-1
    and slots b*S.. of a (B, S) padded layout (S = the longest suffix) used inside attention only.
    The suffixes attend to prefix_kv, or with inline=P to the row's own first P tokens (the prefix run in
    the same forward pass), whose keys/values each layer then leaves in `captured` for later batches."""

    def __init__(self, lengths: list[int], prefix_kv, device, inline: int = 0):
        self.prefix_kv, self.inline, self.calls = prefix_kv, inline, 0
        self.captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.B, self.S = len(lengths), max(lengths)
        lens = torch.tensor(lengths, device=device)
        starts = torch.cumsum(lens, 0) - lens
        j = torch.arange(self.S, device=device)
        valid = j.unsqueeze(0) < lens.unsqueeze(1)                                  # (B, S)
        self.to_padded = torch.where(valid, starts.unsqueeze(1) + j, starts.unsqueeze(1)).reshape(-1)  # slot -> pos
        self.to_packed = valid.reshape(-1).nonzero().squeeze(1)                     # position -> slot
        self.mask = (j.unsqueeze(0) <= j.unsqueeze(1)).unsqueeze(0) & valid.unsqueeze(1)   # (B, S_q, S_k)


def packed_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, packing=None,
                     sliding_window=None, softcap=None, s_aux=None, **kwargs):
    """transformers attention function (registered as "neqa_packed") over a _Packing row: query (1, H, T, D),
    key/value (1, H_kv, T, D). The prefix keys/values (1, H_kv, P, D) are shared by every suffix through
    matrix products, never expanded to the batch. Softmax in float32, as transformers' eager attention."""
    if packing is None or sliding_window is not None or softcap is not None or s_aux is not None:
        raise NotImplementedError("packed attention: no packing given, or sliding window / softcap / sinks")
    packing.calls += 1
    _, H, _, D = query.shape
    Hkv, B, S = key.shape[1], packing.B, packing.S
    G = H // Hkv
    scaling = D ** -0.5 if scaling is None else scaling
    pk = pv = head = None
    if packing.inline:   # the prefix is this row's first P tokens: causal attention among them, keys kept
        P = packing.inline
        pk, pv = key[:, :, :P], value[:, :, :P]
        packing.captured[module.layer_idx] = (pk.clone(), pv.clone())
        head = torch.nn.functional.scaled_dot_product_attention(query[:, :, :P], pk, pv, is_causal=True,
                                                                scale=scaling, enable_gqa=G > 1)
        query, key, value = query[:, :, P:], key[:, :, P:], value[:, :, P:]
    elif packing.prefix_kv is not None:
        pk, pv = packing.prefix_kv[module.layer_idx]

    def padded(x):   # (1, h, T, D) -> (h, B, S, D); pad slots repeat a real token, masked below
        return x[0][:, packing.to_padded].view(x.shape[1], B, S, D)
    q = padded(query * scaling).view(Hkv, G, B, S, D)
    k, v = padded(key).unsqueeze(1), padded(value).unsqueeze(1)
    scores = torch.matmul(q, k.transpose(-1, -2)).masked_fill_(~packing.mask, float("-inf"))   # (Hkv, G, B, S, S)
    P = 0
    if pk is not None:
        P = pk.shape[2]
        prefix_scores = torch.matmul(q.reshape(Hkv, G * B * S, D), pk[0].transpose(-1, -2))
        scores = torch.cat([prefix_scores.view(Hkv, G, B, S, P), scores], dim=-1)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights[..., P:], v)
    if P:
        out += torch.matmul(weights[..., :P].reshape(Hkv, G * B * S, P), pv[0]).view(Hkv, G, B, S, D)
    out = out.reshape(H, B * S, D)[:, packing.to_packed].transpose(0, 1).unsqueeze(0)
    if head is not None:
        out = torch.cat([head.transpose(1, 2), out], dim=1)
    return out, None   # (1, T, H, D), as transformers' attention functions


def _register_packed_attention() -> None:
    from transformers import AttentionInterface
    AttentionInterface.register("neqa_packed", packed_attention)


@dataclass
class _Row:
    """One sequence to run. reads: (position, token ids whose log-probs are wanted at that position)."""
    ids: list[int]
    reads: list[tuple[int, list[int]]]
    out: list[list[float]] = field(default_factory=list)   # per read, log-probs of its token ids
    top: int | None = None                                  # argmax token at the first read


class HFBackend(Backend):
    def __init__(self, model: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
                 batch_size: int | str = "auto", trust_remote_code: bool = False, device_map: str | None = None,
                 prefix_cache: bool = True, tokenizer: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_name, self.revision = str(model), revision
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size if batch_size == "auto" else int(batch_size)
        self.prefix_cache = prefix_cache
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or self.model_name, revision=revision,
                                                       trust_remote_code=trust_remote_code)
        kwargs = dict(revision=revision, dtype=DTYPES[self.dtype], trust_remote_code=trust_remote_code)
        if device_map:
            kwargs["device_map"] = device_map
        self.model = AutoModelForCausalLM.from_pretrained(self.model_name, **kwargs).eval()
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
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (
            self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0)
        # BOS only where the tokenizer adds it by default (e.g. Llama); GPT-2/Pythia add nothing.
        probe = self.tokenizer("a")["input_ids"]
        bos = self.tokenizer.bos_token_id
        self.start = [bos] if bos is not None and probe[:1] == [bos] else []
        self._auto_cuda_batch = 256
        self.last_paths: set[str] = set()
        self._single_cache: dict[str, int | None] = {}
        self._kv_cache: tuple | None = None   # (prefix token ids, key/value tensors) of the last prefix
        # whether packed batches work for this model, without and with a prefix cache (absent: not probed yet)
        self.packed: dict[bool, bool] = {}
        _register_packed_attention()

    # ---------------------------------------------------------------- tokenisation
    def _max_length(self) -> int:
        for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
            value = getattr(self.config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 1 << 20

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []

    def _with_start(self, ids: list[int]) -> list[int]:
        ids = self.start + ids
        if not ids:   # empty context: condition on the end-of-text token, as lm-evaluation-harness does
            ids = [self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.pad_id]
        return ids

    def context_ids(self, context: str) -> list[int]:
        return self._with_start(self.encode(context))

    @staticmethod
    def _split(context: str, option: str) -> tuple[str, str]:
        """Trailing spaces of the context belong to the option (as in lm-evaluation-harness)."""
        n_spaces = len(context) - len(context.rstrip())
        return (context[:-n_spaces], context[-n_spaces:] + option) if n_spaces else (context, option)

    def pairs_ids(self, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context tokens, option tokens) per (context, option): option tokens = tokens(context + option)
        minus tokens(context). Tokenised in two batched calls."""
        pairs = [self._split(c, o) for c, o in pairs]
        contexts = sorted({c for c, _ in pairs})
        ctx_ids = dict(zip(contexts, (self._with_start(x) for x in self.encode_many(contexts))))
        wholes = self.encode_many([c + o for c, o in pairs])
        out = []
        for (c, o), whole in zip(pairs, wholes):
            ctx, whole = ctx_ids[c], self.start + whole
            opt = whole[len(ctx):] if len(whole) > len(ctx) else self.encode(o)
            if not opt:
                raise ValueError(f"option {o!r} encodes to no tokens")
            out.append((ctx, opt))
        return out

    def pair_ids(self, context: str, option: str) -> tuple[list[int], list[int]]:
        return self.pairs_ids([(context, option)])[0]

    def _single_token(self, text: str) -> int | None:
        if text not in self._single_cache:
            ids = self.encode(text)
            self._single_cache[text] = ids[0] if len(ids) == 1 else None
        return self._single_cache[text]

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

    def _run(self, rows: list[_Row], n_prefix: int, prefix_kv) -> torch.Tensor:
        """Padded batch: hidden states (logits where the model has no separate output layer) at every read
        position of rows, in order. Rows start with the same n_prefix tokens, whose cache is prefix_kv."""
        from transformers import DynamicCache
        B = len(rows)
        S = max(len(r.ids) for r in rows) - n_prefix
        dev = self.input_device
        input_ids = torch.full((B, S), self.pad_id, dtype=torch.long)
        mask = torch.zeros((B, n_prefix + S), dtype=torch.long)
        mask[:, :n_prefix] = 1
        for b, r in enumerate(rows):
            suffix = r.ids[n_prefix:]
            input_ids[b, :len(suffix)] = torch.tensor(suffix)
            mask[b, n_prefix:n_prefix + len(suffix)] = 1
        positions = (n_prefix + torch.arange(S)).unsqueeze(0).expand(B, S)
        positions = positions.clamp(max=self.max_length - 1)   # pad slots only
        inputs = dict(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev))
        rows_idx = torch.tensor([b for b, r in enumerate(rows) for _ in r.reads], device=dev)
        cols_idx = torch.tensor([pos - n_prefix for r in rows for pos, _ in r.reads], device=dev)
        with torch.inference_mode():
            if self.body is None:
                return self.model(**inputs, use_cache=False).logits[rows_idx, cols_idx].float()
            if prefix_kv is not None:
                inputs["past_key_values"] = DynamicCache(
                    ddp_cache_data=[(k.expand(B, *k.shape[1:]), v.expand(B, *v.shape[1:])) for k, v in prefix_kv])
            return self.body(**inputs, use_cache=prefix_kv is not None).last_hidden_state[rows_idx, cols_idx]

    def _run_packed(self, rows: list[_Row], n_prefix: int, prefix_kv) -> tuple[torch.Tensor, list]:
        """As _run, with the batch's suffixes packed into one row (see _Packing and packed_attention); also
        returns the prefix cache: prefix_kv, or where that is None the one made by running the prefix inline,
        in this same forward pass (one large batch instead of a small one of its own)."""
        dev = self.input_device
        inline = n_prefix if prefix_kv is None else 0
        lengths = [len(r.ids) - n_prefix for r in rows]
        ids = torch.tensor([rows[0].ids[:inline] + [t for r in rows for t in r.ids[n_prefix:]]], device=dev)
        positions = torch.tensor([list(range(inline)) + [n_prefix + j for n in lengths for j in range(n)]],
                                 device=dev)
        starts = itertools.accumulate(lengths[:-1], initial=inline)
        reads = torch.tensor([start + pos - n_prefix for start, r in zip(starts, rows) for pos, _ in r.reads],
                             device=dev)
        packing = _Packing(lengths, prefix_kv, dev, inline)
        config = self.model.config
        before = config._attn_implementation
        config._attn_implementation = "neqa_packed"
        try:
            with torch.inference_mode():
                hidden = self.body(input_ids=ids, position_ids=positions, use_cache=False,
                                   packing=packing).last_hidden_state
        finally:
            config._attn_implementation = before
        if packing.calls == 0:
            raise NotImplementedError("the model's attention did not go through transformers' AttentionInterface")
        if inline:
            if sorted(packing.captured) != list(range(packing.calls)):
                raise NotImplementedError("attention layers without consecutive layer_idx")
            prefix_kv = [packing.captured[i] for i in range(packing.calls)]
        return hidden[0, reads], prefix_kv

    def _probe_rows(self, rows: list[_Row], n_prefix: int) -> list[_Row]:
        """Two rows for checking packed against padded batches: rows 0 and 1 cut to 3 and 4 tokens after the
        prefix, every position read."""
        return [_Row(r.ids[:n_prefix + n], [(n_prefix + j, []) for j in range(min(n, len(r.ids) - n_prefix))])
                for r, n in zip(rows[:2], (3, 4))]

    def _run_probed(self, batch: list[_Row], probe: list[_Row], n_prefix: int, prefix_kv):
        """The first packed batch, with the probe rows packed in after it; records in self.packed whether the
        probe's packed result equals a padded batch of the same rows. Returns (states, prefix cache), or
        (None, None) where packing failed (the caller runs the batch padded)."""
        mode = n_prefix > 0
        try:
            states, kv = self._run_packed(batch + probe, n_prefix, prefix_kv)
        except torch.cuda.OutOfMemoryError:
            raise
        except (NotImplementedError, TypeError, AttributeError, KeyError, ValueError, RuntimeError):
            self.packed[mode] = False
            return None, None
        n_probe = sum(len(r.reads) for r in probe)
        packed, padded = states[-n_probe:].float(), self._run(probe, n_prefix, kv).float()
        tol = 1e-4 if self.dtype == "float32" else 2e-2
        self.packed[mode] = bool((packed - padded).norm() <= tol * padded.norm())
        return (states[:-n_probe], kv) if self.packed[mode] else (None, None)

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
        probe = self._probe_rows(rows, n_prefix) if mode not in self.packed and len(rows) > 1 else None
        kv = prefix_kv
        done: list[_Row] = []
        states: list[torch.Tensor] = []

        def run_batch(batch):
            nonlocal probe, kv, n_prefix
            out = made = None
            if probe:
                out, made = self._run_probed(batch, probe, n_prefix, kv)
                probe = None
            elif self.packed.get(mode):
                out, made = self._run_packed(batch, n_prefix, kv)
            if out is None:   # padded; a prefix cache not made yet is made on its own
                made = kv if kv is not None or not n_prefix else self._prefix_cache(batch[0].ids[:n_prefix])
                if made is None:   # a cache that cannot be shared: no reuse
                    n_prefix = 0
                out = self._run(batch, n_prefix, made)
            if n_prefix and kv is None:
                kv = made
                self._kv_cache = (tuple(batch[0].ids[:n_prefix]), kv)
            states.append(out)
            done.extend(batch)
            if sum(len(x) for x in states) >= READ_GROUP:
                flush()

        def flush():
            self._read(done, torch.cat(states))
            done.clear()
            states.clear()
        self._batched(rows, run_batch, lambda r: len(r.ids) - n_prefix, padded=not (self.packed.get(mode) or probe))
        if done:
            flush()
        return ("prefix-cache" if n_prefix else "plain") + ("" if self.packed.get(mode) else "-padded")

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
        def common(ids):
            n = 0
            while n < min(len(p), len(ids)) and p[n] == ids[n]:
                n += 1
            return n
        commons = [common(ids) for ids in row_ids]
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
        rows, plans = [], []
        flat = iter(self.pairs_ids([(req.context, o) for req in requests for o in req.options]))
        for req in requests:
            pairs = [next(flat) for _ in req.options]
            ctx = pairs[0][0]
            single = all(p[0] == ctx and len(p[1]) == 1 for p in pairs)
            if single:
                targets = [p[1][0] for p in pairs]
                surface = [self._single_token(o.rstrip() + ".") if o.strip() else None for o in req.options]
                reads = [(len(ctx) - 1, targets + [t for t in surface if t is not None])]
                rows.append(_Row(ctx, reads))
                plans.append(("single", len(rows) - 1, surface))
            else:
                first = len(rows)
                for c, o in pairs:
                    ids = c + o[:-1]
                    rows.append(_Row(ids, [(len(c) - 1 + j, [t]) for j, t in enumerate(o)]))
                plans.append(("multi", first, len(pairs)))
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
            if plan[0] == "single":
                _, ri, surface = plan
                row = rows[ri]
                lp = row.out[0]
                n = len(surface)
                logprobs = lp[:n]
                extra = iter(lp[n:])
                surf = []
                for base, t in zip(logprobs, surface):
                    surf.append(base if t is None else _logaddexp(base, next(extra)))
                top = self.tokenizer.decode([row.top])
                results.append(ScoreResult(logprobs=logprobs, top_token=top, surface_logprobs=surf))
            else:
                _, first, n = plan
                logprobs = [float(sum(v[0] for v in rows[first + i].out)) for i in range(n)]
                top = self.tokenizer.decode([rows[first].top])
                results.append(ScoreResult(logprobs=logprobs, top_token=top, surface_logprobs=None))
        return results

    def generate(self, requests: list[GenerateRequest], shared_prefix: str = "") -> list[str]:
        ids = [self._with_start(x) for x in self.encode_many([r.context for r in requests])]
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
        """Greedy decoding of a right-padded batch: pad slots stay masked holes in the cache."""
        from transformers import DynamicCache
        B = len(jobs)
        S = max(len(x) for _, x, _ in jobs) - n_prefix
        dev = self.input_device
        input_ids = torch.full((B, S), self.pad_id, dtype=torch.long)
        mask = torch.zeros((B, n_prefix + S), dtype=torch.long)
        mask[:, :n_prefix] = 1
        lengths = []
        for b, (_, x, _) in enumerate(jobs):
            input_ids[b, :len(x) - n_prefix] = torch.tensor(x[n_prefix:])
            mask[b, n_prefix:len(x)] = 1
            lengths.append(len(x))
        positions = (n_prefix + torch.arange(S)).unsqueeze(0).expand(B, S).clamp(max=self.max_length - 1)
        lengths_t = torch.tensor(lengths)
        budgets = [min(req.max_tokens, self.max_length - len(x)) for _, x, req in jobs]
        generated = [[] for _ in jobs]
        texts = [""] * B
        done = [b <= 0 for b in budgets]
        eos = self.tokenizer.eos_token_id
        if self.body is not None:
            cache = DynamicCache(ddp_cache_data=[(k.expand(B, *k.shape[1:]), v.expand(B, *v.shape[1:]))
                                                 for k, v in prefix_kv]) if prefix_kv is not None else DynamicCache()
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
                    texts[b] = self.tokenizer.decode(generated[b])
                    stop = jobs[b][2].stop
                    if (stop and stop in texts[b]) or len(generated[b]) >= budgets[b]:
                        done[b] = True
                if all(done):
                    break
                step_ids = nxt.unsqueeze(1)
                step_pos = (lengths_t + t).clamp(max=self.max_length - 1).unsqueeze(1)
                step_mask = torch.cat([step_mask, torch.ones((B, 1), dtype=torch.long)], dim=1)
                read_cols = torch.zeros(B, dtype=torch.long)
        for b, (i, _, req) in enumerate(jobs):
            text = texts[b]
            if req.stop and req.stop in text:
                text = text[:text.index(req.stop)]
            out[i] = text

    def describe(self) -> dict:
        path = "+".join(sorted(self.last_paths)) if self.last_paths else (
            "prefix-cache" if self.prefix_cache and self.body is not None else "plain")
        if self.body is None:
            path = "full-logits"
        return {"model": self.model_name, "revision": self.revision, "dtype": self.dtype,
                "n_params": sum(p.numel() for p in self.model.parameters()), "scoring_path": path,
                "device": str(self.input_device), "batch_size": self.batch_size}
