"""Saving matplotlib figures: every figure of every stage is written by `save_figure`."""
from __future__ import annotations

from pathlib import Path

from neqa.io import atomic_open


def save_figure(fig, out_dir, name: str, formats=("png", "pdf"), dpi: int = 150, bbox: str | None = "tight") -> list[Path]:
    """Write a matplotlib figure as out_dir/name.png and .pdf (atomically), then close it."""
    import matplotlib.pyplot as plt
    paths = []
    for ext in formats:
        path = Path(out_dir) / f"{name}.{ext}"
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format=ext, dpi=dpi, bbox_inches=bbox)
        paths.append(path)
    plt.close(fig)
    return paths
