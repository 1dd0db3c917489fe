"""Pixel space as a first stage: the head generates images directly (no autoencoder).

``encode`` maps uint8 NHWC to float32 NCHW in [-1, 1]; ``decode`` clamps, rescales and rounds
back to uint8 NHWC. Nothing is trained, nothing is stored. Pure numpy: no torch needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rdmbench.api import FirstStage
from rdmbench.hookspecs import hookimpl


class IdentityFirstStage(FirstStage):
    """Pixel space: images scaled to [-1, 1] NCHW, no autoencoder (the head sees raw pixels)."""

    name = "identity"
    trainable = False

    def __init__(self) -> None:
        pass

    def fit(self, images: np.ndarray, seed: int, progress=None) -> dict[str, float]:
        return {}

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        h, w, c = (int(v) for v in image_shape)
        return (c, h, w)

    def encode(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
        x = images.transpose(0, 3, 1, 2).astype(np.float32)
        return np.ascontiguousarray(x / np.float32(127.5) - np.float32(1.0))

    def decode(self, latents: np.ndarray) -> np.ndarray:
        z = np.asarray(latents, dtype=np.float32)
        if z.ndim != 4:
            raise ValueError(f"expected latents (N, C, H, W), got shape {z.shape}")
        x = np.rint((np.clip(z, -1.0, 1.0) + 1.0) * 127.5)
        return np.ascontiguousarray(x.astype(np.uint8).transpose(0, 2, 3, 1))

    def save(self, directory: Path) -> None:
        pass

    def load(self, directory: Path) -> None:
        pass


@hookimpl
def rdmbench_first_stages():
    return [IdentityFirstStage]
