"""Where a model runs and in which precision; how many parameters it has."""
from __future__ import annotations

DTYPE_NAMES = ("float32", "float16", "bfloat16")


def resolve_device(device: str = "auto") -> str:
    """"auto" is CUDA when a GPU is visible, else CPU; anything else as given."""
    if device == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str = "auto", device: str = "auto") -> str:
    """float32 on CPU; bfloat16 on CUDA when supported (else float16) for dtype="auto"."""
    if dtype != "auto":
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}; choose from auto, {', '.join(DTYPE_NAMES)}")
        return dtype
    if resolve_device(device).startswith("cuda"):
        import torch
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def n_params(model) -> int:
    """All parameters (tied weights once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def non_embedding_params(model) -> int:
    """Parameters outside the token and position embeddings and the output layer (Kaplan et al.'s N).
    Position embeddings are modules named `wpe` (GPT-2) or `embed_positions` (OPT)."""
    skip = {id(p) for p in model.get_input_embeddings().parameters()}
    out = model.get_output_embeddings()
    if out is not None:
        skip |= {id(p) for p in out.parameters()}
    for name, module in model.named_modules():
        if name.endswith("wpe") or name.endswith("embed_positions"):
            skip |= {id(p) for p in module.parameters()}
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if id(p) not in skip}.values())


def matmul_peak(device: str = "cpu", dtype=None, shape: tuple[int, int, int] | None = None, tries: int = 5,
                seconds: float = 0.05) -> float:
    """Best sustained rate (FLOP/s) of one GEMM, (m x k) @ (k x n), over `tries` loops of about `seconds` each,
    on the calling process's threads: the denominator of model FLOP utilisation. Defaults: a 1024^3 float32
    product on CPU (~0.3 s in all), a 4096^3 bfloat16 one on CUDA (the precision training runs in there)."""
    import time

    import torch
    device = torch.device(resolve_device(device))
    cuda = device.type == "cuda"
    dtype = dtype or (torch.bfloat16 if cuda else torch.float32)
    m, k, n = shape or ((4096, 4096, 4096) if cuda else (1024, 1024, 1024))
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(m, k, device=device, dtype=dtype, generator=g)
    b = torch.randn(k, n, device=device, dtype=dtype, generator=g)
    out = torch.empty(m, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timed(reps: int) -> float:
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        sync()
        return time.perf_counter() - t0

    timed(1)   # warm-up: allocation, kernel choice
    reps = max(1, int(seconds / max(timed(1), 1e-6)))
    return max(2.0 * m * k * n * reps / timed(reps) for _ in range(tries))
