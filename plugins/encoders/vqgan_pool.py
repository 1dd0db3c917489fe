"""Pooled first-stage latents as the retrieval embedding: the paper's VQGAN-pooled ablation.

Blattmann et al. (2022) compare retrieving and conditioning with CLIP image embeddings against
spatially pooled latents of the VQGAN first stage, and find CLIP better. This encoder is the
second option for any first stage: the generation task hands it the run's fitted first stage
(``uses_first_stage``), and an image's embedding is its latent (``FirstStage.encode``: the VQ
model's pre-quantisation latent, times its scaling factor) average- or max-pooled to a
``grid`` x ``grid`` map and flattened: C x grid² values (16 channels, grid 2: 64-d). With the
identity first stage it is a pooled-pixel (thumbnail) embedding.

The embeddings are therefore as good as the first stage the run trained, and are keyed on it: a
first stage trained differently gives other neighbours. Not a feature extractor for metrics.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rdmbench.api import Encoder, FirstStage
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


class VQGANPoolEncoder(Encoder):
    """Pooled latents of the run's own first stage (the paper's VQGAN-pooled features)."""

    name = "vqgan-pool"
    uses_first_stage = True

    def __init__(self, grid: int = 2, pool: Literal["mean", "max"] = "mean", batch_size: int = 256):
        if grid < 1:
            raise ConfigError(f"must be >= 1 (a grid x grid pooled map), got {grid}", key="grid")
        if batch_size <= 0:
            raise ConfigError("must be positive", key="batch_size")
        self.grid, self.pool, self.batch_size = grid, pool, batch_size
        self.first_stage: FirstStage | None = None

    def attach_first_stage(self, first_stage: FirstStage) -> None:
        self.first_stage = first_stage

    def identity(self) -> str:
        fs = self.first_stage.name if self.first_stage is not None else "first stage"
        return f"vqgan-pool ({self.pool}-pooled {fs} latents, {self.grid}x{self.grid})"

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        if self.first_stage is None:
            raise RuntimeError("vqgan-pool needs the run's first stage (attach_first_stage) before encoding")
        latents = torch.from_numpy(np.ascontiguousarray(self.first_stage.encode(images), dtype=np.float32))
        if self.grid > min(latents.shape[-2:]):
            raise ConfigError(f"grid {self.grid} exceeds the first stage's {latents.shape[-2]}x{latents.shape[-1]} "
                              f"latent; allowed: 1..{min(latents.shape[-2:])}", key="encoder.grid")
        pool = F.adaptive_avg_pool2d if self.pool == "mean" else F.adaptive_max_pool2d
        return {"embedding": pool(latents, self.grid).flatten(1).numpy()}


@hookimpl
def rdmbench_encoders():
    return [VQGANPoolEncoder]
