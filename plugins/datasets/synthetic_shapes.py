"""Synthetic shapes: a generated, deterministic stand-in for Fashion-MNIST in unit tests.

Ten classes of simple grayscale shapes with random position, size, brightness and pixel noise,
drawn with numpy alone in well under a second. Neighbours of a shape are mostly shapes of the same
class, so retrieval, conditioning and class-agreement metrics behave sensibly on it without any
download. Not a benchmark: nothing about it comes from a paper.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl

CLASS_NAMES = ("circle", "square", "triangle", "cross", "horizontal-bars",
               "vertical-bars", "ring", "diagonal", "checker", "dot")

# pixels are drawn in chunks so memory stays bounded at large image sizes
_CHUNK = 256


def _masks(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Foreground mask of class ``label`` in shape-centred coordinates (1 = the shape's radius)."""
    box = (np.abs(u) <= 0.9) & (np.abs(v) <= 0.9)
    r2 = u * u + v * v
    if label == 0:
        return r2 <= 1.0
    if label == 1:
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if label == 2:  # apex up, base down
        return (v >= -0.9) & (v <= 0.8) & (np.abs(u) <= (v + 0.9) * 0.55)
    if label == 3:
        return ((np.abs(u) <= 0.25) & (np.abs(v) <= 0.9)) | ((np.abs(v) <= 0.25) & (np.abs(u) <= 0.9))
    if label == 4:
        return box & (np.cos(v * np.pi * 2.2) > 0.2)
    if label == 5:
        return box & (np.cos(u * np.pi * 2.2) > 0.2)
    if label == 6:
        return (r2 <= 1.0) & (r2 >= 0.55**2)
    if label == 7:
        return box & (np.abs(u - v) <= 0.3)
    if label == 8:
        return box & ((np.floor(u * 2.2) + np.floor(v * 2.2)) % 2 == 0)
    return r2 <= 0.35**2  # dot: a circle a third the size


class SyntheticShapes(Dataset):
    """Generated grayscale shapes in 10 classes: a fast, deterministic test fixture (no download)."""

    name = "synthetic-shapes"
    splits = ("train", "test")
    class_names = CLASS_NAMES

    def __init__(self, image_size: int = 28, train_size: int = 2000, test_size: int = 500, seed: int = 0,
                 channels: Literal[1, 3] = 1):
        if image_size < 8:
            raise ConfigError(f"image_size must be at least 8, got {image_size}", key="image_size")
        for key, value in (("train_size", train_size), ("test_size", test_size)):
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}", key=key)
        self.image_size, self.seed, self.channels = image_size, seed, channels
        self.sizes = {"train": train_size, "test": test_size}

    def load(self, split: str) -> ImageSet:
        if split not in self.sizes:
            raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
        n, s = self.sizes[split], self.image_size
        # one stream per split: train and test differ, and neither depends on the other's size
        rng = np.random.default_rng([self.seed, self.splits.index(split)])
        labels = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
        radius = rng.uniform(0.22, 0.36, n) * s
        centre = s / 2 + rng.uniform(-0.12, 0.12, (n, 2)) * s
        fg = rng.uniform(150, 255, n)
        bg = rng.uniform(0, 40, n)
        noise_rng, tint_rng = rng.spawn(2)
        grid = np.arange(s, dtype=np.float32) + 0.5
        out = np.empty((n, s, s), dtype=np.float32)
        for label in range(len(CLASS_NAMES)):
            members = np.flatnonzero(labels == label)
            for start in range(0, len(members), _CHUNK):
                chunk = members[start : start + _CHUNK]
                r = radius[chunk, None, None].astype(np.float32)
                u = (grid[None, None, :] - centre[chunk, 0, None, None]) / r
                v = (grid[None, :, None] - centre[chunk, 1, None, None]) / r
                mask = _masks(label, u, v)
                out[chunk] = np.where(mask, fg[chunk, None, None], bg[chunk, None, None])
        out += 8 * noise_rng.standard_normal(out.shape, dtype=np.float32)
        images = out[..., None]
        if self.channels == 3:  # a random tint per image, so colour carries no class information
            tint = tint_rng.uniform(0.5, 1.0, (n, 1, 1, 3)).astype(np.float32)
            images = images * tint
        return ImageSet(np.clip(images, 0, 255).round().astype(np.uint8), labels, CLASS_NAMES)

    def fingerprint(self) -> dict:
        return {}  # generated from the config alone; `version` covers changes to the generator


@hookimpl
def rdmbench_datasets():
    return [SyntheticShapes]
