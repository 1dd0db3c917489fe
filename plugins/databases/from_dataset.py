"""From-dataset: the retrieval database D carved out of a dataset split, disjoint from X.

Blattmann et al. (arXiv 2204.11824) retrieve from a database D with D ∩ X = ∅ (for ImageNet they
hold out part of the data; for the small benchmarks here, D is another split or the rest of X's
split). Disjointness is enforced by image *content*: every image of the source split whose pixels
equal an image of X is dropped, so D stays disjoint from X even when X was drawn from the same
split or the source holds duplicates. D is then a seeded random subset of what remains.

``build`` returns a ``SplitView``: the source split is decoded a chunk at a time to hash it, and
the pipeline reads D's rows again in chunks to store them, so no split is ever held in RAM whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdmbench.api import Database, ImageSet, SplitView
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl
from rdmbench.overlap import content_hashes


class FromDataset(Database):
    """A seeded subset of a dataset split, with every image of the training set X excluded by content."""

    name = "from-dataset"

    def __init__(self, dataset: dict, split: str = "train", size: int | None = None, exclude_train: bool = True,
                 seed_offset: int = 1):
        from rdmbench.registry import get_registry

        registry = get_registry()
        # raises ConfigError keyed "dataset.<arg>", so a bad nested spec is reported where it is
        self.dataset_spec = registry.validate("dataset", dataset, key="dataset")
        self.dataset = registry.create("dataset", self.dataset_spec)  # cheap: datasets do no IO until load()
        if split not in self.dataset.splits:
            raise ConfigError(f"dataset {self.dataset.name!r} has no split {split!r} "
                              f"(allowed: {', '.join(self.dataset.splits)})", key="split")
        if size is not None and size < 1:
            raise ConfigError(f"size must be positive or null (everything left), got {size}", key="size")
        self.split, self.size, self.exclude_train, self.seed_offset = split, size, exclude_train, seed_offset
        #: images of the source split dropped because X holds the same content; set by build()
        self.excluded = 0

    def size_hint(self) -> int | None:
        return self.size

    def label(self) -> str:
        return str(self.dataset_spec["name"])

    def image_shape(self) -> tuple[int, ...] | None:
        if not self.dataset.count(self.split):
            return None
        return tuple(self.dataset.read(self.split, np.zeros(1, np.int64)).images.shape[1:])

    def build(self, train: ImageSet, seed: int) -> SplitView:
        source = SplitView(self.dataset, self.split, np.arange(self.dataset.count(self.split)))
        keep = np.ones(len(source), dtype=bool)
        if self.exclude_train and len(train):
            keep = ~np.isin(content_hashes(source), content_hashes(train.images))
        self.excluded = int((~keep).sum())
        available = np.flatnonzero(keep)
        size = len(available) if self.size is None else self.size
        if size > len(available):
            dropped = f" after excluding {self.excluded} images that are also in X" if self.excluded else ""
            raise ConfigError(
                f"{self.dataset.name!r} split {self.split!r} has only {len(available)} images available{dropped}; "
                f"asked for {size}", key="size")
        rng = np.random.default_rng(seed + self.seed_offset)
        return SplitView(self.dataset, self.split, rng.permutation(available)[:size])

    def fingerprint(self) -> dict[str, Any]:
        """The source dataset's resolved spec, version and fingerprint (e.g. its file hashes).

        The nested spec as written in a suite lacks the dataset's defaults; the resolved one here
        makes equal configurations key the cache equally; its code hash notices a changed loader.
        """
        from rdmbench.provenance import describe

        return {"dataset": describe(self.dataset, self.dataset_spec)}


@hookimpl
def rdmbench_databases():
    return [FromDataset]
