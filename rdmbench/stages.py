"""Stages every task shares: data, database, embeddings, index, neighbours.

    data (X, reference) ─ database (D, disjoint from X and the reference by content)
      ├─ embeddings(D) ─ index ─┐
      └─ embeddings(queries) ───┴─ neighbours(queries, k)

Each takes only the config sections it depends on, so that the same function serves the training
database and a database given at sampling time, and a stage's key never holds more than it reads.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from rdmbench.api import Encoder, ImageSet, Retriever, SplitView
from rdmbench.cache import DONE, load_array, read_json, save_array, scratch, write_json
from rdmbench.chunks import RowWriter, row_chunks, write_rows
from rdmbench.failpoints import failpoint
from rdmbench.errors import ConfigError, RdmbenchError
from rdmbench.progress import Progress
from rdmbench.schema import DataSection, PluginSpec, RetrieverSection

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline


def data(pipe: Pipeline, d: DataSection) -> Path:
    """X and the held-out reference set: seeded subsets of two splits, streamed to disk."""
    spec = d.dataset
    config = {**d.model_dump(exclude={"dataset", "allow_overlap", "allow_reference_overlap"}),
              "dataset": pipe.fingerprint("dataset", spec)}

    def compute(out: Path) -> dict[str, Any]:
        ds = pipe.plugin("dataset", spec)
        for split in (d.train_split, d.reference_split):
            if split not in ds.splits:
                raise ConfigError(f"dataset {spec['name']!r} has no split {split!r} (allowed: {', '.join(ds.splits)})",
                                  key="data.train_split" if split == d.train_split else "data.reference_split")
        # rows are picked by index and streamed to disk: a split is never in memory whole
        rng = np.random.default_rng(d.seed)
        train = SplitView(ds, d.train_split, take(ds.count(d.train_split), d.train_size, rng, "data.train_size"))
        ref = SplitView(ds, d.reference_split, take(ds.count(d.reference_split), d.reference_size, rng,
                                                    "data.reference_size"))
        class_names = save_images(out, "train", train)
        save_images(out, "reference", ref)
        write_json(out / "meta.json", {"class_names": list(class_names or [])})
        return {"train": len(train), "reference": len(ref)}

    return pipe.stage("data", config, {}, compute, portable=True)


def database(pipe: Pipeline, spec: PluginSpec, d: DataSection, data_path: Path) -> Path:
    """D built by the database plugin, refused when it shares content with X or the reference set."""
    allow, allow_ref = d.allow_overlap, d.allow_reference_overlap
    config = {"database": pipe.fingerprint("database", spec), "seed": d.seed, "allow_overlap": allow,
              "allow_reference_overlap": allow_ref}

    def compute(out: Path) -> dict[str, Any]:
        from rdmbench.overlap import content_hashes, overlap_count

        db = pipe.plugin("database", spec)
        train = load_images(data_path, "train")
        class_names = save_images(out, "database", db.build(train, d.seed))
        write_json(out / "meta.json", {"class_names": list(class_names or [])})
        stored = content_hashes(load_array(out / "database_images.npy", mmap=True))
        overlap = overlap_count(train.images, stored)
        if overlap and not allow:
            raise ConfigError(f"{overlap} database images are identical to training images; X and D must be "
                              "disjoint (set data.allow_overlap: true to permit it)", key="database")
        ref_overlap = overlap_count(load_array(data_path / "reference_images.npy", mmap=True), stored)
        if ref_overlap and not allow_ref:
            raise ConfigError(
                f"{ref_overlap} reference images (data.reference_split {d.reference_split!r}) are "
                "identical to database images: samples would be scored against images the model retrieves; "
                "draw D from another split (e.g. database.split: train) or set data.allow_reference_overlap: "
                "true to permit it", key="database")
        return {"size": len(stored), "overlap_with_train": overlap, "overlap_with_reference": ref_overlap,
                "allow_reference_overlap": allow_ref, "excluded": db.excluded}

    return pipe.stage("database", config, {"data": data_path.name}, compute, portable=True)


def encoder_fit(pipe: Pipeline, spec: PluginSpec, data_path: Path, seed: int) -> Path | None:
    """Fit a trainable encoder (``Encoder.trainable``: e.g. the lit joint space's projections) once on X, its
    labels and class names; what it reports (held-out retrieval accuracy) is stored. None: nothing to fit."""
    if not pipe.registry.contract(Encoder, spec["name"]).trainable:
        return None
    config = {"encoder": pipe.fingerprint("encoder", spec), "seed": seed}

    def compute(out: Path) -> dict[str, Any]:
        enc = pipe.plugin("encoder", spec)
        train = ImageSet(load_array(data_path / "train_images.npy", mmap=True), maybe(data_path / "train_labels.npy"),
                         class_names(data_path))
        report = enc.fit(train, seed, pipe.progress)
        enc.save(out)
        return {"encoder": enc.identity(), **report}

    return pipe.stage("encoder_fit", config, {"data": data_path.name}, compute)


def encoder(pipe: Pipeline, spec: PluginSpec, fitted: Path | None = None,
            first_stage: tuple[PluginSpec, Path] | None = None) -> Encoder:
    """The shared encoder instance for ``spec``, ready to encode: its fitted parts loaded (``fitted``: its
    ``encoder_fit`` stage) and, for an encoder built on the first stage, the run's first stage attached."""
    cls = pipe.registry.contract(Encoder, spec["name"])
    if cls.trainable:
        if fitted is None:
            raise ConfigError(f"encoder {spec['name']!r} is trained on a generation run's labelled training set, and "
                              "this run has none; choose another encoder", key="encoder")
        enc: Encoder = pipe.loaded("encoder", spec, fitted, lambda e: e.load(fitted))
    else:
        enc = pipe.plugin("encoder", spec)
    if cls.uses_first_stage:
        if first_stage is None:
            raise ConfigError(f"encoder {spec['name']!r} embeds with a generation run's first stage, "
                              "and this run has none; choose another encoder", key="encoder")
        fs_spec, path = first_stage
        enc.attach_first_stage(pipe.loaded("first_stage", fs_spec, path, lambda f: f.load(path)))
    return enc


def embeddings(pipe: Pipeline, encoder_spec: PluginSpec, source: Path, array: str,
               first_stage: tuple[PluginSpec, Path] | None = None, fitted: Path | None = None) -> Path:
    """float16 embeddings (memory-mapped when read) of one stored image array, L2-normalised unless
    the encoder says its raw values are the vectors (``Encoder.normalize``). ``first_stage`` (its spec
    and fitted stage) is handed to an encoder built on it (``Encoder.uses_first_stage``), ``fitted`` (the
    ``encoder_fit`` stage) loaded into a trainable encoder; both are keyed."""
    config = {"encoder": pipe.fingerprint("encoder", encoder_spec), "array": array}
    inputs = {"source": source.name, **({"first_stage": first_stage[1].name} if first_stage else {}),
              **({"encoder_fit": fitted.name} if fitted else {})}

    def compute(out: Path) -> dict[str, Any]:
        enc = encoder(pipe, encoder_spec, fitted, first_stage)
        images = load_array(source / f"{array}_images.npy", mmap=True)
        # float16 shards of SHARD_ROWS images, each saved as it is computed beside the entry-to-be, so an
        # interrupted encoding of a large database resumes at its first missing shard; then joined into
        # one memory-mappable file, a shard at a time
        partial = scratch(out)
        starts = range(0, len(images), SHARD_ROWS)
        shards = [partial / f"shard-{i:05d}.npy" for i in range(len(starts))]
        for start, shard in zip(starts, shards):
            if not shard.is_file():
                save_array(shard, _embed(enc, np.asarray(images[start:start + SHARD_ROWS]), pipe.progress))
            failpoint("embeddings.shard", array)
        dim = load_array(shards[0], mmap=True).shape[1] if shards else _embed(enc, images[:0], None).shape[1]
        write_rows(out / "embeddings.npy", len(images),
                   (load_array(shard) for shard in shards) if shards else [np.zeros((0, dim), np.float16)])
        shutil.rmtree(partial)
        return {"count": len(images), "dim": dim, "encoder": enc.identity(), "shards": len(shards)}

    return pipe.stage("embeddings", config, inputs, compute)


#: images per float16 shard of an embeddings stage (a multiple of every encoder's batch size)
SHARD_ROWS = 1 << 17


def _embed(enc: Encoder, images: np.ndarray, progress: Progress | None) -> np.ndarray:
    return _normalised(enc, enc.features(images, progress)["embedding"]).astype(np.float16)


def _normalised(enc: Encoder, emb: np.ndarray) -> np.ndarray:
    """float32, L2-normalised unless the encoder says its raw values are the vectors (``Encoder.normalize``)."""
    emb = np.asarray(emb, dtype=np.float32)
    if enc.normalize:
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb


def text_embeddings(pipe: Pipeline, encoder_spec: PluginSpec, texts: list[str], fitted: Path | None = None) -> Path:
    """float32 embeddings of ``texts`` by an encoder with a text tower, L2-normalised like its image
    embeddings (``Encoder.normalize``), one row per text in order."""
    config = {"encoder": pipe.fingerprint("encoder", encoder_spec), "texts": list(texts)}

    def compute(out: Path) -> dict[str, Any]:
        enc = encoder(pipe, encoder_spec, fitted)
        if not enc.encodes_text:
            raise ConfigError(f"encoder {encoder_spec['name']!r} has no text tower", key="encoder")
        emb = _normalised(enc, enc.encode_text(list(texts)))
        save_array(out / "embeddings.npy", emb)
        return {"count": len(emb), "dim": emb.shape[1] if emb.ndim == 2 else 0, "encoder": enc.identity()}

    return pipe.stage("text_embeddings", config, {"encoder_fit": fitted.name} if fitted else {}, compute)


def retriever_spec(r: RetrieverSection) -> PluginSpec:
    return {"name": r.name, **r.build}


def index(pipe: Pipeline, r: RetrieverSection, db_emb: Path) -> Path:
    """The retriever's index over D's embeddings, with its build time and size."""
    spec = retriever_spec(r)
    config = {"retriever": pipe.fingerprint("retriever", spec)}

    def compute(out: Path) -> dict[str, Any]:
        import time

        ret = pipe.plugin("retriever", spec)
        emb = load_array(db_emb / "embeddings.npy", mmap=True)  # a streaming retriever reads it by chunks
        start = time.perf_counter()
        ret.build(emb)
        build_s = time.perf_counter() - start
        ret.save(out)
        saved = sum(f.stat().st_size for f in out.iterdir() if f.is_file() and f.name != ret.MANIFEST)
        held = ret.index_bytes()
        return {"build_s": build_s, "index_bytes": saved if held is None else held, "n": len(emb), **ret.build_info()}

    return pipe.stage("index", config, {"embeddings": db_emb.name}, compute, version=2)


def retriever(pipe: Pipeline, r: RetrieverSection, index_path: Path, db_emb: Path) -> Retriever:
    """The shared retriever instance with this index loaded."""
    ret: Retriever = pipe.loaded("retriever", retriever_spec(r), index_path,
                                 lambda ret: ret.load(index_path, load_array(db_emb / "embeddings.npy", mmap=True)))
    return ret


def neighbours(pipe: Pipeline, r: RetrieverSection, index_path: Path, db_emb: Path, queries: Path, k: int) -> Path:
    """The ``k`` nearest database entries of every query vector (the training set's, for training
    and for the proposal p_D), searched once with the run's query-time settings."""
    query = r.query
    config = {"query": query, "k": k}

    def compute(out: Path) -> dict[str, Any]:
        ret = retriever(pipe, r, index_path, db_emb)
        q = load_array(queries / "embeddings.npy", mmap=True)
        top1 = 0.0
        # the queries in parts, each part's answers written as it ends: memory stays flat however many
        with RowWriter(out / "ids.npy", len(q)) as id_rows, RowWriter(out / "similarities.npy", len(q)) as sim_rows, \
                pipe.progress.task("search neighbours", len(q)) if pipe.progress else nullcontext() as advance:
            for chunk in row_chunks(q) if len(q) else [np.zeros((0, q.shape[1]), np.float32)]:
                sims, ids = search(ret, chunk.astype(np.float32), k, query, None) if len(chunk) else \
                    (np.zeros((0, k), np.float32), np.zeros((0, k), np.int64))
                top1 += float(sims[:, 0].astype(np.float64).sum())
                id_rows.append(ids.astype(np.int64))
                sim_rows.append(sims.astype(np.float16))
                failpoint("neighbours.chunk")
                if advance:
                    advance(len(chunk))
        return {"queries": len(q), "k": k, "mean_top1_similarity": top1 / max(len(q), 1)}

    return pipe.stage("neighbours", config, {"index": index_path.name, "queries": queries.name}, compute,
                      uses=(search,))


def opt_ins(p: dict[str, Path]) -> dict[str, Any]:
    """Row columns for explicit opt-ins that made a stage differ from what was asked, so a number never
    hides them: an index built otherwise (``small_database:``), a database overlapping the reference set,
    and whatever a plugin's fingerprint declares as ``opt_in`` (a dataset keyed by file sizes and times)."""
    out: dict[str, Any] = {}
    for stage in ("data", "database"):
        if stage in p:
            out.update(_declared_opt_ins(read_json(p[stage] / DONE)["config"]))
    built = read_json(p["index"] / "info.json").get("built") if "index" in p else None
    if built:
        out["retriever_built"] = built
    overlap = read_json(p["database"] / "info.json").get("overlap_with_reference") if "database" in p else None
    if overlap:
        out["database_reference_overlap"] = overlap
    return out


def _declared_opt_ins(node: Any) -> dict[str, Any]:
    if isinstance(node, list):
        return {k: v for n in node for k, v in _declared_opt_ins(n).items()}
    if not isinstance(node, dict):
        return {}
    found = {k: v for n in node.values() for k, v in _declared_opt_ins(n).items()}
    return {**found, **(node.get("opt_in") or {})}


def take(count: int, size: int | None, rng: np.random.Generator, key: str) -> np.ndarray:
    """Indices of a seeded subset of ``count`` rows, ascending (all rows when ``size`` is None).

    The same draws as when the split was loaded whole and subset, so earlier cached data stages
    hold the same images.
    """
    if size is None:
        return np.arange(count)
    if size > count:
        raise ConfigError(f"{size} requested but the split has only {count} images; allowed: 1..{count}", key=key)
    return np.sort(rng.permutation(count)[:size])


def save_images(out: Path, name: str, images: ImageSet | SplitView) -> tuple[str, ...] | None:
    """Store images (and labels) as ``<name>_images.npy`` a chunk at a time; return the class names."""
    parts = [images] if isinstance(images, ImageSet) else images.chunks()
    labels: list[np.ndarray | None] = []
    class_names: list[tuple[str, ...] | None] = []

    def pixels() -> Iterator[np.ndarray]:
        for part in parts:
            labels.append(part.labels)
            class_names.append(part.class_names)
            yield part.images

    write_rows(out / f"{name}_images.npy", len(images), pixels())
    if all(part is not None for part in labels):
        save_array(out / f"{name}_labels.npy", np.concatenate([part for part in labels if part is not None])
                   .astype(np.int64))
    elif any(part is not None for part in labels):
        raise RdmbenchError(f"{name}: the dataset returned labels for some images and not for others")
    return class_names[0]


def load_images(path: Path, name: str) -> ImageSet:
    """Stored images, memory-mapped (read on demand, never loaded whole)."""
    return ImageSet(load_array(path / f"{name}_images.npy", mmap=True), maybe(path / f"{name}_labels.npy"),
                    class_names(path))


def class_names(path: Path) -> tuple[str, ...] | None:
    meta = read_json(path / "meta.json") if (path / "meta.json").exists() else {}
    return tuple(meta.get("class_names") or ()) or None


def maybe(path: Path) -> np.ndarray | None:
    return load_array(path) if path.exists() else None


def batched(fn: Callable[[np.ndarray], np.ndarray], items: np.ndarray, batch: int = 1024) -> np.ndarray:
    return np.concatenate([fn(np.asarray(items[s:s + batch])) for s in range(0, len(items), batch)])


def search(ret: Retriever, queries: np.ndarray, k: int, query_args: dict[str, Any], progress: Progress | None,
           batch: int = 4096, description: str = "search neighbours") -> tuple[np.ndarray, np.ndarray]:
    """``ret.search`` in batches with progress; an error when any query got fewer than k neighbours."""
    sims, ids = [], []
    with progress.task(description, len(queries)) if progress else nullcontext() as advance:
        for s in range(0, len(queries), batch):
            a, b = ret.search(queries[s:s + batch], k, **query_args)
            sims.append(a)
            ids.append(b)
            if advance:
                advance(len(a))
    ids_all = np.concatenate(ids)
    if (ids_all < 0).any():
        raise RdmbenchError(f"the retriever returned fewer than k = {k} neighbours for some queries")
    return np.concatenate(sims), ids_all
