"""Packed batches for the HF backend: a batch's suffixes laid end to end in one row, so the linear layers
(nearly all the work) see no padding, and an attention function registered with transformers
("neqa_packed") that keeps them apart: each suffix attends causally to itself and to the shared prefix,
whose keys/values are read from one batch-1 cache and never copied per row. The prefix itself can run at
the head of the first batch's row (inline), its keys/values kept for the batches after it.

A two-row probe checks the packed result against a padded batch once per model; where the model does not
route attention through transformers' AttentionInterface, or disagrees, the backend runs padded batches.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import torch


class Packing:
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
        self.span = (inline or (prefix_kv[0][0].shape[-2] if prefix_kv else 0)) + self.S   # longest prefix + suffix


def packed_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, packing=None,
                     sliding_window=None, softcap=None, s_aux=None, **kwargs):
    """transformers attention function (registered as "neqa_packed") over a Packing row: query (1, H, T, D),
    key/value (1, H_kv, T, D). The prefix keys/values (1, H_kv, P, D) are shared by every suffix through
    matrix products, never expanded to the batch. Softmax in float32, as transformers' eager attention."""
    # a sliding window at least as long as every prefix + suffix masks nothing (Gemma 3's 512 tokens and NeQA's prompts)
    if (packing is None or softcap is not None or s_aux is not None
            or (sliding_window is not None and packing.span > sliding_window)):
        raise NotImplementedError("packed attention: no packing given, softcap / sinks, or a sliding window "
                                  "shorter than the rows")
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


def register_packed_attention() -> None:
    from transformers import AttentionInterface
    AttentionInterface.register("neqa_packed", packed_attention)


def run_packed(backend, rows: list, n_prefix: int, prefix_kv) -> tuple[torch.Tensor, list]:
    """As the backend's padded _run, with the batch's suffixes packed into one row (see Packing and packed_attention); also
    returns the prefix cache: prefix_kv, or where that is None the one made by running the prefix inline,
    in this same forward pass (one large batch instead of a small one of its own)."""
    dev = backend.input_device
    inline = n_prefix if prefix_kv is None else 0
    lengths = [len(r.ids) - n_prefix for r in rows]
    ids = torch.tensor([rows[0].ids[:inline] + [t for r in rows for t in r.ids[n_prefix:]]], device=dev)
    positions = torch.tensor([list(range(inline)) + [n_prefix + j for n in lengths for j in range(n)]],
                             device=dev)
    starts = itertools.accumulate(lengths[:-1], initial=inline)
    reads = torch.tensor([start + pos - n_prefix for start, r in zip(starts, rows) for pos, _ in r.reads],
                         device=dev)
    packing = Packing(lengths, prefix_kv, dev, inline)
    config = backend.model.config
    before = config._attn_implementation
    config._attn_implementation = "neqa_packed"
    try:
        with torch.inference_mode():
            hidden = backend.body(input_ids=ids, position_ids=positions, use_cache=False,
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


def probe_rows(rows: list, n_prefix: int) -> list:
    """Two rows for checking packed against padded batches: rows 0 and 1 cut to 3 and 4 tokens after the
    prefix, every position read."""
    return [replace(r, ids=r.ids[:n_prefix + n], out=[], top=None,
                    reads=[(n_prefix + j, []) for j in range(min(n, len(r.ids) - n_prefix))])
            for r, n in zip(rows[:2], (3, 4))]


def run_probed(backend, batch: list, probe: list, n_prefix: int, prefix_kv):
    """The first packed batch, with the probe rows packed in after it; records in backend.packed whether the
    probe's packed result equals a padded batch of the same rows. Returns (states, prefix cache), or
    (None, None) where packing failed (the caller runs the batch padded)."""
    mode = n_prefix > 0
    try:
        states, kv = run_packed(backend, batch + probe, n_prefix, prefix_kv)
    except torch.cuda.OutOfMemoryError:
        raise
    except (NotImplementedError, TypeError, AttributeError, KeyError, ValueError, RuntimeError):
        backend.packed[mode] = False
        return None, None
    n_probe = sum(len(r.reads) for r in probe)
    packed, padded = states[-n_probe:].float(), backend._run(probe, n_prefix, kv).float()
    tol = 1e-4 if backend.dtype == "float32" else 2e-2
    backend.packed[mode] = bool((packed - padded).norm() <= tol * padded.norm())
    return (states[:-n_probe], kv) if backend.packed[mode] else (None, None)
