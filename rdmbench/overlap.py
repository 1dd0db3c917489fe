"""Content identity of images, so that the retrieval database D is provably disjoint from X.

Blattmann et al. (arXiv 2204.11824, Sec. 3) train on X and retrieve from a database D with
D ∩ X = ∅; otherwise a training image's nearest neighbour is itself and the model learns to copy.
Indices cannot show disjointness (two splits, or two datasets, may hold the same picture), so
images are compared by a hash of their pixel bytes. Used by the `from-dataset` database to carve D
and by the pipeline to check X ∩ D = ∅ and D ∩ reference = ∅ (samples scored against images the
model could retrieve would be graded on copies) for any database.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from rdmbench.api import SplitView

#: one blake2b-128 digest per image; 2^-64 collision odds over millions of images is plenty
DIGEST = np.dtype("S16")


def content_hashes(images: np.ndarray | SplitView) -> np.ndarray:
    """One 16-byte digest per image of ``images`` (N, ...); equal digests mean equal pixels.

    ``images`` may be memory-mapped (it is read one image at a time, never copied whole) or a
    ``SplitView`` (decoded a chunk at a time). The per-image shape and dtype are part of the
    digest, so a 28x28x1 image never matches a 28x28x3 one whose bytes happen to coincide.
    """
    if isinstance(images, SplitView):
        parts = [content_hashes(part.images) for part in images.chunks()]
        return np.concatenate(parts) if parts else np.empty(0, DIGEST)
    images = np.asarray(images)  # a memmap stays a mapping: no copy
    if images.ndim < 2:
        raise ValueError(f"expected a batch of images (N, ...), got shape {images.shape}")
    # blake2b's `person` (16 bytes) carries the shape/dtype, so hashing stays one call per image
    dims = (tuple(images.shape[1:]) + (0, 0, 0))[:3]
    person = struct.pack("<3I", *dims) + images.dtype.str.encode()[:4]
    out = np.empty(len(images), dtype=DIGEST)
    for i, image in enumerate(images):  # tobytes() is C order whatever the layout
        out[i] = hashlib.blake2b(image.tobytes(), digest_size=16, person=person).digest()
    return out


def _as_hashes(x: np.ndarray | SplitView) -> np.ndarray:
    if isinstance(x, SplitView):
        return content_hashes(x)
    x = np.asarray(x)
    return x if x.dtype == DIGEST else content_hashes(x)


def overlap_count(a: np.ndarray | SplitView, b: np.ndarray | SplitView) -> int:
    """How many items of ``a`` have the same content as some item of ``b``.

    Each argument is a batch of images (memory-mapped or not), a ``SplitView`` or the output of
    ``content_hashes``. Zero means
    ``a`` and ``b`` share no image.
    """
    ha, hb = _as_hashes(a), _as_hashes(b)
    if len(ha) == 0 or len(hb) == 0:
        return 0
    return int(np.isin(ha, hb).sum())
