"""Patches of scikit-image's photographs: an out-of-domain retrieval database that ships offline.

Blattmann et al. (arXiv 2204.11824, Fig. 6) find that retrieving from a database of another
domain than the training data hurts, and swap databases at sampling time to stylize (their
RDM-IN/OI swaps). With Fashion-MNIST as the training set, seeded random square crops of natural
photographs and textures (faces, a cat, coins, bricks, grass, gravel, the moon, galaxies, tissue,
printed text...) give such a database without any download.

Only photographs that ship inside the scikit-image wheel are used (the "legacy" files installed
into ``skimage/data``), and they are read from that folder with PIL directly: ``skimage.data``'s
loaders fall back to downloading through pooch when a file is missing or its hash differs, and a
benchmark must not reach the network behind the user's back. A missing file is an error naming it.

Each image: a photo drawn so that every photo gets an equal share of the split, a square crop
whose side is uniform in ``crop_size`` (clamped to the photo's shorter side), at a uniform
position, resized to ``image_size`` with PIL's bilinear filter (antialiased when shrinking).
``channels: 1`` converts to grayscale (ITU-R 601-2 luma), ``channels: 3`` keeps the photos'
colours (grayscale photos repeated). Labels index ``photos``; class names are the photo names.
Each split is its own seeded stream, so the images depend only on the arguments.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError, DataNotFound
from rdmbench.hookspecs import hookimpl

#: photo name (skimage.data's function name) -> (file in skimage/data, (height, width));
#: the sizes are known here so crop sizes are checked without reading any file
PHOTOS: dict[str, tuple[str, tuple[int, int]]] = {
    "astronaut": ("astronaut.png", (512, 512)),
    "brick": ("brick.png", (512, 512)),
    "camera": ("camera.png", (512, 512)),
    "chelsea": ("chelsea.png", (300, 451)),
    "coffee": ("coffee.png", (400, 600)),
    "coins": ("coins.png", (303, 384)),
    "grass": ("grass.png", (512, 512)),
    "gravel": ("gravel.png", (512, 512)),
    "hubble_deep_field": ("hubble_deep_field.jpg", (872, 1000)),
    "immunohistochemistry": ("ihc.png", (512, 512)),
    "moon": ("moon.png", (512, 512)),
    "page": ("page.png", (191, 384)),
    "rocket": ("rocket.jpg", (427, 640)),
    "text": ("text.png", (172, 448)),
    "motorcycle": ("motorcycle_left.png", (500, 741)),
    "retina": ("retina.jpg", (1411, 1411)),
}
PhotoName = Literal[tuple(PHOTOS)]  # type: ignore[valid-type]  # the registry checks names against PHOTOS
#: the photographs and textures; `motorcycle` and `retina` are there to be chosen, not by default
DEFAULT_PHOTOS: tuple[str, ...] = tuple(p for p in PHOTOS if p not in ("motorcycle", "retina"))


def _photo_path(photo: str) -> Path:
    import skimage
    from skimage.data import data_dir

    path = Path(data_dir) / PHOTOS[photo][0]
    if not path.is_file():
        raise DataNotFound(f"skimage-patches: scikit-image {skimage.__version__} has no {path} (photo {photo!r}); "
                           "reinstall it (pip install --force-reinstall scikit-image) or leave the photo out "
                           "of `photos`")
    return path


class SkimagePatches(Dataset):
    """Seeded square crops of scikit-image's bundled photographs, resized; labels name the photo."""

    name = "skimage-patches"

    def __init__(self, sizes: dict[str, int] = {"train": 40_000}, image_size: int = 28,  # noqa: B006 (never mutated)
                 channels: Literal[1, 3] = 1, crop_size: tuple[int, int] = (32, 128),
                 photos: tuple[PhotoName, ...] = DEFAULT_PHOTOS, seed: int = 0):
        if not sizes:
            raise ConfigError("give at least one split and its size, e.g. {train: 40000}", key="sizes")
        for split, n in sizes.items():
            if n < 1:
                raise ConfigError(f"size of split {split!r} must be at least 1, got {n}", key=f"sizes.{split}")
        if image_size < 8:
            raise ConfigError(f"image_size must be at least 8, got {image_size}", key="image_size")
        if not photos or len(set(photos)) != len(photos):
            raise ConfigError(f"list each photo once, at least one (allowed: {', '.join(PHOTOS)})", key="photos")
        smallest = min(photos, key=lambda p: min(PHOTOS[p][1]))
        lo, hi = crop_size
        if not 8 <= lo <= hi or lo > min(PHOTOS[smallest][1]):
            raise ConfigError(f"crop_size must be [low, high] pixels with 8 <= low <= high and low <= "
                              f"{min(PHOTOS[smallest][1])} (the shorter side of {smallest!r}), got {list(crop_size)}",
                              key="crop_size")
        self.sizes, self.splits = dict(sizes), tuple(sizes)
        self.image_size, self.channels, self.crop_size, self.seed = image_size, channels, (lo, hi), seed
        self.photos = tuple(photos)
        self.class_names = self.photos

    def _photo(self, photo: str):
        from PIL import Image

        path = _photo_path(photo)
        with Image.open(path) as im:
            im = im.convert("L" if self.channels == 1 else "RGB")
        if im.size[::-1] != PHOTOS[photo][1]:
            raise DataNotFound(f"skimage-patches: {path} is {im.size[1]}x{im.size[0]}, expected "
                               f"{PHOTOS[photo][1][0]}x{PHOTOS[photo][1][1]} (a changed file?)")
        return im

    def load(self, split: str) -> ImageSet:
        if split not in self.sizes:
            raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
        from PIL import Image

        n, side, (lo, hi) = self.sizes[split], self.image_size, self.crop_size
        # a stream per split keyed by its name, so no split depends on which others exist
        rng = np.random.default_rng([self.seed, zlib.crc32(split.encode())])
        labels = rng.permutation(np.arange(n) % len(self.photos)).astype(np.int64)
        shapes = np.array([PHOTOS[p][1] for p in self.photos])[labels]  # (n, 2): height, width
        top = np.minimum(hi, shapes.min(axis=1))
        crop = lo + np.floor(rng.random(n) * (top - lo + 1)).astype(np.int64)
        y = np.floor(rng.random(n) * (shapes[:, 0] - crop + 1)).astype(np.int64)
        x = np.floor(rng.random(n) * (shapes[:, 1] - crop + 1)).astype(np.int64)
        photos = [self._photo(p) for p in self.photos]
        images = np.empty((n, side, side, self.channels), np.uint8)
        for i in range(n):
            box = (x[i], y[i], x[i] + crop[i], y[i] + crop[i])
            patch = photos[labels[i]].resize((side, side), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
            images[i] = np.asarray(patch).reshape(side, side, self.channels)
        return ImageSet(images, labels, self.class_names)

    def fingerprint(self) -> dict:
        """sha256 of each photo file read, so a changed bundled file recomputes what used it."""
        return {"sha256": {p: hashlib.sha256(_photo_path(p).read_bytes()).hexdigest() for p in self.photos}}


@hookimpl
def rdmbench_datasets():
    return [SkimagePatches]
