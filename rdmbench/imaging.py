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


def save_panel(path: Path, samples: np.ndarray, queries: np.ndarray | None,
               neighbours: tuple[np.ndarray, np.ndarray] | None, train: np.ndarray, nearest: np.ndarray,
               rows: int = 8, max_neighbours: int = 8, scale: int = 3) -> None:
    """Write a PNG that shows whether a model copies: one row per sample with its query, its retrieved
    neighbours (``(database images, ids (num, k))``), the sample, and its nearest training image, under
    a header naming the columns."""
    import io

    from PIL import Image, ImageDraw

    n = min(rows, len(samples))
    h, w, c = samples.shape[1:]
    k = 0 if neighbours is None else min(max_neighbours, neighbours[1].shape[1])

    def fit(img: np.ndarray) -> np.ndarray:  # a database or query image of another size or channel count
        img = np.asarray(img)
        if img.shape[2] != c:
            img = img.mean(2, keepdims=True).astype(np.uint8) if c == 1 else np.repeat(img[..., :1], c, 2)
        if img.shape[:2] != (h, w):
            mode = "L" if c == 1 else "RGB"
            img = np.asarray(Image.fromarray(img[..., 0] if c == 1 else img, mode).resize((w, h), Image.BILINEAR))
            img = img[..., None] if c == 1 else img
        return img

    columns = ([("query", 1)] if queries is not None else []) + ([(f"{k} neighbours", k)] if k else []) + \
        [("sample", 1), ("nearest train", 1)]
    cells = []
    for i in range(n):
        row = ([fit(queries[i])] if queries is not None else [])
        row += [fit(neighbours[0][j]) for j in neighbours[1][i, :k]] if k else []
        row += [samples[i], fit(train[nearest[i]])]
        cells.append(row)
    gap, pad = 10, 2
    groups = [size for _, size in columns]
    width = pad + sum(size * (w + pad) for size in groups) + gap * (len(groups) - 1)
    body = np.full((pad + n * (h + pad), width, c), 255, dtype=np.uint8)
    for r, row in enumerate(cells):
        x, j = pad, 0
        for size in groups:
            for _ in range(size):
                body[pad + r * (h + pad): pad + r * (h + pad) + h, x:x + w] = row[j]
                x, j = x + w + pad, j + 1
            x += gap
    img = Image.fromarray(body[..., 0] if c == 1 else body).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    header = 18
    starts = np.cumsum([0] + [(size * (w + pad) + gap) * scale for _, size in columns])[:-1] + pad * scale
    measure = ImageDraw.Draw(img)
    width = max(img.width, *(int(x + measure.textlength(name)) + 4 for x, (name, _) in zip(starts, columns)))
    canvas = Image.new("RGB", (width, img.height + header), "white")
    canvas.paste(img, (0, header))
    draw = ImageDraw.Draw(canvas)
    for x, (name, _) in zip(starts, columns):
        draw.text((int(x), 3), name, fill=(40, 40, 40))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    write_bytes(Path(path), buf.getvalue())


def save_prompt_grid(path: Path, samples: np.ndarray, texts: list[str], per_prompt: int = 8, max_prompts: int = 16,
                     scale: int = 2) -> None:
    """Write a PNG with one row per prompt (in the order they first appear): the prompt's text, then its
    first ``per_prompt`` samples."""
    import io

    from PIL import Image, ImageDraw

    order: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        order.setdefault(text, []).append(i)
    rows = list(order.items())[:max_prompts]
    per_prompt = min(per_prompt, max(len(ids) for _, ids in rows))
    h, w, c = samples.shape[1:]
    pad = 2
    strip = np.full((pad + len(rows) * (h + pad), pad + per_prompt * (w + pad), c), 255, dtype=np.uint8)
    for r, (_, ids) in enumerate(rows):
        for j, i in enumerate(ids[:per_prompt]):
            y, x = pad + r * (h + pad), pad + j * (w + pad)
            strip[y:y + h, x:x + w] = samples[i]
    img = Image.fromarray(strip[..., 0] if c == 1 else strip).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    measure = ImageDraw.Draw(img)
    label_w = 8 + max(int(measure.textlength(text)) for text, _ in rows)
    canvas = Image.new("RGB", (label_w + img.width, img.height), "white")
    canvas.paste(img, (label_w, 0))
    draw = ImageDraw.Draw(canvas)
    row_h = (h + pad) * scale
    for r, (text, _) in enumerate(rows):
        draw.text((4, pad * scale + r * row_h + row_h // 2 - 6), text, fill=(30, 30, 30))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    write_bytes(Path(path), buf.getvalue())
