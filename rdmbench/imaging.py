"""Image grids for looking at samples next to the queries that conditioned them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rdmbench.cache import write_bytes


def tile(images: np.ndarray, ncol: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 (H', W', C) mosaic, row-major."""
    n, h, w, c = images.shape
    nrow = max(1, -(-n // ncol))
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, ncol)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = img
    return out


def save_grid(path: Path, samples: np.ndarray, queries: np.ndarray | None = None, ncol: int = 8,
              max_items: int = 64, scale: int = 2) -> None:
    """Write a PNG: samples, or query | sample panels side by side (same positions)."""
    import io

    from PIL import Image

    panels = [tile(samples[:max_items], ncol)]
    if queries is not None:
        panels.insert(0, tile(queries[:max_items], ncol))
        gap = np.full((panels[0].shape[0], 12, panels[0].shape[2]), 255, dtype=np.uint8)
        panels.insert(1, gap)
    mosaic = np.concatenate(panels, axis=1)
    if mosaic.shape[2] == 1:
        mosaic = mosaic[..., 0]
    img = Image.fromarray(mosaic)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    write_bytes(Path(path), buf.getvalue())
