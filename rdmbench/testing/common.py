"""Helpers the contract classes share, and that a plugin's own tests may use: test data (clustered
vectors, photo-like and labelled images), a progress recorder, a guard that a constructor does no
file IO, and ``Hide``, which makes a library look uninstalled.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any, Iterator

import numpy as np

from rdmbench.progress import Progress
from rdmbench.registry import get_registry


# -- test data ---------------------------------------------------------------------------------------
def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    """L2-normalised points around random centres: neighbours are well defined, as in real embeddings."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_ids(db: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k highest inner products, best first: what exact cosine search on normalised vectors gives."""
    return np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :k]


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` found in the same row of ``ids``."""
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, truth)]))


def photo_like(n: int, size: int = 32, grey: int = 2, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 3) smooth shapes plus noise, closer to photos than pure noise; the first ``grey``
    are grey (R = G = B), so ``images[:grey, ..., :1]`` is the same content as a one-channel input."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for i in range(n):
        base = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), np.sin(4 * (xx + yy) * (i + 1))], -1)
        image = (base + 1) * 110 + rng.normal(0, 12, (size, size, 3))
        if i < grey:
            image = np.repeat(image.mean(-1, keepdims=True), 3, -1)
        images.append(np.clip(image, 0, 255))
    return np.stack(images).astype(np.uint8)


#: class names of ``labelled_images``
SHAPES = ("square", "disc", "stripes", "cross")


def labelled_images(n: int = 64, size: int = 32, seed: int = 0):
    """An ``ImageSet`` of n RGB images of the four ``SHAPES`` (class ``i % 4``), each at a random place, size
    and colour on noise: a labelled training set in which the classes can be told apart."""
    from rdmbench.api import ImageSet

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    labels = np.arange(n) % len(SHAPES)
    images = rng.normal(60, 20, (n, size, size, 3))
    for i, c in enumerate(labels):
        cy, cx = rng.uniform(0.3 * size, 0.7 * size, 2)
        r = rng.uniform(0.15 * size, 0.3 * size)
        mask = {0: (abs(yy - cy) < r) & (abs(xx - cx) < r), 1: (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2,
                2: (np.floor(xx / 4) % 2 == 0) & (abs(yy - cy) < r),
                3: ((abs(yy - cy) < r / 3) & (abs(xx - cx) < r)) | ((abs(xx - cx) < r / 3) & (abs(yy - cy) < r))}[c]
        images[i][mask] = rng.uniform(150, 255, 3)
    return ImageSet(np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64), SHAPES)


class RecordingProgress(Progress):
    """A Progress that records each task as ``[description, total, advanced]``."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[list] = []

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator:
        record = [description, total, 0]
        self.tasks.append(record)

        def advance(n: int = 1) -> None:
            record[2] += n

        yield advance


# -- checks ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def no_file_io() -> Iterator[None]:
    """Make any file access fail, to prove a constructor touches no files."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"file IO in a constructor: {args[:1]}")

    saved = {name: getattr(os, name) for name in ("stat", "scandir", "listdir")}
    saved_open = builtins.open
    try:
        for name in saved:
            setattr(os, name, refuse)
        builtins.open = refuse
        yield
    finally:
        for name, func in saved.items():
            setattr(os, name, func)
        builtins.open = saved_open


def assert_cheap(construct: Any, seconds: float = 0.1) -> Any:
    """Call ``construct()`` with file IO refused and check it takes under ``seconds``: the registry builds
    plugins while validating a suite, before any work. Returns what it built."""
    get_registry()  # loading entry points reads package metadata; that is not the constructor's doing
    start = time.perf_counter()
    with no_file_io():
        built = construct()
    took = time.perf_counter() - start
    assert took < seconds, f"the constructor took {took:.2f} s (> {seconds} s): defer work to the methods that need it"
    return built


def assert_registered(kind: str, cls: type) -> None:
    """``cls`` is the plugin registered under its ``name`` for ``kind``, with a one-line description."""
    info = get_registry().info(kind, cls.name)
    assert info.cls is cls, f"{kind} {cls.name!r} is registered as {info.cls.__qualname__}, not {cls.__qualname__}"
    assert cls.description(), "the first docstring line is what `rdmbench plugins` shows"


class Hide:
    """A meta-path finder under which ``library`` and its submodules cannot be imported, as if not installed:
    ``sys.meta_path.insert(0, Hide("usearch"))``. A module imported before it was inserted stays imported, so
    use it in a fresh interpreter (``without_library``)."""

    def __init__(self, library: str) -> None:
        self.top = library.split(".")[0]

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == self.top or name.startswith(self.top + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


# Run in a fresh interpreter with the plugin's library hidden: importing the plugin module and listing
# plugins must still work (the library is imported inside methods), and using it must say how to install.
_WITHOUT_LIBRARY = r"""
import importlib, json, sys
from rdmbench.testing.common import Hide
library, kind, module_name, class_name = sys.argv[1:5]
args, use = json.loads(sys.argv[5]), sys.argv[6]
if library.split(".")[0] in sys.modules:
    raise SystemExit(f"{library} was imported before it could be hidden")
sys.meta_path.insert(0, Hide(library))
import numpy as np
from rdmbench.errors import MissingDependency
from rdmbench.registry import get_registry

reg = get_registry()
out = {"broken": reg.broken, "names": reg.names(kind)}
try:
    cls = getattr(importlib.import_module(module_name), class_name)
except Exception as exc:
    out["import"] = f"{type(exc).__name__}: {exc}"
else:
    steps = [("check_requirements", cls.check_requirements)]
    if use:
        steps.append(("use", lambda: eval(use, {"np": np, "plugin": cls(**args)})))
    for step, call in steps:
        try:
            call()
            out[step] = "no error"
        except MissingDependency as exc:
            out[step] = f"MissingDependency: {exc}"
        except Exception as exc:
            out[step] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def without_library(library: str, kind: str, cls: type, args: dict | None = None, use: str = "") -> dict[str, Any]:
    """In a fresh interpreter with ``library`` hidden (``Hide``): import ``cls``'s module, list the plugins of
    ``kind``, call ``cls.check_requirements()`` and, given ``use`` (an expression of ``plugin``, built with
    ``args``, and ``np``), that. Returns what happened: ``{"import": error}`` where the module failed to
    import, else each step's outcome ("no error", "MissingDependency: ...", ...), with ``broken`` and ``names``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_LIBRARY, library, kind, cls.__module__, cls.__qualname__,
                           json.dumps(args or {}), use], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def assert_missing_library_explained(library: str, kind: str, cls: type, name: str, args: dict | None = None,
                                     use: tuple[str, str] | None = None) -> dict[str, Any]:
    """What every plugin wrapping ``library`` must do without it: its module imports (the library is imported
    inside methods), ``rdmbench plugins`` lists it, and ``check_requirements()`` (and ``use``: a step's name
    and its expression, see ``without_library``) raise ``MissingDependency`` carrying ``pip install``.
    Returns ``without_library``'s outcome, the use step's under its name, for further checks."""
    out = without_library(library, kind, cls, args, use[1] if use else "")
    if use and "use" in out:
        out[use[0]] = out.pop("use")
    top = library.split(".")[0]
    assert "import" not in out, (f"without {top}, importing {cls.__module__} fails ({out.get('import')}): import "
                                 "the library inside methods (rdmbench.errors.require), not at module top level")
    broken = {ep: why for ep, why in out["broken"].items() if cls.__module__ in ep}
    assert not broken, f"without {top}, `rdmbench plugins` lists the plugin as failed to load: {broken}"
    if get_registry().info(kind, name).package != "(registered in-process)":
        assert name in out["names"], f"without {top}, {name!r} is not listed: {out['names']}"
    for step in ("check_requirements", *(use[:1] if use else ())):
        assert out[step].startswith("MissingDependency") and "pip install" in out[step], (
            f"without {top}, {step}() gave {out[step]!r}: declare `requires = {{{library!r}: INSTALL}}` "
            "with the install command in INSTALL")
    return out
