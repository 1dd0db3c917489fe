"""Mixed: one retrieval database concatenated from several database specs.

Blattmann et al. (arXiv 2204.11824, Fig. 6) compare in-domain and out-of-domain databases; a
database that holds both (e.g. Fashion-MNIST with scikit-learn's digits and photo patches) asks
whether retrieval still finds the in-domain neighbours when the rest is noise to it.

Each part is a database spec validated through the registry like any other (errors keyed
``parts[i].<arg>``), built against the same X (so each part excludes X itself) with its own seed
derived from the run's seed and the part's position, so two parts drawing from one source do not
draw the same rows. Parts are not de-duplicated against each other. Every part must give images
of one shape, checked when D is built from one image of each part, before any row is stored.
Labels are offset per part so the label spaces do not collide, and class names are prefixed by
the part's source (``fashion-mnist/T-shirt/top``); if any part has no labels, D has none.

``build`` returns a ``SplitView`` over the parts' own rows, so the pipeline stores D a chunk at a
time and no part is held in memory whole by this plugin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdmbench.api import Database, Dataset, ImageSet, SplitView
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


def part_seed(seed: int, index: int) -> int:
    """A seed per part, distinct for each position and independent of the other parts."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class _Concatenation(Dataset):
    """The parts' built rows, one after another, as a one-split dataset a ``SplitView`` reads."""

    name = "mixed"
    splits = ("mixed",)

    def __init__(self, parts: list[ImageSet | SplitView], offsets: list[int] | None,
                 class_names: tuple[str, ...] | None):
        self.parts, self.offsets, self.class_names = parts, offsets, class_names
        self.bounds = np.cumsum([0] + [len(p) for p in parts])

    def count(self, split: str) -> int:
        return int(self.bounds[-1])

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        indices = np.asarray(indices, dtype=np.int64)
        which = np.searchsorted(self.bounds, indices, side="right") - 1
        images: np.ndarray | None = None
        labels = np.empty(len(indices), np.int64) if self.offsets is not None else None
        for i in np.unique(which):
            rows = np.flatnonzero(which == i)
            got = _rows(self.parts[i], indices[rows] - self.bounds[i])
            if images is None:
                images = np.empty((len(indices), *got.images.shape[1:]), np.uint8)
            images[rows] = got.images
            if labels is not None:
                labels[rows] = got.labels + self.offsets[i]
        if images is None:  # nothing asked for: the shape still comes from the first part
            images = _rows(self.parts[0], indices).images
        return ImageSet(images, labels, self.class_names if labels is not None else None)


def _rows(part: ImageSet | SplitView, local: np.ndarray) -> ImageSet:
    if isinstance(part, SplitView):
        return part.dataset.read(part.split, part.indices[local])
    return part.subset(local)


def _source(part: ImageSet | SplitView, database: Database) -> str:
    """What a part's class names are prefixed with: the dataset it reads, else the database's name."""
    return part.dataset.name if isinstance(part, SplitView) else database.name


class Mixed(Database):
    """Several databases concatenated into one D, labels offset per part, class names prefixed by source."""

    name = "mixed"

    def __init__(self, parts: list[dict]):
        from rdmbench.registry import get_registry

        self.specs, self.parts = get_registry().parts("database", parts, "mix")

    def label(self) -> str:
        return "mixed(" + "+".join(part.label() for part in self.parts) + ")"

    def image_shape(self) -> tuple[int, ...] | None:
        return self.parts[0].image_shape()  # the parts share one shape (checked when D is built)

    def size_hint(self) -> int | None:
        hints = [part.size_hint() for part in self.parts]
        return None if any(h is None for h in hints) else sum(hints)

    def check(self) -> None:
        for part in self.parts:
            part.check()

    def build(self, train: ImageSet, seed: int) -> SplitView:
        built = [part.build(train, part_seed(seed, i)) for i, part in enumerate(self.parts)]
        empty = [f"parts[{i}]" for i, b in enumerate(built) if len(b) == 0]
        if empty:
            raise ConfigError(f"{', '.join(empty)} built no images; every part must add some", key="parts")
        firsts = [_rows(b, np.zeros(1, np.int64)) for b in built]
        shapes = [f.images.shape[1:] for f in firsts]
        if len(set(shapes)) > 1:
            listed = ", ".join(f"parts[{i}] ({_source(b, p)}) {'x'.join(map(str, s))}"
                               for i, (b, p, s) in enumerate(zip(built, self.parts, shapes)))
            raise ConfigError(f"every part must give images of one shape (HxWxC), got: {listed}; set the "
                              "datasets' image_size/channels to match", key="parts")
        offsets: list[int] | None = None
        class_names: tuple[str, ...] | None = None
        if all(f.labels is not None for f in firsts):
            offsets, names = [], []
            sources = [_source(b, p) for b, p in zip(built, self.parts)]
            for i, (first, source) in enumerate(zip(firsts, sources)):
                if sources.count(source) > 1:  # the same source twice: tell its parts apart
                    source = f"{source}[{i}]"
                own = first.class_names or tuple(str(c) for c in range(_label_count(built[i])))
                offsets.append(len(names))
                names.extend(f"{source}/{c}" for c in own)
            class_names = tuple(names)
        concatenation = _Concatenation(built, offsets, class_names)
        return SplitView(concatenation, "mixed", np.arange(concatenation.count("mixed")))

    def fingerprint(self) -> dict[str, Any]:
        """Each part's resolved spec, version and fingerprint, in order (the order sets the labels)."""
        try:
            from rdmbench.provenance import describe
        except ImportError:  # before describe moved out of the pipeline
            from rdmbench.pipeline import describe

        return {"parts": [describe(part, spec) for part, spec in zip(self.parts, self.specs)]}


def _label_count(part: ImageSet | SplitView) -> int:
    """Labels a part without class names can use: one more than its largest (reads its labels once)."""
    if isinstance(part, ImageSet):
        return int(part.labels.max()) + 1
    return max(int(chunk.labels.max()) + 1 for chunk in part.chunks())


@hookimpl
def rdmbench_databases():
    return [Mixed]
