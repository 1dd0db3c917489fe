"""scikit-learn's digits: an out-of-domain retrieval database that ships with scikit-learn.

The 1,797 8x8 handwritten digits of the UCI "Optical Recognition of Handwritten Digits" set
(Alpaydin & Kaynak 1998), bundled with scikit-learn as ``sklearn.datasets.load_digits``, so they
load with no network. Blattmann et al. (arXiv 2204.11824, Fig. 6) show that retrieving from a
database of another domain than the training data hurts; with Fashion-MNIST as the training set,
these digits are such a database that every installation has.

Pixel values 0..16 are scaled to 0..255 and the images resized to ``image_size`` (default 28,
Fashion-MNIST's) with PIL's bilinear filter, which keeps the strokes' blockiness soft without the
ringing a bicubic filter adds around 8x8 pixels. One split, ``train``, holds all 1,797 images:
the set is too small to divide, and ``from-dataset`` draws a database from any one split.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError, DataNotFound
from rdmbench.hookspecs import hookimpl

CLASS_NAMES = tuple(f"digit {d}" for d in range(10))

#: the bundled file load_digits parses (in the package ``sklearn.datasets.data``)
DATA_FILE = "digits.csv.gz"


def _data_file():
    from importlib.resources import files

    path = files("sklearn.datasets.data") / DATA_FILE
    if not path.is_file():
        raise DataNotFound(f"sklearn-digits: scikit-learn ships no {DATA_FILE} at {path}; "
                           "reinstall it: pip install --force-reinstall scikit-learn")
    return path


class SklearnDigits(Dataset):
    """scikit-learn's 1,797 8x8 handwritten digits, upscaled (bilinear) to image_size; one split `train`."""

    name = "sklearn-digits"
    splits = ("train",)
    class_names = CLASS_NAMES

    def __init__(self, image_size: int = 28, channels: Literal[1, 3] = 1):
        if image_size < 8:
            raise ConfigError(f"image_size must be at least 8 (the digits are 8x8), got {image_size}",
                              key="image_size")
        self.image_size, self.channels = image_size, channels

    def load(self, split: str) -> ImageSet:
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
        from PIL import Image
        from sklearn.datasets import load_digits

        _data_file()  # a missing file is one line saying so, not a traceback from inside sklearn
        digits = load_digits()
        pixels = np.clip(np.round(digits.images * (255 / 16)), 0, 255).astype(np.uint8)
        size = (self.image_size, self.image_size)
        images = np.stack([np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BILINEAR)) for p in pixels])
        images = np.repeat(images[..., None], self.channels, axis=-1)
        return ImageSet(images, digits.target.astype(np.int64), CLASS_NAMES)

    def fingerprint(self) -> dict:
        """scikit-learn's version and the sha256 of the bundled file, so a changed file recomputes."""
        import sklearn

        return {"sklearn": sklearn.__version__, "sha256": hashlib.sha256(_data_file().read_bytes()).hexdigest()}


@hookimpl
def rdmbench_datasets():
    return [SklearnDigits]
