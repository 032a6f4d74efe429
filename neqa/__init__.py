"""The shared core every stage imports (and nothing here imports a stage).

    from neqa import load_summaries, load_items     # a results folder as pandas DataFrames

io (JSONL/JSON reading, atomic writes, DataError), paths (repository root), figures (saving),
maths (logaddexp, the task decomposition), device (device, dtype, parameter counts), tokenizer
(offline byte-level BPE), checkpoints (a training run's layout), results (reading results folders).
"""


def __getattr__(name):   # lazy, so that `import neqa.io` does not import pandas
    if name in ("load_summaries", "load_items"):
        from neqa import results
        return getattr(results, name)
    raise AttributeError(f"module 'neqa' has no attribute {name!r}")


__all__ = ["load_summaries", "load_items"]
