"""The generation run as reusable parts: what another task composes instead of importing this one's internals.

    retrieval_side: data, database, first stage, (encoder fit), embeddings of D and X, index, neighbours of X
    train_side:     the head trained on those neighbours (k_train, seed)
    sampling_side:  the sampling database's stages (shared unless swapped), the mode's inputs, the samples
    up_to_samples:  the three in order: every stage path of a run up to its samples
    features:       the metric feature extractor's outputs of the samples, the reference set and X
    MEASURES:       what the task measures besides its metric plugins (novelty, neighbour recall, neighbour
                    classes), each a ``Measure``: the stages it computes and the row values it gives

Every function takes the run's typed spec and the stage paths so far, and returns paths; nothing here
computes a number itself (the stages do), so moving code between these parts keys nothing anew.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rdmbench import stages as shared
from rdmbench.api import Encoder, Need, SamplingMode, TrainSettings
from rdmbench.cache import load_array, read_json
from rdmbench.errors import RdmbenchError
from rdmbench.schema import PluginSpec
from rdmbench.tasks.generation import stages as gen
from rdmbench.tasks.generation.schema import RunConfig

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline

Paths = dict[str, Path]


def embed(pipe: Pipeline, spec: RunConfig, p: Paths, encoder: PluginSpec, source: Path, array: str) -> Path:
    """Embeddings of a stored image array by ``encoder``; one built on the first stage (vqgan-pool) gets the run's,
    a trained one (lit) its fit on the run's training set."""
    built_on = pipe.registry.contract(Encoder, encoder["name"]).uses_first_stage
    return shared.embeddings(pipe, encoder, source, array, (spec.first_stage, p["first_stage"]) if built_on else None,
                             p.get("encoder_fit"))


def neighbour_k(spec: RunConfig) -> int:
    """The depth of the training set's neighbour table: max(k_train, sample.k (+ what the sampling mode
    omits), retriever.train_neighbours). The floor (16) lets runs with k <= 16 share one table, and the
    run's own config alone decides it."""
    from rdmbench.registry import get_registry

    s = spec.sample
    assert s.k is not None  # resolved by validation
    # k + what an omitted id needs, not a class pool's l: a pool is searched afresh at sampling time
    extra = get_registry().build(SamplingMode, s.mode).extra_neighbours()
    own = s.k + extra if s.database is None else 0
    return max(spec.k_train, own, spec.retriever.train_neighbours)


def retrieval_side(pipe: Pipeline, spec: RunConfig, mode: SamplingMode, first_stage: bool = True) -> Paths:
    """X and the reference set, D, the first stage, the encoder's fit, the embeddings of D (and of X when the run
    retrieves or the mode draws from p_D), D's index and X's neighbours in it (when k_train > 0). Without
    ``first_stage`` (``warm``), an encoder built on it is not used."""
    p: Paths = {}
    p["data"] = shared.data(pipe, spec.data)
    p["database"] = shared.database(pipe, spec.database, spec.data, p["data"])
    if first_stage:
        p["first_stage"] = gen.first_stage(pipe, spec.first_stage, spec.data.seed, p["data"])
    if fitted := shared.encoder_fit(pipe, spec.encoder, p["data"], spec.data.seed):
        p["encoder_fit"] = fitted
    p["db_embeddings"] = embed(pipe, spec, p, spec.encoder, p["database"], "database")
    if spec.k_train or Need.PROPOSAL in mode.needs:
        p["train_embeddings"] = embed(pipe, spec, p, spec.encoder, p["data"], "train")
    if spec.k_train:
        p["index"] = shared.index(pipe, spec.retriever, p["db_embeddings"])
        p["neighbours"] = shared.neighbours(pipe, spec.retriever, p["index"], p["db_embeddings"],
                                            p["train_embeddings"], neighbour_k(spec))
    return p


def warm(pipe: Pipeline, spec: RunConfig) -> None:
    """What every run of a group reads that does not wait for the first stage's training, computed by the same
    calls as the run's (so under the same keys): the retrieval side, unless its encoder is built on the first
    stage, then the metric feature extractor's features of X and of the reference set."""
    if not pipe.registry.contract(Encoder, spec.encoder["name"]).uses_first_stage:
        retrieval_side(pipe, spec, pipe.plugin("sampling_mode", spec.sample.mode), first_stage=False)
    data = shared.data(pipe, spec.data)
    fe = spec.metrics.feature_extractor
    gen.features(pipe, fe, data, "reference")
    gen.features(pipe, fe, data, "train")


def train_side(pipe: Pipeline, spec: RunConfig, p: Paths) -> Path:
    """The run's head trained on X's neighbours (the baseline, k_train = 0, at the same context width)."""
    return gen.train(pipe, spec.head, TrainSettings(**spec.train.model_dump()), spec.k_train, spec.seed,
                     p["first_stage"], p.get("neighbours"), p["db_embeddings"])


