"""GPT-2-shaped language models of any size, and the training compute scaling laws use."""
from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def make_model(vocab_size: int, n_layer: int, n_head: int, n_embd: int, n_positions: int = 128,
               seed: int = 0, **config) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 (no dropout, tied embeddings). The seed fixes the weights
    without touching the global random state. Extra keyword arguments go to GPT2Config."""
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    settings = dict(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                    n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                    bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
    settings.update(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(GPT2Config(**settings))


def train_flops(n_params: int, n_tokens: int) -> float:
    """Training compute C ≈ 6·N·D (forward 2ND + backward 4ND), N the non-embedding parameters: the
    "useful" FLOPs of the loop's FLOP/s and MFU. Attention scores are not in it (see attention_flops)."""
    return 6.0 * float(n_params) * float(n_tokens)


def attention_flops(n_layer: int, seq_len: int, d_model: int, n_tokens: int) -> float:
    """Training FLOPs of the attention scores and their weighted sum, which 6·N·D leaves out: Kaplan et al.
    (2020, Table 1) count 2·n_layer·n_ctx·d_attn per token forward (QKᵀ and AV over a causal context, i.e. half
    of the full T×T products), times 3 for forward + backward."""
    return 6.0 * n_layer * seq_len * d_model * float(n_tokens)
