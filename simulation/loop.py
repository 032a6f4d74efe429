"""The training loop: one readable function, nanoGPT style.

Batches are a pure function of (seed, step), so a run that crashed and resumes from
out_dir/state.pt sees exactly the batches the uninterrupted run would have seen.

Data is either a 1-D LongTensor token stream (random windows of seq_len+1 tokens are cut
from it) or a callable `get_batch(step, generator) -> LongTensor[B, T+1]` or `(x, y)` with
y = -100 where no loss is wanted, or `(x, y, w)` with a float weight per target (the loss is then the
w-weighted mean); the generator is seeded from (seed, step).

out_dir/train_config.json records the settings a run was started with (TrainConfig and the caller's
`settings`: model shape, data); resuming, or reusing a finished final/, with other settings is refused,
naming them, unless `restart` starts the run again from nothing. state.pt is loaded with
weights_only=True: tensors and plain values only, never code.

Speed. Each log row reports useful FLOP/s, 6 x non-embedding parameters x input positions per second of
training (`flops_per_s`: the 6ND of scaling laws; attention scores and the output layer are *not* in it), the
attention FLOP/s on top of it (`attention_flops_per_s`, Kaplan et al.'s 6·n_layer·T·d per token, counted
separately), and `mfu` = flops_per_s / `peak_flops_per_s`, a GEMM peak measured once per run in this process
on its threads (neqa.device.matmul_peak: float32 on CPU, bfloat16 on CUDA). What makes the step fast, with the
mathematics unchanged: GPT-2's gelu_new runs as torch's fused tanh GELU (the same formula), no key/value cache
is built, AdamW is fused, attention is whatever the model was made with (make_model: SDPA). torch.compile is
not used: on the 2-core CPU its first step took 53 s for tw-3m for ~4% more tokens/s, which pays back only
after 20+ minutes of training (benchmarks/train_speed.py --compile).
"""
from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from neqa import checkpoints as ckpt
from neqa.device import matmul_peak, non_embedding_params, resolve_device
from neqa.io import DataError, UsageError, atomic_dir, atomic_open, finite, read_json, recover_dir, write_json
from eval_pipeline.backends.hf import fuse_activations
from simulation.model import attention_flops, train_flops

RESUME_FREE = ("device", "progress", "log_every", "state_every")   # may change between a run and its resume


class SettingsMismatchError(UsageError):
    """A run folder holds a run started with other settings."""


@dataclass
class TrainConfig:
    steps: int
    batch_size: int
    seq_len: int
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.1
    seed: int = 0
    ckpt_every: int = 0       # save out_dir/checkpoints/step-N every N steps (0: none)
    eval_every: int = 0       # validation loss every N steps (0: only at the end)
    device: str = "auto"      # auto | cpu | cuda | cuda:1 ...
    grad_clip: float = 1.0
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    log_every: int = 10       # rows of train_log.jsonl
    state_every: int = 0      # save state.pt every N steps (0: at checkpoints and ~10 times a run)
    val_batches: int = 8      # validation windows: at most val_batches * batch_size
    progress: bool = True     # tqdm bar


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to lr * min_lr_ratio at the last step."""
    if cfg.warmup > 0 and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    progress = min(max(step - cfg.warmup, 0) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def stream_batch(tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator) -> torch.Tensor:
    """batch_size random windows of seq_len+1 tokens from a 1-D stream."""
    if tokens.dim() != 1:
        raise ValueError(f"the token stream must be 1-D, got shape {tuple(tokens.shape)}")
    if len(tokens) < seq_len + 2:
        raise ValueError(f"the token stream has {len(tokens)} tokens, fewer than seq_len+2 = {seq_len + 2}")
    starts = torch.randint(0, len(tokens) - seq_len - 1, (batch_size,), generator=generator)
    return torch.stack([tokens[s:s + seq_len + 1] for s in starts.tolist()])


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(inputs, targets, per-target weights or None) from a [B, T+1] tensor, (x, y) or (x, y, w)."""
    if isinstance(batch, (tuple, list)):
        x, y, *w = batch
        return x.long(), y.long(), (w[0].float() if w else None)
    return batch[:, :-1].long(), batch[:, 1:].long(), None