def sampling_side(pipe: Pipeline, spec: RunConfig, p: Paths, mode: SamplingMode) -> Paths:
    """The sampling database's stages (the training database's again, same keys, unless ``sample.database``
    swaps it), what the mode reads (p_D's neighbour table, the reference set's embeddings, prompts'), and the
    samples; ``p`` holds the retrieval and train sides."""
    s = spec.sample
    assert s.k is not None and s.retriever is not None  # resolved by validation
    sp = {n: p[n] for n in ("data", "first_stage", "train", "db_embeddings")}
    sp["sampling_database"] = shared.database(pipe, s.database, spec.data, p["data"]) if s.database is not None \
        else p["database"]
    sp["sampling_embeddings"] = embed(pipe, spec, p, spec.encoder, sp["sampling_database"], "database")
    if (spec.k_train and s.k) or Need.PROPOSAL in mode.needs:
        sp["sampling_index"] = shared.index(pipe, s.retriever, sp["sampling_embeddings"])
    if Need.PROPOSAL in mode.needs:
        k_table = max(s.k, s.retriever.train_neighbours) if s.database is not None else neighbour_k(spec)
        sp["proposal"] = shared.neighbours(pipe, s.retriever, sp["sampling_index"], sp["sampling_embeddings"],
                                           p["train_embeddings"], k_table)
    if Need.REFERENCE in mode.needs:
        sp["reference_embeddings"] = embed(pipe, spec, p, spec.encoder, p["data"], "reference")
    embed_text = None
    if Need.TEXT in mode.needs:
        def embed_text(texts: list[str]) -> Any:
            return load_array(shared.text_embeddings(pipe, spec.encoder, texts, p.get("encoder_fit")) / "embeddings.npy")
    return {**sp, "samples": gen.samples(pipe, spec, sp, embed_text)}


def up_to_samples(pipe: Pipeline, spec: RunConfig) -> Paths:
    """Every stage of a generation run up to its samples, in order; the paths by stage role."""
    mode = pipe.plugin("sampling_mode", spec.sample.mode)
    p = retrieval_side(pipe, spec, mode)
    p["train"] = train_side(pipe, spec, p)
    return {**p, **sampling_side(pipe, spec, p, mode)}


def features(pipe: Pipeline, spec: RunConfig, p: Paths) -> Paths:
    """The metric feature extractor's outputs of the samples, the held-out reference set and X."""
    fe = spec.metrics.feature_extractor
    return {"generated_features": gen.features(pipe, fe, p["samples"], "samples"),
            "reference_features": gen.features(pipe, fe, p["data"], "reference"),
            "train_features": gen.features(pipe, fe, p["data"], "train")}


class Measure:
    """What a task measures besides its metric plugins: the cached stages it computes over a run's paths
    (``reads`` names the ones it needs) and the row values they give, with files to keep beside the run."""

    name: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ()

    def applies(self, spec: RunConfig) -> bool:
        return True

    def measure(self, pipe: Pipeline, spec: RunConfig, p: Paths) -> tuple[dict[str, Any], Paths]:
        raise NotImplementedError


class Novelty(Measure):
    """Near-copies of training images among the samples, against held-out images (gen.novelty), and a panel."""

    name = "novelty"
    reads = ("generated_features", "train_features", "reference_features", "samples", "data", "sampling_database")

    def measure(self, pipe: Pipeline, spec: RunConfig, p: Paths) -> tuple[dict[str, Any], Paths]:
        path = gen.novelty(pipe, spec.metrics, p)
        return read_json(path / "novelty.json"), {"panel.png": path / "panel.png"}


class NeighbourRecall(Measure):
    """Recall@k_train of X's neighbour table against exact search: what the head learned from."""

    name = "neighbour recall"
    reads = ("neighbours", "db_embeddings", "train_embeddings")

    def applies(self, spec: RunConfig) -> bool:
        return spec.k_train > 0

    def measure(self, pipe: Pipeline, spec: RunConfig, p: Paths) -> tuple[dict[str, Any], Paths]:
        recall = gen.neighbour_recall(pipe, spec.retriever, spec.k_train, spec.data.seed, p, neighbour_k(spec))
        return {"retrieval_recall": recall}, {}


class NeighbourClasses(Measure):
    """Share of X's k_train neighbours that carry the image's class: about the ceiling of class agreement."""

    name = "neighbour classes"
    reads = ("data", "database", "neighbours")

    def applies(self, spec: RunConfig) -> bool:
        return spec.k_train > 0

    def measure(self, pipe: Pipeline, spec: RunConfig, p: Paths) -> tuple[dict[str, Any], Paths]:
        return {"neighbour_class_agreement": gen.neighbour_classes(pipe, spec.k_train, p)}, {}


class FollowsDatabase(Measure):
    """With a database swapped in at sampling time: do the samples look like it, or like X (gen.follows_database)?"""

    name = "follows database"
    reads = ("generated_features", "train_features", "sampling_database")

    def applies(self, spec: RunConfig) -> bool:
        return spec.sample.database is not None

    def measure(self, pipe: Pipeline, spec: RunConfig, p: Paths) -> tuple[dict[str, Any], Paths]:
        fe = spec.metrics.feature_extractor
        path = gen.follows_database(pipe, spec.metrics, {
            **p, "database_features": gen.features(pipe, fe, p["sampling_database"], "database")})
        return read_json(path / "follows.json"), {}


#: the generation task's measures, in the order their values join the row
MEASURES: tuple[Measure, ...] = (Novelty(), NeighbourRecall(), NeighbourClasses(), FollowsDatabase())


def measure(pipe: Pipeline, spec: RunConfig, p: Paths,
            measures: tuple[Measure, ...] = MEASURES) -> tuple[dict[str, Any], Paths]:
    """The values and files of every measure that applies to the run."""
    values: dict[str, Any] = {}
    keep: Paths = {}
    for m in measures:
        if m.applies(spec):
            missing = [name for name in m.reads if name not in p]
            if missing:  # a task that composes the plan's parts without the stages a measure reads
                raise RdmbenchError(f"measure {m.name!r} reads {', '.join(missing)}, which this run did not compute")
            got, files = m.measure(pipe, spec, p)
            values.update(got)
            keep.update(files)
    return values, keep
