"""Arrays larger than RAM: .npy files written, and read back, a chunk of rows at a time.

ImageNet's training split is about 250 GB once decoded at 256 px, so the stages that store images
or latents write them here row-chunk by row-chunk, and later stages open them memory-mapped
(``rdmbench.cache.load_array(..., mmap=True)``) and walk them with ``row_chunks``.

Chunks are written with plain file writes after the .npy header, not through a writable
``np.memmap``: dirty pages of a writable mapping count towards the process's resident memory
until they are unmapped, while written file data only sits in the kernel's page cache. The file
is byte for byte what ``np.save`` writes for the same array, so a streamed stage and one saved
whole are interchangeable in the cache.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

#: pixels (or latents) held in memory at once by a streaming stage; tests lower it to see chunking
CHUNK_BYTES = 64 << 20


def rows_per_chunk(row_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(1, int(row_bytes)))


def row_chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    """In-memory copies of consecutive rows of ``array`` (e.g. memory-mapped), about CHUNK_BYTES each."""
    row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
    step = rows_per_chunk(row_bytes)
    for start in range(0, len(array), step):
        yield np.array(array[start : start + step])


def write_rows(path: Path, count: int, chunks: Iterable[np.ndarray]) -> tuple[int, ...]:
    """Write ``count`` rows arriving in ``chunks`` as one .npy at ``path``; return its shape.

    The header is written when the first chunk tells the row shape and dtype; every later chunk
    must match it. At least one chunk must arrive (an empty one when ``count`` is 0). The file
    appears under its name only when complete, as with ``rdmbench.cache.save_array``.
    """
    with RowWriter(path, count) as writer:
        for chunk in chunks:
            writer.append(chunk)
    return writer.shape


class RowWriter:
    """``write_rows`` for a caller that fills several files side by side (``with RowWriter(...) as w:
    w.append(rows)``): complete under its name when the block ends without error, absent otherwise."""

    def __init__(self, path: Path, count: int):
        self.path, self.count = Path(path), count
        self.shape: tuple[int, ...] | None = None
        self.written = 0

    def __enter__(self) -> RowWriter:
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".npy", dir=self.path.parent)
        self._file = os.fdopen(fd, "wb")
        return self

    def append(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk)
        if self.shape is None:
            self.shape, self.dtype = (self.count, *chunk.shape[1:]), chunk.dtype
            _write_header(self._file, self.shape, self.dtype)
        elif chunk.shape[1:] != self.shape[1:] or chunk.dtype != self.dtype:
            raise ValueError(f"{self.path.name}: a chunk of {chunk.dtype} {chunk.shape[1:]} rows after "
                             f"{self.dtype} {self.shape[1:]} rows")
        if self.written + len(chunk) > self.count:
            raise ValueError(f"{self.path.name}: more than the {self.count} rows announced")
        self._file.write(np.ascontiguousarray(chunk).tobytes())
        self.written += len(chunk)

    def __exit__(self, kind, value, tb) -> None:
        try:
            self._file.close()
            if kind is None:
                if self.shape is None:
                    raise ValueError(f"{self.path.name}: no chunk arrived, so the row shape is unknown")
                if self.written != self.count:
                    raise ValueError(f"{self.path.name}: {self.written} rows written, {self.count} announced")
                os.replace(self._tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)


def _write_header(f, shape: tuple[int, ...], dtype: np.dtype) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    try:
        np.lib.format.write_array_header_1_0(f, header)
    except ValueError:  # a header over 64 KiB (absurdly many dimensions): np.save falls back the same way
        np.lib.format.write_array_header_2_0(f, header)
