"""Images as they cross plugin boundaries: ``ImageSet`` (uint8 NHWC arrays with labels) and ``SplitView``
(rows of a dataset split, decoded a chunk at a time). What the data and database stages store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from rdmbench.errors import RdmbenchError

if TYPE_CHECKING:
    from rdmbench.api.dataset import Dataset


@dataclass
class ImageSet:
    """Images with optional labels. ``images`` is uint8 (N, H, W, C); ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> ImageSet:
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, self.class_names)


@dataclass
class SplitView:
    """Rows ``indices`` of a dataset split, decoded only when read, a chunk at a time.

    What the pipeline stores X, the reference set and D from, so that a split larger than RAM is
    written to disk chunk by chunk and never held whole (``Database.build`` may return one too).
    """

    dataset: Dataset
    split: str
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def chunks(self) -> Iterator[ImageSet]:
        """Consecutive rows, about ``rdmbench.chunks.CHUNK_BYTES`` of pixels each, in order.

        The first chunk is one image, which tells the image size; an empty view yields one empty chunk.
        """
        from rdmbench import chunks

        start, step = 0, 1
        while True:
            asked = self.indices[start : start + step]
            part = self.dataset.read(self.split, asked)
            if len(part) != len(asked):
                raise RdmbenchError(f"dataset {self.dataset.name!r} returned {len(part)} images of split "
                                    f"{self.split!r} for {len(asked)} indices")
            yield part
            start += len(part)
            if start >= len(self.indices):
                return
            step = chunks.rows_per_chunk(part.images[0].nbytes)

    def load(self) -> ImageSet:
        """Every row in memory at once: for small views only."""
        return self.dataset.read(self.split, self.indices)
