"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv 1708.07747; github.com/zalandoresearch/fashion-mnist).

70,000 28x28 grayscale Zalando article images in 10 classes (60,000 train, 10,000 test), stored
as four IDX files. It is the small benchmark on which the retrieval-augmented pipeline runs end to
end on a CPU. The files are looked for locally (Debian ships them as ``dataset-fashion-mnist``);
``fetch`` downloads them from the official mirror where there is a network.

Checksums are of the *decompressed* IDX payload: Debian recompresses the ``.gz`` files (no file
name in the gzip header, a 2020 timestamp), so their bytes differ from the mirror's (whose MD5s
Zalando publishes), while the images and labels inside are identical. Hashing the payload accepts
both, and accepts uncompressed copies too. Any other content is an error before any work, unless
``allow_unofficial: true`` opts in (the resolved config records it; its digests key the caches).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError, DataNotFound
from rdmbench.hookspecs import hookimpl

log = logging.getLogger(__name__)

#: The official mirror named in the Fashion-MNIST README.
OFFICIAL_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SIZES = {"train": 60_000, "test": 10_000}

#: sha256 of each decompressed IDX file, computed from Debian's dataset-fashion-mnist
#: 0.0~git20200523.55506a9-1; their MD5s equal those published for the official release's
#: decompressed files (f4a8712d…, 9018921c…, 8181f547…, 15d48437…), so the content is the same.
CONTENT_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: Where distributions install the files; a module attribute so tests can point it elsewhere.
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# IDX type codes (yann.lecun.com/exdb/mnist): data is big-endian after the header
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Parse an IDX file's bytes: magic (0, 0, type, ndim), ndim big-endian uint32 sizes, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{what}: not an IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{what}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{what}: {len(data)} bytes, the header {dims} implies {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _decompress(raw: bytes) -> bytes:
    # go by the gzip magic, not the suffix, so a mis-named copy still reads
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _read_bytes(path: Path) -> bytes:
    return _decompress(path.read_bytes())


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rdmbench" / "fashion-mnist"


def _candidates(root: str | None) -> list[Path]:
    """The folders looked in: an explicit ``root`` alone (asking for one folder and silently reading
    another would be a fallback nobody sees); else $RDMBENCH_DATA/fashion-mnist, system, user cache."""
    if root:
        return [Path(root).expanduser()]
    places: list[Path] = []
    if os.environ.get("RDMBENCH_DATA"):
        places.append(Path(os.environ["RDMBENCH_DATA"]).expanduser() / "fashion-mnist")
    places.extend(SYSTEM_DIRS)
    places.append(_user_cache_dir())
    return places


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):  # uncompressed first: it reads faster
        if (folder / name).is_file():
            return folder / name
    return None


def locate(root: str | None = None) -> dict[str, Path]:
    """Paths of the four files, from the first candidate folder that holds all of them."""
    places = _candidates(root)
    stems = [s for pair in FILES.values() for s in pair]
    for folder in places:
        found = {s: _file_in(folder, s) for s in stems}
        if all(found.values()):
            return found  # type: ignore[return-value]
    looked = "\n".join(f"  - {p}" for p in places)
    raise DataNotFound(
        "Fashion-MNIST files not found (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz). Looked in:\n"
        f"{looked}\nFix one of:\n"
        "  - apt-get install dataset-fashion-mnist   (Debian/Ubuntu)\n"
        "  - rdmbench data fetch fashion-mnist       (downloads from the official mirror)\n"
        "  - set `root:` on the dataset to a folder holding the four IDX files"
    )


# (path, size, mtime) -> sha256 of the payload, so fingerprint() and load() decompress once
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _payload(path: Path, stem: str, allow_unofficial: bool) -> tuple[bytes, str]:
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    st = path.stat()
    _DIGESTS[(str(path), st.st_size, st.st_mtime_ns)] = digest
    return data, _official(path, stem, digest, allow_unofficial)


def _digest(path: Path, stem: str, allow_unofficial: bool) -> str:
    st = path.stat()
    cached = _DIGESTS.get((str(path), st.st_size, st.st_mtime_ns))
    return _official(path, stem, cached, allow_unofficial) if cached else _payload(path, stem, allow_unofficial)[1]


