"""Concat: several datasets one after another, as one dataset (a training set X of several domains).

Blattmann et al. (arXiv 2204.11824, Fig. 5) swap a WikiArt database into an RDM trained on ImageNet and get
its style: a head that has learnt to render what its neighbours show follows a database it never saw. A head
trained on one small domain (Fashion-MNIST) has only ever rendered clothing, so a swapped-in database of another
domain asks it for something it never drew; training it on several domains (X and D mixing them) poses the
same question so that it can succeed. ``parts`` lists dataset specs, each validated through the registry
(errors keyed ``parts[i].<arg>``).

Each split is the parts' same-named splits one after another (the splits every part has); labels are offset
per part and class names prefixed by the part's dataset (``synthetic-shapes/circle``), as the ``mixed``
database does. Every part must give images of one shape, checked on the first read. Rows are read from the
parts a chunk at a time, so a part too large for memory stays so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


class Concat(Dataset):
    """The parts' splits one after another; labels offset per part, class names prefixed by the part's name.

    Args:
        parts: dataset specs, at least two, e.g. [{name: fashion-mnist}, {name: synthetic-shapes}].
    """

    name = "concat"

    def __init__(self, parts: list[dict]):
        from rdmbench.registry import get_registry

        self.specs, self.parts = get_registry().parts("dataset", parts, "concatenate")
        self.splits = tuple(s for s in self.parts[0].splits if all(s in p.splits for p in self.parts[1:]))
        if not self.splits:
            raise ConfigError("the parts share no split (" + "; ".join(
                f"parts[{i}]: {', '.join(p.splits)}" for i, p in enumerate(self.parts)) + ")", key="parts")
        self._names: list[tuple[str, ...]] | None = None
        if all(p.class_names for p in self.parts):
            self._names = [tuple(p.class_names) for p in self.parts]  # type: ignore[arg-type]
            self.class_names = self._prefixed(self._names)

    def check(self) -> None:
        for part in self.parts:
            part.check()

    def count(self, split: str) -> int:
        return int(self._bounds(split)[-1])

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        indices = np.asarray(indices, dtype=np.int64)
        bounds = self._bounds(split)
        which = np.searchsorted(bounds, indices, side="right") - 1
        names = self._part_names()
        offsets = np.cumsum([0] + [len(n) for n in names])
        images: np.ndarray | None = None
        labels = np.empty(len(indices), np.int64)
        for i in np.unique(which):
            rows = np.flatnonzero(which == i)
            got = self.parts[i].read(split, indices[rows] - bounds[i])
            if got.labels is None:
                raise ConfigError(f"parts[{i}] ({self.parts[i].name}) has no labels; concat offsets every part's "
                                  "labels, so each part must have them", key="parts")
            if images is None:
                images = np.empty((len(indices), *got.images.shape[1:]), np.uint8)
            elif got.images.shape[1:] != images.shape[1:]:
                raise ConfigError(f"every part must give images of one shape (HxWxC): parts[{i}] "
                                  f"({self.parts[i].name}) gives {'x'.join(map(str, got.images.shape[1:]))}, an "
                                  f"earlier part {'x'.join(map(str, images.shape[1:]))}; set the datasets' "
                                  "image_size/channels to match", key="parts")
            images[rows] = got.images
            labels[rows] = got.labels + offsets[i]
        if images is None:  # nothing asked for: the shape still comes from the first part
            images = self.parts[0].read(split, indices).images
        return ImageSet(images, labels, self._prefixed(names))

    def load(self, split: str) -> ImageSet:
        return self.read(split, np.arange(self.count(split)))

    def fingerprint(self) -> dict[str, Any]:
        """Each part's resolved spec, version and fingerprint, in order (the order sets the labels)."""
        from rdmbench.provenance import describe

        return {"parts": [describe(part, spec) for part, spec in zip(self.parts, self.specs)]}

    # -- helpers ---------------------------------------------------------------------------------------
    def _bounds(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
        return np.cumsum([0] + [p.count(split) for p in self.parts])

    def _part_names(self) -> list[tuple[str, ...]]:
        """Each part's class names: the plugin's own, else one row's (image-folder lists its folders)."""
        if self._names is None:
            names = []
            for part in self.parts:
                first = next((s for s in self.splits if part.count(s)), self.splits[0])
                own = part.read(first, np.zeros(1, np.int64)).class_names
                if not own:
                    raise ConfigError(f"{part.name!r} names no classes; concat prefixes every part's class names, so "
                                      "each part must have them", key="parts")
                names.append(tuple(own))
            self._names = names
        return self._names

    def _prefixed(self, names: list[tuple[str, ...]]) -> tuple[str, ...]:
        sources = [p.name for p in self.parts]
        return tuple(f"{source if sources.count(source) == 1 else f'{source}[{i}]'}/{c}"
                     for i, (source, own) in enumerate(zip(sources, names)) for c in own)


@hookimpl
def rdmbench_datasets():
    return [Concat]
