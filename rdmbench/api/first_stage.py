"""The first-stage contract: the space a head generates in (latents, or a VQ codebook's tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rdmbench.api.plugin import Plugin

if TYPE_CHECKING:
    from rdmbench.progress import Progress


class FirstStage(Plugin):
    """The space a head generates in: ``encode`` images to latents, ``decode`` back to uint8 images.

    A first stage that quantises to a codebook (a VQ autoencoder) also exposes token ids: it returns
    the number of codes from ``codebook_size`` (None: no tokens, the default), ``encode_tokens``
    gives int64 (N, h, w) code ids and ``decode_tokens`` images from them. Heads that generate
    tokens (``Head.generates == "tokens"``, e.g. RARM) need one.
    """

    kind = "first_stage"
    trainable: ClassVar[bool] = False

    def fit(self, images: np.ndarray, seed: int, progress: Progress | None = None) -> dict[str, float]:
        return {}

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        raise NotImplementedError

    def encode(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decode(self, latents: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def codebook_size(self) -> int | None:
        """Number of codebook entries when this first stage (as configured, before any fit) has tokens."""
        return None

    def encode_tokens(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) images -> int64 (N, h, w) codebook ids, h x w = ``latent_shape``'s grid."""
        raise NotImplementedError(f"first stage {self.name!r} has no codebook")

    def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """int (N, h, w) codebook ids -> uint8 (N, H, W, C) images."""
        raise NotImplementedError(f"first stage {self.name!r} has no codebook")

    def save(self, directory: Path) -> None:
        pass

    def load(self, directory: Path) -> None:
        pass
