"""The runtime every retriever shares, behind the plugin-facing contract (rdmbench.api.retriever): checked
build and search (dimensions, k > n padded with -1, an empty database), the saved manifest with the digest
of the embeddings and a checksum per index file (a stale or corrupted index is refused), and the streaming
helpers a retriever that builds a chunk at a time reads with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import numpy as np

from rdmbench.cache import file_digest, write_text
from rdmbench.errors import RdmbenchError


class RetrieverRuntime:
    """What every retriever gets around the four methods its plugin writes (rdmbench.api.Retriever, which
    mixes this in and sets ``metric``, ``config``, ``n`` and ``dim``): ``build`` checks the embeddings and
    digests them, ``search`` checks queries and pads missing results, ``save``/``load`` write and check the
    manifest (config, dimension, metric, embeddings digest, a checksum per index file); ``vector_chunks`` and
    ``vector_sample`` serve a retriever that ``streams``."""

    MANIFEST: ClassVar[str] = "retriever.json"

    if TYPE_CHECKING:  # what rdmbench.api.Retriever, which mixes this in, provides (the same declarations)
        name: ClassVar[str]
        version: ClassVar[int]
        METRICS: ClassVar[tuple[str, ...]]
        streams: ClassVar[bool]
        metric: str
        config: dict[str, Any]
        n: int
        dim: int | None

        @classmethod
        def check_requirements(cls) -> None: ...
        def build_index(self, x: np.ndarray) -> None: ...
        def build_streamed(self, embeddings: np.ndarray) -> None: ...
        def search_index(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
        def save_index(self, directory: Path) -> None: ...
        def load_index(self, directory: Path) -> None: ...
        def build_info(self) -> dict[str, Any]: ...

    def build(self, embeddings: np.ndarray) -> None:
        """Build over ``embeddings`` (memory-mapped from the cache). A retriever that ``streams`` is handed
        them as they are and reads them a chunk at a time (``vector_chunks``, ``vector_sample``); any other
        gets one float32 copy (``build_index``)."""
        if self.metric not in self.METRICS:
            raise ValueError(f"metric must be one of {', '.join(self.METRICS)}, got {self.metric!r}")
        self.check_requirements()
        if embeddings.ndim != 2:
            raise ValueError(f"expected a (n, dim) array, got shape {embeddings.shape}")
        self.n, self.dim = embeddings.shape
        self._digest = array_digest(embeddings)
        if self.n and self.streams:
            self.build_streamed(embeddings)
        elif self.n:
            self.build_index(self._vectors(embeddings))

    def vector_chunks(self, embeddings: np.ndarray) -> Iterator[np.ndarray]:
        """Consecutive rows of ``embeddings`` as ``build_index`` would see them (float32, normalised for
        cosine), about ``rdmbench.chunks.CHUNK_BYTES`` at a time."""
        from rdmbench.chunks import row_chunks

        for chunk in row_chunks(embeddings):
            yield self._vectors(chunk)

    def vector_sample(self, embeddings: np.ndarray, size: int, seed: int) -> np.ndarray:
        """A seeded sample of ``size`` rows (all rows when the database is no larger), in ascending order:
        what an index trains its quantisers on."""
        if size >= len(embeddings):
            return self._vectors(np.asarray(embeddings))
        rows = np.sort(np.random.default_rng(seed).choice(len(embeddings), size, replace=False))
        return self._vectors(np.asarray(embeddings[rows]))

    def search(self, queries: np.ndarray, k: int, **query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores float32 (Q, k), ids int64 (Q, k)), best first; -1 / -inf pad missing results.

        Kept lean: one query per call is a benchmarked mode, where every microsecond here shows.
        """
        if self.dim is None:
            raise RuntimeError("build() or load() first")
        q = queries if type(queries) is np.ndarray and queries.dtype == np.float32 else np.asarray(queries, np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries have shape {q.shape}, the index has dimension {self.dim}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k_eff = min(k, self.n)
        if k_eff == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        scores, ids = self.search_index(self._vectors(q), k_eff, **query)
        if scores.dtype != np.float32:
            scores = scores.astype(np.float32)
        if ids.dtype != np.int64:
            ids = ids.astype(np.int64)
        # libraries put sentinels (e.g. +-FLT_MAX) beside ids they could not fill; a ScaNN tree whose
        # searched leaves hold nothing returns no column at all
        if ids.size and ids.min() < 0:
            scores = np.where(ids < 0, np.float32(-np.inf), scores)
        if ids.shape[1] < k:
            scores = np.pad(scores, ((0, 0), (0, k - ids.shape[1])), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
        return scores, ids

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.n:
            self.save_index(directory)
        files = {p.name: file_digest(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != self.MANIFEST}
        manifest = {"retriever": self.name, "version": self.version, "config": self.config, "dim": self.dim,
                    "n": self.n, "metric": self.metric, "embeddings_sha256": self._digest, "files": files,
                    **self.build_info()}
        write_text(directory / self.MANIFEST, json.dumps(manifest, indent=1, default=str))

    def load(self, directory: Path, embeddings: np.ndarray) -> None:
        self.check_requirements()
        directory = Path(directory)
        path = directory / self.MANIFEST
        if not path.exists():
            raise RdmbenchError(f"no saved {self.name!r} index in {directory} ({self.MANIFEST} missing); rebuild it")
        meta = json.loads(path.read_text())
        problems = []
        if meta["retriever"] != self.name or meta["version"] != self.version:
            problems.append(f"it was saved by {meta['retriever']!r} v{meta['version']}, not {self.name!r} v{self.version}")
        if json.loads(json.dumps(self.config, default=str)) != meta["config"]:
            problems.append(f"it was built with {meta['config']}, not {self.config}")
        if embeddings.ndim != 2 or embeddings.shape[1] != meta["dim"] or len(embeddings) != meta["n"]:
            problems.append(f"it holds {meta['n']} x {meta['dim']} vectors, the embeddings are {embeddings.shape}")
        elif array_digest(embeddings) != meta["embeddings_sha256"]:
            problems.append("it was built from other embeddings")
        for name, digest in meta["files"].items():
            if not (directory / name).exists() or file_digest(directory / name) != digest:
                problems.append(f"{name} is missing or its checksum does not match")
        if problems:
            raise RdmbenchError(f"refusing stale {self.name!r} index in {directory}: " + "; ".join(problems)
                                + " (delete it to rebuild)")
        self.n, self.dim, self._digest = meta["n"], meta["dim"], meta["embeddings_sha256"]
        if self.n:
            self.load_index(directory)

    def _vectors(self, x: np.ndarray) -> np.ndarray:
        """float32, C-contiguous, L2-normalised for cosine: what build_index receives."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"expected a (n, dim) array, got shape {x.shape}")
        if self.metric == "cosine":
            x = x / np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x)), 1e-12)[:, None]
        return np.ascontiguousarray(x)


def array_digest(x: np.ndarray) -> str:
    """sha256 of an array's float32 values and shape: what an index was built from. Read a chunk of rows at a
    time, so a memory-mapped database of any size is hashed in flat memory (the digest is the whole array's)."""
    from rdmbench.chunks import row_chunks

    h = hashlib.sha256(repr(tuple(x.shape)).encode())
    for chunk in row_chunks(x):
        h.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    return h.hexdigest()