def val_windows(val_tokens: torch.Tensor, cfg: TrainConfig) -> list[torch.Tensor]:
    """Fixed, non-overlapping windows spread over the validation stream."""
    n = min(len(val_tokens) // (cfg.seq_len + 1), cfg.val_batches * cfg.batch_size)
    if n == 0:
        raise ValueError(f"the validation stream has {len(val_tokens)} tokens, fewer than seq_len+1")
    stride = len(val_tokens) // n
    windows = torch.stack([val_tokens[i * stride:i * stride + cfg.seq_len + 1] for i in range(n)])
    return list(windows.split(cfg.batch_size))


def loss_of(model, x, y, device, w=None) -> torch.Tensor:
    """Mean next-token cross-entropy over positions with y != -100, or its w-weighted mean (bfloat16 autocast
    on CUDA; the loss in float32: .float() is a no-op on CPU, where logits are float32 already)."""
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(input_ids=x, use_cache=False).logits
    logits, y = logits.float().reshape(-1, logits.size(-1)), y.reshape(-1)
    if w is None:
        return torch.nn.functional.cross_entropy(logits, y, ignore_index=-100)
    w = w.to(device).reshape(-1) * (y != -100)
    ce = torch.nn.functional.cross_entropy(logits, y, ignore_index=-100, reduction="none")
    return (ce * w).sum() / w.sum().clamp_min(1e-12)


def train_step(model, optimizer, x, y, device, grad_clip: float, w=None) -> torch.Tensor:
    """One optimiser step on batch (x, y[, w]); returns the loss (a tensor: reading it waits for the step)."""
    loss = loss_of(model, x, y, device, w)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def model_shape(model) -> tuple[int, int]:
    """(layers, width) of a decoder, for attention_flops."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return cfg.num_hidden_layers, cfg.hidden_size


@torch.no_grad()
def evaluate_loss(model, batches, device) -> float:
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        x, y, _ = split_batch(batch)   # validation: the plain mean over targets
        n = int((y != -100).sum())
        total += float(loss_of(model, x, y, device)) * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def is_complete(folder) -> bool:
    folder = Path(folder)
    weights = any(folder.glob("model*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    return (folder / "config.json").exists() and weights


def save_pretrained_atomic(model, tokenizer, folder) -> None:
    """save_pretrained into a temporary folder, then rename: a crash never leaves half a model, and an
    earlier folder stays until the new one is in place."""
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)


def run_settings(cfg: TrainConfig, settings: dict | None) -> dict:
    """What decides a run's result: TrainConfig (less what may change on resume) and the caller's settings."""
    return finite({"config": {k: v for k, v in asdict(cfg).items() if k not in RESUME_FREE},
                   "settings": dict(settings or {})})


def _differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(before) | set(now)):
        a, b = before.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix.removeprefix('config.').removeprefix('settings.')}{k}: {a!r} then, {b!r} now")
    return out


def clear_run(out_dir) -> None:
    """Delete what train() wrote in out_dir (for a restart)."""
    out_dir = Path(out_dir)
    for name in ("final", ".final.tmp", ".final.old", "checkpoints"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in ("state.pt", ".state.pt.tmp", "train_log.jsonl", "train_config.json"):
        (out_dir / name).unlink(missing_ok=True)


def check_settings(out_dir, wanted: dict, log=print) -> None:
    """Refuse to continue a run (state.pt) or reuse its final/ when it was started with other settings."""
    out_dir = Path(out_dir)
    record_path = out_dir / "train_config.json"
    if record_path.exists():
        before = read_json(record_path)
    elif (out_dir / "state.pt").exists():   # a run begun before train_config.json: state.pt has its TrainConfig
        state_cfg = _load_state(out_dir / "state.pt").get("config") or {}
        before = {"config": {k: v for k, v in state_cfg.items() if k not in RESUME_FREE},
                  "settings": wanted["settings"]}
    else:
        if is_complete(out_dir / "final"):
            log(f"warning: {out_dir / 'final'} was trained before settings were recorded; they cannot be checked")
        return
    diff = _differences(before, wanted)
    if diff:
        raise SettingsMismatchError(f"{out_dir} holds a run with other settings ({'; '.join(diff)}); resume it with "
                                    "the same arguments, use another output folder, or pass --restart to train "
                                    "again from nothing")


def _load_state(path) -> dict:
    """state.pt as tensors and plain values; anything else (pickled code) is refused, never run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(path, None, None, f"not a plain training state, refusing to load it ({first[:200]}); "
                                          "delete it or pass --restart") from None
    if not isinstance(state, dict):
        raise DataError(path, None, None, "not a training state (expected a dict)")
    return state


def read_log(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:   # a line cut short by a crash
            break
    return rows


def _optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW, weight decay on matrices only; fused (one kernel over all parameters) on CPU and CUDA."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    fused = all(p.device.type in ("cpu", "cuda") for p in decay + no_decay) or None
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95),
                             fused=fused)


