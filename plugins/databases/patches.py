"""Patches: a retrieval database of random square crops of another database's images.

Blattmann et al. (arXiv 2204.11824, Sec. 4 and the patch-size ablation) retrieve from a database of
image patches and find that larger patches help. Here each image of the inner database gives
``per_image`` crops of ``size`` x ``size`` pixels at seeded uniform positions, each resized back to
the inner image's size with PIL's bilinear filter (crops only ever grow, so no antialiasing is
involved), so D's entries have the shape of whole images and are embedded like them. ``size`` equal
to a square image's side gives the image itself, unresampled. Labels and class names are the source
image's.

The inner database is built as it would be on its own (same seed, so every patch size crops the same
source images, and it still excludes X by content); the crop positions come from their own stream of
the build seed. ``build`` returns a ``SplitView`` that crops on read, so D is never held whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdmbench.api import Database, Dataset, ImageSet, SplitView
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


def _read(source: ImageSet | SplitView, rows: np.ndarray) -> ImageSet:
    if isinstance(source, SplitView):
        return source.dataset.read(source.split, source.indices[rows])
    return source.subset(rows)


def _resize(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) uint8 -> (height, width, C), each channel with PIL's bilinear filter."""
    from PIL import Image

    if crop.shape[:2] == (height, width):
        return crop
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., c]))
                                .resize((width, height), Image.Resampling.BILINEAR))
                     for c in range(crop.shape[-1])], axis=-1)


class _Crops(Dataset):
    """Crop ``r % per_image`` of source image ``r // per_image`` as row ``r``, cropped and resized on read."""

    name = "patches"
    splits = ("patches",)

    def __init__(self, source: ImageSet | SplitView, shape: tuple[int, ...], size: int, per_image: int, seed: int):
        self.source, self.shape, self.size, self.per_image = source, shape, size, per_image
        height, width = shape[:2]
        rng = np.random.default_rng(np.random.SeedSequence([seed, size, per_image]))
        n = len(source) * per_image
        self.tops = rng.integers(0, height - size + 1, n)
        self.lefts = rng.integers(0, width - size + 1, n)

    def count(self, split: str) -> int:
        return len(self.tops)

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        indices = np.asarray(indices, dtype=np.int64)
        # a source image read once however many of its crops are asked for
        rows, which = np.unique(indices // self.per_image, return_inverse=True)
        if len(rows) == 0:  # nothing asked for: the shape and class names still come from the source
            got = _read(self.source, np.zeros(1, np.int64))
            return ImageSet(np.empty((0, *self.shape), np.uint8), None if got.labels is None else got.labels[:0],
                            got.class_names)
        got = _read(self.source, rows)
        height, width = self.shape[:2]
        images = np.empty((len(indices), *self.shape), np.uint8)
        for i, (index, image) in enumerate(zip(indices, which)):
            top, left = self.tops[index], self.lefts[index]
            images[i] = _resize(got.images[image, top : top + self.size, left : left + self.size], height, width)
        labels = None if got.labels is None else got.labels[which]
        return ImageSet(images, labels, got.class_names)


class Patches(Database):
    """Seeded random size x size crops of another database's images, resized back to the image size.

    Args:
        database: the database spec cropped, e.g. {name: from-dataset, dataset: {name: fashion-mnist}}.
        size: side of the square crops in pixels, 2 up to the images' shorter side (whole images).
        per_image: crops drawn from each image of the inner database.
    """

    name = "patches"

    def __init__(self, database: dict, size: int = 14, per_image: int = 1):
        from rdmbench.registry import get_registry

        if size < 2:
            raise ConfigError(f"size must be at least 2 px, got {size}", key="size")
        if per_image < 1:
            raise ConfigError(f"per_image must be at least 1, got {per_image}", key="per_image")
        registry = get_registry()
        # raises ConfigError keyed "database.<arg>", so a bad nested spec is reported where it is
        self.database_spec = registry.validate("database", database, key="database")
        self.database = registry.create("database", self.database_spec)  # cheap by contract
        self.size, self.per_image = size, per_image

    def label(self) -> str:
        return f"patches({self.size}px of {self.database.label()})"

    @property
    def excluded(self) -> int | None:
        """Images the inner database dropped because X holds them (from-dataset's count), for the row."""
        return self.database.excluded

    def size_hint(self) -> int | None:
        hint = self.database.size_hint()
        return None if hint is None else hint * self.per_image

    def check(self) -> None:
        self.database.check()
        shape = self.database.image_shape()
        if shape is not None:
            self._check_size(shape)

    def build(self, train: ImageSet, seed: int) -> SplitView:
        source = self.database.build(train, seed)
        if len(source) == 0:
            raise ConfigError(f"database {self.database.name!r} built no images to crop", key="database")
        shape = tuple(_read(source, np.zeros(1, np.int64)).images.shape[1:])
        self._check_size(shape)
        crops = _Crops(source, shape, self.size, self.per_image, seed)
        return SplitView(crops, "patches", np.arange(crops.count("patches")))

    def image_shape(self) -> tuple[int, ...] | None:
        return self.database.image_shape()  # crops are resized back to their source's shape

    def fingerprint(self) -> dict[str, Any]:
        """The inner database's resolved spec, version and fingerprint."""
        from rdmbench.provenance import describe

        return {"database": describe(self.database, self.database_spec)}

    def _check_size(self, shape: tuple[int, ...]) -> None:
        side = min(shape[:2])
        if self.size > side:
            raise ConfigError(f"size {self.size} is larger than the {shape[0]}x{shape[1]} images of database "
                              f"{self.database.name!r} (allowed: 2..{side})", key="size")


@hookimpl
def rdmbench_databases():
    return [Patches]
