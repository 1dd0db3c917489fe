"""The dataset contract: labelled image splits, read whole or a chunk of rows at a time."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rdmbench.api.images import ImageSet
from rdmbench.api.plugin import Plugin


class Dataset(Plugin):
    """Labelled image splits. ``load(split)`` returns the whole split, deterministically.

    Streaming: the pipeline never calls ``load``; it asks ``count(split)``, picks rows, and reads
    them in chunks with ``read(split, indices)``. The defaults below serve both from ``load`` (one
    split kept in memory between calls), so an in-memory dataset writes ``load`` only; a dataset
    too large for RAM (``image-folder``) overrides ``count`` and ``read`` to decode only the rows
    asked for. ``read`` must return exactly ``load(split).subset(indices)``.
    """

    kind = "dataset"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    #: the class names, when the plugin knows them without reading any split (None: read them from a row)
    class_names: tuple[str, ...] | None = None

    def load(self, split: str) -> ImageSet:
        raise NotImplementedError

    def count(self, split: str) -> int:
        """Number of images in ``split``."""
        return len(self._whole(split))

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        """Images ``indices`` (ascending or not) of ``split``, with labels and class names."""
        return self._whole(split).subset(np.asarray(indices, dtype=np.int64))

    def _whole(self, split: str) -> ImageSet:
        # plugins need not call super().__init__, hence the lookup in __dict__
        held = self.__dict__.get("_whole_split")
        if held is None or held[0] != split:
            held = self.__dict__["_whole_split"] = (split, self.load(split))
        return held[1]

    def fingerprint(self) -> dict[str, Any]:
        """Extra cache-key material beyond the constructor arguments (e.g. source file hashes)."""
        return {}
