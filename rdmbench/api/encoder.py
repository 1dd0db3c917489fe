"""The encoder contract: a frozen image embedder (optionally with a text tower, or parts fitted on the run's
training set), whose embeddings retrieval searches and metrics compare."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rdmbench.api.first_stage import FirstStage
from rdmbench.api.images import ImageSet
from rdmbench.api.plugin import Plugin

if TYPE_CHECKING:
    from rdmbench.progress import Progress


class Encoder(Plugin):
    """A frozen image embedder.

    ``features(images)`` returns a dict with at least ``"embedding"`` (N, dim) float32; an encoder
    that also classifies returns ``"logits"`` (N, classes), which the Inception Score needs.
    """

    kind = "encoder"
    provides: ClassVar[tuple[str, ...]] = ("embedding",)
    #: the pipeline stores embeddings L2-normalised (cosine retrieval, the paper's); False keeps raw
    #: values, for vector sets searched by L2 distance such as ann-benchmarks' fashion-mnist-784-euclidean
    normalize: ClassVar[bool] = True
    #: True for an encoder built on the run's first stage (``vqgan-pool``): the generation task fits the
    #: first stage before embedding, hands it over with ``attach_first_stage``, and keys the embeddings on it
    uses_first_stage: ClassVar[bool] = False
    #: True for an encoder with a text tower in its image space (``encode_text``): text-conditioned
    #: sampling modes need one, and so does a metric's image–text space
    encodes_text: ClassVar[bool] = False
    #: True for an encoder with parts trained on the run's labelled training set (a joint image–text space
    #: of frozen towers): the pipeline calls ``fit`` once in a cached stage, ``save``s it, and ``load``s it
    #: before every use, keyed on that stage
    trainable: ClassVar[bool] = False
    #: result columns (``rdmbench.columns.Column``) a trainable encoder adds to every row from its ``fit``
    #: report: column ``encoder_<key>`` holds the report's ``<key>``
    fit_columns: ClassVar[tuple[str, ...]] = ()
    batch_size: int = 256

    def attach_first_stage(self, first_stage: FirstStage) -> None:
        """Receive the run's fitted first stage (only called when ``uses_first_stage``)."""

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 embeddings of ``texts`` in the image embeddings' space (``encodes_text`` only)."""
        raise NotImplementedError(f"encoder {self.name!r} has no text tower")

    def fit(self, train: ImageSet, seed: int, progress: Progress | None = None) -> dict[str, Any]:
        """Train what ``trainable`` says is trained, on the run's training set (images, labels, class names);
        returns what to report of it (e.g. held-out retrieval accuracy), numbers stored beside every row."""
        return {}

    def save(self, directory: Path) -> None:
        """Write what ``fit`` trained (tensors only: it is read back with weights_only loading)."""

    def load(self, directory: Path) -> None:
        """Read what ``save`` wrote."""

    def identity(self) -> str:
        """Human-readable name of the network and its weights, stored beside every number."""
        return self.name

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """One batch of uint8 (B, H, W, 1 or 3) images -> {output: (B, dim)}; what subclasses write."""
        raise NotImplementedError

    def features(self, images: np.ndarray, progress: Progress | None = None) -> dict[str, np.ndarray]:
        """``encode_batch`` over all images in batches of ``batch_size``, with progress, as float32."""
        from contextlib import nullcontext

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"expected uint8 (N, H, W, 1 or 3) images, got {images.dtype} {images.shape}")
        if len(images) == 0:  # one blank image tells the output widths
            blank = np.zeros((1, *images.shape[1:]), np.uint8)
            return {k: np.asarray(v, np.float32)[:0] for k, v in self.encode_batch(blank).items()}
        parts: dict[str, list[np.ndarray]] = {}
        with progress.task(f"{self.name} features", len(images)) if progress else nullcontext() as advance:
            for start in range(0, len(images), self.batch_size):
                batch = np.array(images[start : start + self.batch_size])  # writable, contiguous copy
                for key, value in self.encode_batch(batch).items():
                    parts.setdefault(key, []).append(np.asarray(value, dtype=np.float32))
                if advance:
                    advance(len(batch))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def fingerprint(self) -> dict[str, Any]:
        return {}


class NamesClasses:
    """A capability an encoder declares by deriving from it as well: its settings name classes of the data it
    is fit on (lit's ``held_out_classes``), which the run's validation checks against the dataset's class names
    before any work. A mix-in rather than a method of Encoder, whose definition is in the key of every stage
    that encodes: encoders that name no classes are not re-keyed by it."""

    def check_classes(self, class_names: tuple[str, ...] | None) -> str | None:
        """A problem with the classes the settings name, against the dataset's (None: it has no names), as one
        line (None: fine); reported at the encoder's key."""
        raise NotImplementedError
