"""Raw pixels as vectors: the images' uint8 values flattened to float32, not normalised.

This is how ann-benchmarks builds its MNIST and Fashion-MNIST datasets (Aumüller et al. 2020):
fashion-mnist-784-euclidean is the 60k training images as the base set and the 10k test images as
queries, 784-d, searched by L2 distance. With this encoder, ``rdmbench`` builds the same vector set
locally from the Debian Fashion-MNIST files. Values 0..255 are exact in the float16 cache.
``normalize: true`` stores them L2-normalised instead (cosine retrieval), the raw-pixel baseline
among retrieval encoders of a generation run.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Encoder
from rdmbench.hookspecs import hookimpl


class PixelsEncoder(Encoder):
    """Flattened raw pixel values (0-255, not normalised): ann-benchmarks' MNIST-style vectors."""

    name = "pixels"
    normalize = False

    def __init__(self, batch_size: int = 4096, normalize: bool = False):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.batch_size = batch_size
        #: True: stored L2-normalised like every other encoder's vectors (cosine retrieval, the head's context)
        self.normalize = normalize

    def identity(self) -> str:
        return f"pixels (flattened, {'L2-normalised' if self.normalize else 'raw 0-255'})"

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {"embedding": images.reshape(len(images), -1).astype(np.float32)}


@hookimpl
def rdmbench_encoders():
    return [PixelsEncoder]
