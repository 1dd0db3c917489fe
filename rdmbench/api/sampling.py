"""The sampling-mode contract and what crosses it: ``Queries`` (one query per sample, and what conditions it),
``SamplingSource`` (what a mode may draw from) and ``SamplingMode`` (which queries, which neighbours)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from rdmbench.api.plugin import Plugin


@dataclass
class Queries:
    """What a sampling mode chose: one query per sample, each with the vector searched for its neighbours.

    ``embeddings`` (num, dim) float32 live in the retrieval encoder's space (None: the mode builds the
    context itself). ``images`` are shown beside the samples; ``labels`` (with ``class_names``) let class
    agreement be measured when they name the reference set's classes. ``omit`` (num,) holds, per query, a
    sampling-database id that must not condition its own sample (the pseudo-query itself), or -1.

    ``condition`` says what conditions each sample (the paper's text-to-image variants): ``"neighbours"``,
    the query's k nearest neighbours in the sampling database; ``"query"``, the query's own embedding
    alone (k = 1); ``"query+neighbours"``, the query's embedding then its k - 1 nearest neighbours. With
    ``pool`` = l >= k, each sample's k neighbours are drawn at random (seeded) from its query's l nearest
    (a class pool). ``texts`` are the prompts behind text queries, one per sample, shown with the samples
    and graded by image–text metrics.
    """

    ids: np.ndarray
    embeddings: np.ndarray | None
    images: np.ndarray | None
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    omit: np.ndarray | None = None
    #: where the queries come from, for the row ("sampling database", "reference set", "prompts")
    source: str = ""
    condition: str = "neighbours"
    pool: int | None = None
    texts: tuple[str, ...] | None = None

    CONDITIONS: ClassVar[tuple[str, ...]] = ("neighbours", "query", "query+neighbours")

    def __post_init__(self) -> None:
        if self.condition not in self.CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(self.CONDITIONS)}, got {self.condition!r}")
        if self.condition != "neighbours" and self.embeddings is None:
            raise ValueError(f"condition {self.condition!r} conditions on the query embeddings, and there are none")
        if self.texts is not None and len(self.texts) != len(self.ids):
            raise ValueError(f"{len(self.texts)} texts for {len(self.ids)} queries")


class SamplingSource:
    """What a sampling mode may draw from (built by the generation task; arrays memory-mapped).

    ``database_*``: the sampling database D' (the training one unless the run swaps it); ``proposal_ids()``:
    the first neighbours of every training image in D', searched once and cached (for p_D); ``reference_*``:
    the held-out set. Accessors load lazily, so a mode pays only for what it reads; ``needs`` on the mode
    tells the task which of the cached stages to compute.
    """

    def __init__(self, load: Callable[[str], Any], embed_text: Callable[[list[str]], np.ndarray] | None = None):
        self._load = load
        self._embed_text = embed_text

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 embeddings of ``texts`` by the run's encoder, L2-normalised like the database's
        (a cached stage); only for modes whose ``needs`` name "text"."""
        if self._embed_text is None:
            raise RuntimeError("this source embeds no text: name \"text\" in the sampling mode's needs")
        return self._embed_text(list(texts))

    def pick(self, where: str, ids: np.ndarray, omit: np.ndarray | None = None) -> Queries:
        """Queries of rows ``ids`` of the sampling database (``where="database"``) or of the held-out set
        (``"reference"``): their embeddings, images, labels and class names."""
        labels = getattr(self, f"{where}_labels")
        return Queries(ids, np.asarray(getattr(self, f"{where}_embeddings")[ids], dtype=np.float32),
                       np.asarray(getattr(self, f"{where}_images")[ids]),
                       None if labels is None else np.asarray(labels)[ids], getattr(self, f"{where}_class_names"),
                       omit, {"database": "sampling database", "reference": "reference set"}[where])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._load(name)


class SamplingMode(Plugin):
    """How samples are conditioned at sampling time: which queries, which neighbours, from which database.

    Modes are plugins like any other (constructor keyword arguments are their configuration, validated
    before any work). ``needs`` names what ``queries`` reads from the ``SamplingSource``: "proposal" (the
    training set's neighbours in the sampling database), "reference" (embeddings of the held-out set) or
    "text" (``embed_text``: the run's encoder must have a text tower). The task searches each query's
    neighbours in the sampling database as the queries' ``condition`` and ``pool`` say, dropping ``omit``.
    """

    kind = "sampling_mode"
    needs: ClassVar[tuple[str, ...]] = ()

    def default_k(self, k_train: int) -> int:
        """The sampling k when ``sample.k`` is not given: the head's k_train, unless the mode conditions on a
        fixed number of embeddings (text alone: 1)."""
        return k_train

    def check_k(self, k: int, k_train: int) -> str | None:
        """A problem with these k values as one line (None: fine); the suite loader reports it at ``sample.k``."""
        return None

    def check_classes(self, class_names: tuple[str, ...] | None) -> str | None:
        """A problem with the classes this mode names, against the dataset's (None: it has no names), as one
        line (None: fine); reported at ``sample.mode`` before any work."""
        return None

    def extra_neighbours(self) -> int:
        """Neighbours searched beyond k so that ``omit`` can drop one and still leave k."""
        return 0

    def searched(self, k: int) -> int:
        """How many neighbours of each query are searched for k per sample (k + extra; a pool's size)."""
        return k + self.extra_neighbours()

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        raise NotImplementedError
