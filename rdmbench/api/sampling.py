"""The sampling-mode contract and what crosses it: ``Queries`` (one query per sample, and what conditions it),
``SamplingSource`` (what a mode may draw from) and ``SamplingMode`` (which queries, which neighbours)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Callable, ClassVar

import numpy as np

from rdmbench.api.plugin import Plugin


class Need(str, Enum):
    """What a sampling mode's ``queries`` reads from the ``SamplingSource``: the task computes those stages only."""

    #: the training set's neighbours in the sampling database (``proposal_ids``: p_D)
    PROPOSAL = "proposal"
    #: embeddings of the held-out set (``reference_*``)
    REFERENCE = "reference"
    #: ``embed_text``: the run's encoder must have a text tower
    TEXT = "text"


class Condition(str, Enum):
    """What conditions each sample (the paper's text-to-image variants)."""

    #: the query's k nearest neighbours in the sampling database
    NEIGHBOURS = "neighbours"
    #: the query's own embedding alone (k = 1)
    QUERY = "query"
    #: the query's embedding, then its k - 1 nearest neighbours
    QUERY_NEIGHBOURS = "query+neighbours"


@dataclass(kw_only=True)
class Queries:
    """What a sampling mode chose: one query per sample, each with the vector searched for its neighbours.

    ``embeddings`` (num, dim) float32 live in the retrieval encoder's space (None: the mode builds the
    context itself). ``images`` are shown beside the samples; ``labels`` (with ``class_names``) let class
    agreement be measured when they name the reference set's classes. ``omit`` (num,) holds, per query, a
    sampling-database id that must not condition its own sample (the pseudo-query itself), or -1.

    ``condition`` (a ``Condition``) says what conditions each sample: the query's k nearest neighbours in the
    sampling database, its own embedding alone (k = 1), or its embedding then its k - 1 neighbours. With
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
    condition: Condition = Condition.NEIGHBOURS
    pool: int | None = None
    texts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.condition not in tuple(Condition):
            raise ValueError(f"condition must be one of {', '.join(c.value for c in Condition)}, got {self.condition!r}")
        self.condition = Condition(self.condition)
        if self.condition is not Condition.NEIGHBOURS and self.embeddings is None:
            raise ValueError(f"condition {self.condition!r} conditions on the query embeddings, and there are none")
        if self.texts is not None and len(self.texts) != len(self.ids):
            raise ValueError(f"{len(self.texts)} texts for {len(self.ids)} queries")


def _field(need: Need | None = None) -> Any:
    return field(metadata={"need": need})


@dataclass(frozen=True, kw_only=True)
class SamplingSource:
    """What a sampling mode may draw from: each field a loader the mode calls for what it reads (arrays
    memory-mapped), so a mode pays only for what it reads. Built by the generation task from its cached stages
    (rdmbench.tasks.generation.stages.source) and by the contract test's fake (rdmbench.testing.sampling), both
    through ``gated``: a field whose ``Need`` the mode does not declare refuses to load, naming it.
    """

    #: the dataset's class names (what prompts name); None: it has none
    class_names: Callable[[], tuple[str, ...] | None] = _field()
    #: the first neighbours of every training image in the sampling database, searched once and cached (p_D)
    proposal_ids: Callable[[], np.ndarray] = _field(Need.PROPOSAL)
    #: the sampling database D' (the training one unless the run swaps it): embeddings, images, labels, classes
    database_embeddings: Callable[[], np.ndarray] = _field()
    database_images: Callable[[], np.ndarray] = _field()
    database_labels: Callable[[], np.ndarray | None] = _field()
    database_class_names: Callable[[], tuple[str, ...] | None] = _field()
    #: the held-out set, as the database
    reference_embeddings: Callable[[], np.ndarray] = _field(Need.REFERENCE)
    reference_images: Callable[[], np.ndarray] = _field(Need.REFERENCE)
    reference_labels: Callable[[], np.ndarray | None] = _field(Need.REFERENCE)
    reference_class_names: Callable[[], tuple[str, ...] | None] = _field(Need.REFERENCE)
    #: (N, dim) float32 embeddings of texts by the run's encoder, L2-normalised like the database's (a cached stage)
    embed_text: Callable[[list[str]], np.ndarray] = _field(Need.TEXT)

    @classmethod
    def gated(cls, mode: str, needs: frozenset[Need], **loaders: Callable[..., Any]) -> SamplingSource:
        """A source whose fields a mode that does not declare their ``Need`` cannot read (a clear error, not a
        missing cached stage); ``loaders`` give every field."""
        def refuse(name: str, need: Need) -> Callable[..., Any]:
            def refused(*_: Any) -> Any:
                raise RuntimeError(f"sampling mode {mode!r} read {name}, and its needs do not name {need.value!r}: "
                                   f"add Need.{need.name} to its needs")
            return refused

        return cls(**{f.name: loaders[f.name] if f.metadata["need"] in (None, *needs)
                      else refuse(f.name, f.metadata["need"]) for f in fields(cls)})

    def pick(self, where: str, ids: np.ndarray, omit: np.ndarray | None = None) -> Queries:
        """Queries of rows ``ids`` of the sampling database (``where="database"``) or of the held-out set
        (``"reference"``): their embeddings, images, labels and class names."""
        labels = getattr(self, f"{where}_labels")()
        return Queries(ids=ids, embeddings=np.asarray(getattr(self, f"{where}_embeddings")()[ids], dtype=np.float32),
                       images=np.asarray(getattr(self, f"{where}_images")()[ids]),
                       labels=None if labels is None else np.asarray(labels)[ids],
                       class_names=getattr(self, f"{where}_class_names")(), omit=omit,
                       source={"database": "sampling database", "reference": "reference set"}[where])


class SamplingMode(Plugin):
    """How samples are conditioned at sampling time: which queries, which neighbours, from which database.

    Modes are plugins like any other (constructor keyword arguments are their configuration, validated
    before any work). ``needs`` names what ``queries`` reads from the ``SamplingSource`` (``Need``: the training
    set's neighbours in the sampling database, embeddings of the held-out set, or ``embed_text``, for which the
    run's encoder must have a text tower). The task searches each query's
    neighbours in the sampling database as the queries' ``condition`` and ``pool`` say, dropping ``omit``.
    """

    kind = "sampling_mode"
    needs: ClassVar[frozenset[Need]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        allowed = ", ".join(n.value for n in Need)
        unknown = [n for n in cls.needs if n not in tuple(Need)]
        if unknown:
            raise TypeError(f"sampling mode {cls.name!r}: needs {unknown} are not among {allowed}")
        cls.needs = frozenset(Need(n) for n in cls.needs)  # a tuple of strings reads as the same set

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
