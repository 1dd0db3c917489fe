"""Class subset: the rows of another dataset whose class is one of a chosen few, relabelled 0..n-1.

Blattmann et al. (arXiv 2204.11824, Fig. 12) train on nested ImageNet subsets (Dogs ⊂ Mammals ⊂
Animals) to show that retrieval's advantage over an equal-size parametric model grows with the
data's complexity. Nested class subsets of a small dataset (3 ⊂ 6 ⊂ 10 Fashion-MNIST classes) are the
analogue here; as ``data.dataset`` or inside ``from-dataset`` it gives X, the reference set and D.

``classes`` lists the classes kept, by index or by name (matched against the inner dataset's class
names), in the order that sets the new labels; class names are subset alike, so class agreement's
classifier and its chance level see only the kept classes. Every split is filtered the same way,
keeping the inner dataset's row order.

Streams: the kept rows of a split are found from its labels alone, read once a chunk at a time
(a dataset that only offers ``load()`` loads that split once to give them), and ``read`` decodes
only the rows asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdmbench.api import Dataset, ImageSet, SplitView
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


class ClassSubset(Dataset):
    """The rows of a dataset whose class is in `classes` (by index or name), relabelled in that order.

    Args:
        dataset: the dataset spec to subset, e.g. {name: fashion-mnist}.
        classes: classes kept, by index or class name; the first becomes label 0, and so on.
    """

    name = "class-subset"

    def __init__(self, dataset: dict, classes: list[int | str]):
        from rdmbench.registry import get_registry

        registry = get_registry()
        # raises ConfigError keyed "dataset.<arg>", so a bad nested spec is reported where it is
        self.dataset_spec = registry.validate("dataset", dataset, key="dataset")
        self.dataset = registry.create("dataset", self.dataset_spec)  # cheap: datasets do no IO until read
        self.splits = tuple(self.dataset.splits)
        if not classes:
            raise ConfigError("list at least one class to keep, by index or name", key="classes")
        self.classes = list(classes)
        #: the inner dataset's class ids kept, in the order given; resolved here when the inner dataset
        #: names its classes without reading (most do), else on first read
        self.picked: np.ndarray | None = None
        self.class_names: tuple[str, ...] | None = None
        names = self.dataset.class_names
        if names:
            self._resolve(tuple(names))
        elif len(set(map(repr, self.classes))) < len(self.classes):  # names unknown yet: repeats are still wrong
            raise ConfigError(f"classes {self.classes} lists a class twice", key="classes")
        self._rows: dict[str, np.ndarray] = {}

    def check(self) -> None:
        self.dataset.check()
        self._classes()

    def count(self, split: str) -> int:
        return len(self._kept(split))

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        rows = self._kept(split)[np.asarray(indices, dtype=np.int64)]
        got = self.dataset.read(split, rows)
        return ImageSet(got.images, self._relabel(got.labels), self.class_names)

    def load(self, split: str) -> ImageSet:
        return self.read(split, np.arange(self.count(split)))

    def fingerprint(self) -> dict[str, Any]:
        """The inner dataset's resolved spec, version and fingerprint (e.g. its file hashes)."""
        from rdmbench.provenance import describe

        return {"dataset": describe(self.dataset, self.dataset_spec)}

    # -- which rows -----------------------------------------------------------------------------------
    def _classes(self) -> np.ndarray:
        if self.picked is None:
            # no class names without reading: one row tells them (image-folder lists its folders), and
            # without names, the labels present in every split say which indices exist
            first = next((s for s in self.splits if self.dataset.count(s)), self.splits[0])
            names = self.dataset.read(first, np.zeros(1, np.int64)).class_names
            if names is None:
                top = max((int(self._labels(s).max()) for s in self.splits if self.dataset.count(s)), default=-1)
                names = tuple(str(c) for c in range(top + 1))
            self._resolve(tuple(names))
        return self.picked

    def _resolve(self, names: tuple[str, ...]) -> None:
        allowed = f"allowed: 0..{len(names) - 1} or {', '.join(names)}"
        picked = []
        for c in self.classes:
            if isinstance(c, str) and c in names:
                picked.append(names.index(c))
            elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(names):
                picked.append(c)
            else:
                raise ConfigError(f"dataset {self.dataset.name!r} has no class {c!r} ({allowed})", key="classes")
        twice = sorted({names[p] for p in picked if picked.count(p) > 1})
        if twice:
            raise ConfigError(f"classes {self.classes} lists {', '.join(map(repr, twice))} twice; list each class "
                              f"once ({allowed})", key="classes")
        self.picked = np.array(picked, np.int64)
        self.class_names = tuple(names[p] for p in picked)

    def _labels(self, split: str) -> np.ndarray:
        view = SplitView(self.dataset, split, np.arange(self.dataset.count(split)))
        labels = [chunk.labels for chunk in view.chunks()]
        if any(part is None for part in labels):
            raise ConfigError(f"dataset {self.dataset.name!r} has no labels to choose classes by", key="dataset")
        return np.concatenate(labels)

    def _kept(self, split: str) -> np.ndarray:
        """Rows of the inner split whose class is kept, in the inner order (computed once per split)."""
        if split not in self._rows:
            if split not in self.splits:
                raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
            self._rows[split] = np.flatnonzero(np.isin(self._labels(split), self._classes()))
        return self._rows[split]

    def _relabel(self, labels: np.ndarray) -> np.ndarray:
        lookup = np.full(int(max(self.picked.max(), labels.max(initial=0))) + 1, -1, np.int64)
        lookup[self.picked] = np.arange(len(self.picked))
        return lookup[labels]


@hookimpl
def rdmbench_datasets():
    return [ClassSubset]