def train(model, tokens: torch.Tensor | Callable, cfg: TrainConfig, out_dir, val_tokens=None, tokenizer=None,
          log=print, settings: dict | None = None, restart: bool = False) -> list[dict]:
    """Train `model` in place for cfg.steps steps and return the log rows (step, tokens, loss, val_loss,
    tokens_per_s, flops, lr, and the speed: flops_per_s, attention_flops_per_s, peak_flops_per_s, mfu, threads;
    see the module docstring).

    Writes the layout of neqa.checkpoints: out_dir/train_config.json, train_log.jsonl, state.pt (for resuming), checkpoints/step-N
    and finally out_dir/final (HF format, with the tokenizer if given). If out_dir/final is already
    complete (and was trained with these settings), loads its weights into `model` and returns the saved
    log without training. `settings`: what else decides the run (model shape, data); `restart`: delete the
    folder's earlier run first."""
    out_dir = Path(out_dir)
    final_dir, state_path, log_path = out_dir / ckpt.FINAL, out_dir / ckpt.STATE, ckpt.train_log(out_dir)
    device = torch.device(resolve_device(cfg.device))
    wanted = run_settings(cfg, settings)
    if restart:
        clear_run(out_dir)
    recover_dir(final_dir)
    check_settings(out_dir, wanted, log)
    if not (out_dir / "train_config.json").exists() and not is_complete(final_dir):
        write_json(out_dir / "train_config.json", wanted)

    if is_complete(final_dir):
        log(f"{final_dir} is complete; skipping training")
        trained = type(model).from_pretrained(final_dir)
        model.load_state_dict(trained.state_dict())
        return read_log(log_path)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device).train()
    fuse_activations(model)   # gelu_new -> fused tanh GELU, in place (the saved config is unchanged)
    optimizer = _optimizer(model, cfg)
    n_params = non_embedding_params(model)
    n_layer, width = model_shape(model)
    if callable(tokens):
        get_batch = tokens
    else:
        stream = torch.as_tensor(tokens, dtype=torch.long)
        get_batch = lambda step, g: stream_batch(stream, cfg.batch_size, cfg.seq_len, g)  # noqa: E731
    val_batches = None
    if val_tokens is not None:
        val_batches = val_tokens if isinstance(val_tokens, list) else \
            val_windows(torch.as_tensor(val_tokens, dtype=torch.long), cfg)
    state_every = cfg.state_every or cfg.ckpt_every or max(cfg.steps // 10, 1)

    start, tokens_seen = 0, 0   # tokens_seen: input positions processed (padding included)
    torch.manual_seed(cfg.seed)
    if state_path.exists():
        state = _load_state(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start, tokens_seen = state["step"], state["tokens"]
        log(f"resuming {out_dir} from step {start}")
    history = [r for r in read_log(log_path) if r["step"] <= start]
    with atomic_open(log_path) as f:   # drop rows logged after the state we resume from
        f.writelines(json.dumps(r) + "\n" for r in history)

    def save_state(step: int) -> None:
        tmp = state_path.with_name(".state.pt.tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                    "step": step, "tokens": tokens_seen, "config": asdict(cfg)}, tmp)
        os.replace(tmp, state_path)

    peak = matmul_peak(device)   # once per run, on this process's threads, just before training
    threads = torch.get_num_threads()
    log(f"{out_dir.name}: {n_params:,} non-embedding parameters; {device.type} matmul peak "
        f"{peak / 1e9:.1f} GFLOP/s on {threads} thread(s)")
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=out_dir.name,
               disable=not cfg.progress, unit="step")
    t_last, tokens_since, attn_since, loss_sum, loss_n = time.perf_counter(), 0, 0.0, 0.0, 0
    for step in bar:
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y, w = split_batch(get_batch(step, step_generator(cfg.seed, step)))
        loss = train_step(model, optimizer, x, y, device, cfg.grad_clip, w)

        done = step + 1
        loss_sum, loss_n, tokens_since = loss_sum + loss.item(), loss_n + 1, tokens_since + x.numel()
        attn_since += attention_flops(n_layer, x.shape[1], width, x.numel())
        tokens_seen += x.numel()
        last = done == cfg.steps
        do_eval = val_batches is not None and (last or (cfg.eval_every and done % cfg.eval_every == 0))
        logged = last or do_eval or (cfg.log_every and done % cfg.log_every == 0)
        if logged:
            seconds = max(time.perf_counter() - t_last, 1e-9)
            flops_per_s = train_flops(n_params, tokens_since) / seconds
            row = {"step": done, "tokens": tokens_seen, "loss": loss_sum / loss_n,
                   "val_loss": evaluate_loss(model, val_batches, device) if do_eval else None,
                   "tokens_per_s": tokens_since / seconds,
                   "flops": train_flops(n_params, tokens_seen), "lr": lr,
                   "flops_per_s": flops_per_s, "attention_flops_per_s": attn_since / seconds,
                   "peak_flops_per_s": peak, "mfu": flops_per_s / peak, "threads": threads}
            history.append(row)
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}", mfu=f"{row['mfu']:.2f}")
            if do_eval:
                msg = f"{out_dir.name} step {done}: loss {row['loss']:.4f} val_loss {row['val_loss']:.4f}"
                (tqdm.write if log is print and cfg.progress else log)(msg)
            tokens_since, attn_since, loss_sum, loss_n = 0, 0.0, 0.0, 0
        if cfg.ckpt_every and done % cfg.ckpt_every == 0:
            save_pretrained_atomic(model, tokenizer, ckpt.checkpoint_dir(out_dir, done))
        if not last and done % state_every == 0:
            save_state(done)
        if logged:   # tokens/s counts training only, not evaluation or saving
            t_last = time.perf_counter()
    bar.close()

    save_pretrained_atomic(model, tokenizer, final_dir)
    if state_path.exists():
        state_path.unlink()   # final/ is complete: nothing left to resume
    return history