def _official(path: Path, stem: str, digest: str, allow_unofficial: bool) -> str:
    if digest != CONTENT_SHA256.get(stem) and not allow_unofficial:
        raise DataNotFound(
            f"fashion-mnist: {path} has content sha256 {digest}, not the official release's "
            f"{CONTENT_SHA256.get(stem)} (a modified or re-exported copy?); fix: `rdmbench data fetch fashion-mnist` "
            "(or apt-get install dataset-fashion-mnist), or set `allow_unofficial: true` on the dataset to use it")
    return digest


class FashionMNIST(Dataset):
    """Fashion-MNIST: 28x28 grayscale Zalando article images, 10 classes, 60k train / 10k test."""

    name = "fashion-mnist"
    splits = ("train", "test")
    class_names = CLASS_NAMES

    def __init__(self, root: str | None = None, allow_unofficial: bool = False):
        self.root = root  # looked up at load time: constructors do no file IO
        #: files whose content differs from the official release are errors unless this is true
        self.allow_unofficial = allow_unofficial

    def load(self, split: str) -> ImageSet:
        if split not in FILES:
            raise ConfigError(f"unknown split {split!r} (allowed: {', '.join(self.splits)})", key="split")
        paths = locate(self.root)
        image_stem, label_stem = FILES[split]
        images = read_idx(_payload(paths[image_stem], image_stem, self.allow_unofficial)[0], str(paths[image_stem]))
        labels = read_idx(_payload(paths[label_stem], label_stem, self.allow_unofficial)[0], str(paths[label_stem]))
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"fashion-mnist {split}: unexpected IDX shapes {images.shape} / {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"fashion-mnist {split}: {len(images)} images but {len(labels)} labels")
        if len(labels) and labels.max() >= len(CLASS_NAMES):
            raise ValueError(f"fashion-mnist {split}: label {labels.max()} out of range")
        return ImageSet(images[..., None], labels.astype(np.int64), CLASS_NAMES)

    def fingerprint(self) -> dict:
        """sha256 of the decompressed files used, so caches key on the data's content."""
        paths = locate(self.root)
        return {"sha256": {stem: _digest(path, stem, self.allow_unofficial) for stem, path in sorted(paths.items())}}


def fetch(dest: Path | None = None) -> Path:
    """Download the four files from the official mirror into ``dest`` (default: the user cache).

    Files already there with the right checksum are kept. Each download is checked against the
    known sha256 of its content and written atomically, so an interrupted fetch leaves nothing
    half-written.
    """
    from rdmbench.cache import write_bytes

    dest = Path(dest).expanduser() if dest is not None else _user_cache_dir()
    for stem, want in CONTENT_SHA256.items():
        existing = _file_in(dest, stem)
        if existing is not None and _content_sha256(existing.read_bytes()) == want:
            log.info("fashion-mnist: %s already present", existing)
            continue
        url = OFFICIAL_MIRROR + stem + ".gz"
        log.info("fashion-mnist: downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                raw = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataNotFound(
                f"could not download {url} ({exc}). If there is no network here, install Debian's "
                f"dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or copy the four "
                f"IDX files (.gz or not) to {dest}"
            ) from None
        got = _content_sha256(raw)
        if got != want:
            raise DataNotFound(f"{url}: content sha256 {got}, expected {want}; not saved (a proxy or a broken mirror?)")
        target = dest / (stem + ".gz" if raw[:2] == b"\x1f\x8b" else stem)
        if existing is not None and existing != target:
            # it failed its checksum, and locate() would otherwise keep preferring it
            log.warning("fashion-mnist: replacing %s, whose content is not the official release's", existing)
            existing.unlink()
        write_bytes(target, raw)
    return dest


def _content_sha256(raw: bytes) -> str:
    try:
        return hashlib.sha256(_decompress(raw)).hexdigest()
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt gzip stream
        return f"unreadable ({exc})"


@hookimpl
def rdmbench_datasets():
    return [FashionMNIST]
