"""Image folder: any labelled image collection laid out ImageNet-style, one folder per class.

``root/<split>/<class>/*.{jpg,jpeg,png,webp}`` (the layout of torchvision's ImageFolder and of the
ILSVRC train/val folders), read with PIL. Images are resized so the shorter side is
``image_size`` and centre-cropped to a square, the usual preprocessing of the paper's ImageNet
experiments (Blattmann et al. 2022, arXiv 2204.11824). Lets the benchmark run on a user's own data.

Streams: ``count`` lists files and ``read`` decodes only the rows asked for, so the pipeline stores
a split of any size a chunk at a time (ImageNet's train split is ~250 GB decoded). The split names
are the folder names, set by ``splits`` (ImageNet calls its held-out split ``val``).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError, DataNotFound, RdmbenchError
from rdmbench.hookspecs import hookimpl

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

LAYOUT = "expected layout: <root>/<split>/<class>/*.jpg|jpeg|png|webp, e.g. root/train/cat/001.jpg"


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _image_files(folder: Path) -> list[Path]:
    files = (p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and not p.name.startswith("."))
    return sorted(files, key=lambda p: p.name)


def load_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """Decode, resize the shorter side to ``image_size`` and centre-crop: uint8 (size, size, channels)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as im:
        im.draft(mode, (image_size, image_size))  # JPEG: decode at a reduced scale still >= the target
        im = im.convert(mode)
        w, h = im.size
        scale = image_size / min(w, h)
        nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
        im = im.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=None)
        left, top = (nw - image_size) // 2, (nh - image_size) // 2
        im = im.crop((left, top, left + image_size, top + image_size))
        array = np.asarray(im, dtype=np.uint8)
    return array.reshape(image_size, image_size, channels)


class ImageFolder(Dataset):
    """Images in root/<split>/<class>/ folders (ImageNet layout), resized and centre-cropped."""

    name = "image-folder"
    splits = ("train", "test")

    def __init__(self, root: str, image_size: int = 256, channels: Literal[1, 3] = 3,
                 max_per_class: int | None = None, splits: tuple[str, ...] = ("train", "test"),
                 fingerprint: Literal["content", "size+mtime"] = "content"):
        if image_size < 1:
            raise ConfigError(f"image_size must be positive, got {image_size}", key="image_size")
        if max_per_class is not None and max_per_class < 1:
            raise ConfigError(f"max_per_class must be positive or null, got {max_per_class}", key="max_per_class")
        if not splits:
            raise ConfigError("list at least one split folder, e.g. [train, val]", key="splits")
        self.root, self.image_size, self.channels, self.max_per_class = root, image_size, channels, max_per_class
        self.fingerprint_by = fingerprint
        # ImageNet calls its held-out split `val`; the split names are the folder names
        self.splits = tuple(splits)
        # listed on first use (constructors do no IO), then kept: read() is called once per chunk
        self._listing: dict[str, list[tuple[Path, int]]] = {}
        self._classes: tuple[str, ...] | None = None

    def _class_names(self) -> tuple[str, ...]:
        """Class folders found in any split, sorted by name, so labels mean the same in every split."""
        if self._classes is None:
            root = Path(self.root).expanduser()
            names = {p.name for s in self.splits if (root / s).is_dir() for p in _class_dirs(root / s)}
            self._classes = tuple(sorted(names))
        return self._classes

    def _files(self, split: str) -> list[tuple[Path, int]]:
        """(path, label) of every image of ``split`` in a fixed order; listed once per instance."""
        if split in self._listing:
            return self._listing[split]
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
        root = Path(self.root).expanduser()
        folder = root / split
        if not folder.is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
            where = f"{root} holds {', '.join(present) or 'no folders'}" if root.is_dir() else f"{root} does not exist"
            raise DataNotFound(f"image-folder: no split folder {folder} ({where}); {LAYOUT}")
        index = {name: i for i, name in enumerate(self._class_names())}
        files: list[tuple[Path, int]] = []
        for class_dir in _class_dirs(folder):
            images = _image_files(class_dir)[: self.max_per_class]
            files.extend((p, index[class_dir.name]) for p in images)
        if not files:
            raise DataNotFound(f"image-folder: no images under {folder}; {LAYOUT}")
        self._listing[split] = files
        return files

    def count(self, split: str) -> int:
        return len(self._files(split))

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        files = self._files(split)
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.image_size, self.image_size, self.channels), dtype=np.uint8)
        for i, index in enumerate(indices):
            path = files[index][0]
            try:
                out[i] = load_image(path, self.image_size, self.channels)
            except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
                raise RdmbenchError(f"image-folder: cannot read {path}: {exc}") from None
        labels = np.array([files[i][1] for i in indices], dtype=np.int64)
        return ImageSet(out, labels, self._class_names())

    def load(self, split: str) -> ImageSet:
        return self.read(split, np.arange(self.count(split)))

    def fingerprint(self) -> dict:
        """The files' names and contents (BLAKE2b), so caches notice added, replaced or edited images even
        when a copy kept their sizes and times. ``fingerprint: size+mtime`` hashes names, sizes and
        modification times instead (seconds instead of minutes over ImageNet, but blind to an edit that
        keeps both): an opt-in every key, config.yaml and row (``data_fingerprint``) records."""
        h = hashlib.blake2b(digest_size=32)
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise DataNotFound(f"image-folder: root {str(root)!r} is not a folder; expected "
                               f"root/<split>/<class>/*.jpg with splits {', '.join(self.splits)}")
        for split in self.splits:
            if not (root / split).is_dir():
                continue
            for class_dir in _class_dirs(root / split):
                for path in _image_files(class_dir)[: self.max_per_class]:
                    st = path.stat()
                    what = _content(str(path), st.st_size, st.st_mtime_ns) if self.fingerprint_by == "content" \
                        else f"{st.st_size}\0{st.st_mtime_ns}"
                    h.update(f"{path.relative_to(root)}\0{what}\n".encode())
        if self.fingerprint_by == "content":
            return {"files_blake2b": h.hexdigest()}
        return {"files_size_mtime": h.hexdigest(), "opt_in": {"data_fingerprint": "size+mtime"}}


@lru_cache(maxsize=None)
def _content(path: str, _size: int, _mtime_ns: int) -> str:
    """A file's BLAKE2b, read once per process while its size and time stay (every stage's key asks)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


@hookimpl
def rdmbench_datasets():
    return [ImageFolder]
