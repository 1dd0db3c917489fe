"""One run as a pipeline of cached stages.

    data ─ database ─ embeddings(D) ─ index ─┐
      │                                      ├─ neighbours(X, k) ─ train ─ samples ─ metrics
      ├─ embeddings(X) ──────────────────────┘                     │
      ├─ first stage (+ latents of X) ─────────────────────────────┘
      └─ reference features ───────────────────────────────────────────────────────────┘

Each stage is keyed on its own resolved config, the code and library versions that compute it
(rdmbench.provenance) and its inputs' keys (rdmbench.cache), so the runs of a suite share what they
share: the k_train study encodes D once, builds one index, searches the training set's neighbours
once (for max(k, retriever.train_neighbours), which is 16 for every k <= 16) and trains one head per
k. No key depends on another run of the suite, so a run can be computed on its own.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rdmbench import proposal as prop
from rdmbench import provenance
from rdmbench.api import ImageSet, MetricInputs, SampleRequest, SplitView, TrainingData
from rdmbench.cache import StageCache, load_array, make_key, read_json, save_array, write_json
from rdmbench.chunks import row_chunks, write_rows
from rdmbench.errors import ConfigError, RdmbenchError
from rdmbench.imaging import save_grid
from rdmbench.progress import Progress
from rdmbench.registry import Registry

log = logging.getLogger("rdmbench")

#: bump when a stage's computation changes so old cache entries stop matching
STAGE_VERSION = {"data": 1, "database": 1, "first_stage": 1, "embeddings": 1, "index": 2, "neighbours": 1,
                 "train": 1, "samples": 1, "reference_features": 1, "metrics": 1, "ground_truth": 1, "search": 1,
                 "neighbour_recall": 1}


class Pipeline:
    def __init__(self, cache: StageCache, registry: Registry, progress: Progress, device: str):
        self.cache, self.registry, self.progress = cache, registry, progress
        self.device = device
        self._plugins: dict[str, Any] = {}
        self._loaded: dict[int, Path] = {}
        self.stage_log: list[dict[str, Any]] = []

    # -- machinery ------------------------------------------------------------------------------------
    def plugin(self, kind: str, spec: dict[str, Any]) -> Any:
        """One instance per distinct spec, so models load once per suite, not once per run."""
        key = make_key(kind, spec)
        if key not in self._plugins:
            self._plugins[key] = self.registry.create(kind, spec)
        return self._plugins[key]

    def loaded(self, kind: str, spec: dict[str, Any], path: Path, load: Callable[[Any], None]) -> Any:
        """The shared instance for ``spec`` with the stage at ``path`` loaded; loads only when it changes."""
        plugin = self.plugin(kind, spec)
        if self._loaded.get(id(plugin)) != path:
            load(plugin)
            self._loaded[id(plugin)] = path
        return plugin

    def fingerprint(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A plugin's cache-key material: resolved spec, version, data/weight fingerprints, code and libraries."""
        return describe(self.plugin(kind, spec), spec)

    def stage(self, name: str, config: Any, inputs: dict[str, str], compute: Callable[[Path], dict | None]) -> Path:
        """The stage's entry, computed unless an intact one with the same key exists.

        The key covers the config, the inputs' keys and the code of the calling method (the one that
        computes this stage) with the libraries its module imports; plugins add theirs through
        ``fingerprint``. The lock makes concurrent processes compute it once.
        """
        code = provenance.function_provenance(sys._getframe(1).f_code)
        key = make_key(name, {"v": STAGE_VERSION[name], "config": config, "code": code}, inputs)
        path = self.cache.path(name, key)
        cached = {"stage": name, "key": key, "cached": True, "seconds": 0.0}
        if self.cache.done(name, key):
            self.stage_log.append(cached)
            return path
        with self.cache.lock(name, key):
            if self.cache.done(name, key):  # another process computed it while we waited
                self.stage_log.append(cached)
                return path
            log.info("stage %s [%s]: computing", name, key)
            start = time.perf_counter()
            with self.cache.write(name, key, {"config": config, "code": code, "inputs": inputs}) as tmp:
                info = compute(tmp) or {}
                write_json(tmp / "info.json", {**info, "seconds": time.perf_counter() - start})
        seconds = time.perf_counter() - start
        self.stage_log.append({"stage": name, "key": key, "cached": False, "seconds": seconds})
        log.info("stage %s [%s]: done in %.1f s", name, key, seconds)
        return path

    # -- stages ---------------------------------------------------------------------------------------
    def data(self, cfg: dict[str, Any]) -> Path:
        d = cfg["data"]
        spec = d["dataset"]
        config = {**{k: v for k, v in d.items() if k not in ("dataset", "allow_overlap", "allow_reference_overlap")},
                  "dataset": self.fingerprint("dataset", spec)}

        def compute(out: Path) -> dict:
            ds = self.plugin("dataset", spec)
            for split in (d["train_split"], d["reference_split"]):
                if split not in ds.splits:
                    raise ConfigError(f"dataset {spec['name']!r} has no split {split!r} (allowed: {', '.join(ds.splits)})",
                                      key="data.train_split" if split == d["train_split"] else "data.reference_split")
            # rows are picked by index and streamed to disk: a split is never in memory whole
            rng = np.random.default_rng(d["seed"])
            train = SplitView(ds, d["train_split"], _take(ds.count(d["train_split"]), d["train_size"], rng,
                                                          "data.train_size"))
            ref = SplitView(ds, d["reference_split"], _take(ds.count(d["reference_split"]), d["reference_size"], rng,
                                                            "data.reference_size"))
            class_names = _save_images(out, "train", train)
            _save_images(out, "reference", ref)
            write_json(out / "meta.json", {"class_names": list(class_names or [])})
            return {"train": len(train), "reference": len(ref)}

        return self.stage("data", config, {}, compute)

    def database(self, cfg: dict[str, Any], data: Path) -> Path:
        spec = cfg["database"]
        allow, allow_ref = cfg["data"]["allow_overlap"], cfg["data"]["allow_reference_overlap"]
        config = {"database": self.fingerprint("database", spec), "seed": cfg["data"]["seed"], "allow_overlap": allow,
                  "allow_reference_overlap": allow_ref}

        def compute(out: Path) -> dict:
            from rdmbench.overlap import content_hashes, overlap_count

            db = self.plugin("database", spec)
            train = _load_images(data, "train")
            _save_images(out, "database", db.build(train, cfg["data"]["seed"]))
            stored = content_hashes(load_array(out / "database_images.npy", mmap=True))
            overlap = overlap_count(train.images, stored)
            if overlap and not allow:
                raise ConfigError(f"{overlap} database images are identical to training images; X and D must be "
                                  "disjoint (set data.allow_overlap: true to permit it)", key="database")
            ref_overlap = overlap_count(load_array(data / "reference_images.npy", mmap=True), stored)
            if ref_overlap and not allow_ref:
                raise ConfigError(
                    f"{ref_overlap} reference images (data.reference_split {cfg['data']['reference_split']!r}) are "
                    "identical to database images: samples would be scored against images the model retrieves; "
                    "draw D from another split (e.g. database.split: train) or set data.allow_reference_overlap: "
                    "true to permit it", key="database")
            return {"size": len(stored), "overlap_with_train": overlap, "overlap_with_reference": ref_overlap,
                    "allow_reference_overlap": allow_ref, "excluded": getattr(db, "excluded", None)}

        return self.stage("database", config, {"data": data.name}, compute)

    def embeddings(self, encoder_spec: dict[str, Any], source: Path, array: str) -> Path:
        """float16 embeddings (memory-mapped when read) of one stored image array, L2-normalised unless
        the encoder says its raw values are the vectors (``Encoder.normalize``)."""
        config = {"encoder": self.fingerprint("encoder", encoder_spec), "array": array}

        def compute(out: Path) -> dict:
            enc = self.plugin("encoder", encoder_spec)
            images = load_array(source / f"{array}_images.npy", mmap=True)
            emb = enc.features(images, self.progress)["embedding"].astype(np.float32)
            if enc.normalize:
                emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            save_array(out / "embeddings.npy", emb.astype(np.float16))
            return {"count": len(emb), "dim": emb.shape[1], "encoder": enc.identity()}

        return self.stage("embeddings", config, {"source": source.name}, compute)

    def index(self, cfg: dict[str, Any], db_emb: Path) -> Path:
        r = cfg["retriever"]
        spec = {"name": r["name"], **r["build"]}
        config = {"retriever": self.fingerprint("retriever", spec)}

        def compute(out: Path) -> dict:
            ret = self.plugin("retriever", spec)
            emb = load_array(db_emb / "embeddings.npy")
            start = time.perf_counter()
            ret.build(emb)
            build_s = time.perf_counter() - start
            ret.save(out)
            saved = sum(f.stat().st_size for f in out.iterdir() if f.is_file() and f.name != ret.MANIFEST)
            held = ret.index_bytes()
            return {"build_s": build_s, "index_bytes": saved if held is None else held, "n": len(emb),
                    **ret.build_info()}

        return self.stage("index", config, {"embeddings": db_emb.name}, compute)

    def retriever(self, cfg: dict[str, Any], index: Path, db_emb: Path) -> Any:
        r = cfg["retriever"]
        return self.loaded("retriever", {"name": r["name"], **r["build"]}, index,
                           lambda ret: ret.load(index, load_array(db_emb / "embeddings.npy")))

    def neighbours(self, cfg: dict[str, Any], index: Path, db_emb: Path, queries: Path) -> Path:
        """Neighbours of every training image, for this run's own k: max(k_train, sample.k (+1 when the
        pseudo-query is omitted), retriever.train_neighbours). The floor (16 by default) lets runs with
        k <= 16 share one table without any run's key depending on the others'."""
        query = cfg["retriever"]["query"]
        k = neighbour_k(cfg)
        config = {"query": query, "k": k}

        def compute(out: Path) -> dict:
            ret = self.retriever(cfg, index, db_emb)
            q = load_array(queries / "embeddings.npy").astype(np.float32)
            sims, ids = _search(ret, q, k, query, self.progress)
            save_array(out / "ids.npy", ids.astype(np.int64))
            save_array(out / "similarities.npy", sims.astype(np.float16))
            return {"queries": len(q), "k": k, "mean_top1_similarity": float(sims[:, 0].mean())}

        return self.stage("neighbours", config, {"index": index.name, "queries": queries.name}, compute)

    def first_stage(self, cfg: dict[str, Any], data: Path) -> Path:
        spec = cfg["first_stage"]
        config = {"first_stage": self.fingerprint("first_stage", spec), "seed": cfg["data"]["seed"]}

        def compute(out: Path) -> dict:
            fs = self.plugin("first_stage", spec)
            images = load_array(data / "train_images.npy", mmap=True)
            info = fs.fit(images, cfg["data"]["seed"], self.progress) if fs.trainable else {}
            fs.save(out)
            write_rows(out / "latents.npy", len(images), (fs.encode(chunk) for chunk in row_chunks(images)))
            return info

        return self.stage("first_stage", config, {"data": data.name}, compute)

    def load_first_stage(self, cfg: dict[str, Any], path: Path) -> Any:
        return self.loaded("first_stage", cfg["first_stage"], path, lambda fs: fs.load(path))

    def train(self, cfg: dict[str, Any], fs: Path, nbrs: Path | None, db_emb: Path) -> Path:
        """``db_emb`` also at k = 0: the baseline is built at its RDM's context width, so both have
        the same parameters; its key names only that width, not the embeddings it never reads."""
        spec, k = cfg["head"], cfg["k_train"]
        emb = load_array(db_emb / "embeddings.npy", mmap=True)
        config = {"head": self.fingerprint("head", spec), "k_train": k, "seed": cfg["seed"], "context_dim": emb.shape[1]}
        inputs = {"first_stage": fs.name, **({"neighbours": nbrs.name, "embeddings": db_emb.name} if k else {})}

        def compute(out: Path) -> dict:
            latents = load_array(fs / "latents.npy")
            head = self.make_head(cfg, latents.shape[1:], emb.shape[1])
            data = TrainingData(latents, load_array(nbrs / "ids.npy") if k else None, emb, k)
            info = head.fit(data, cfg["seed"], self.progress)
            head.save(out)
            return info

        return self.stage("train", config, inputs, compute)

    def make_head(self, cfg: dict[str, Any], latent_shape: tuple[int, ...], context_dim: int) -> Any:
        head = self.registry.create("head", cfg["head"])  # fresh: heads hold trained state
        head.setup(tuple(latent_shape), context_dim, cfg["k_train"], self.device, cfg["seed"])
        return head

    def samples(self, cfg: dict[str, Any], paths: dict[str, Path]) -> Path:
        from rdmbench.schema import resolve_guidance_batching

        s, k = dict(cfg["sample"]), cfg["sample"]["k"]
        guided = s["guidance_scale"] != 1.0 and k > 0 and cfg["k_train"] > 0
        # the two guidance paths differ in the last bits, so the one taken is keyed; unguided, none is
        s["guidance_batching"] = resolve_guidance_batching(s["guidance_batching"], self.device) if guided else None
        config = {"sample": s, "seed": cfg["seed"], "k_train": cfg["k_train"]}
        inputs = {n: p.name for n, p in paths.items() if p is not None}

        def compute(out: Path) -> dict:
            queries, query_labels, context, query_images = self.queries(cfg, paths)
            if cfg["k_train"] == 0:
                context = None  # the parametric baseline ignores retrieval; queries only label the samples
            fs = self.load_first_stage(cfg, paths["first_stage"])
            latents = load_array(paths["first_stage"] / "latents.npy", mmap=True)
            emb_dim = load_array(paths["db_embeddings"] / "embeddings.npy", mmap=True).shape[1]
            head = self.make_head(cfg, latents.shape[1:], emb_dim)
            head.load(paths["train"])
            request = SampleRequest(context, s["num"], s["guidance_scale"], s["steps"], s["eta"], cfg["seed"],
                                    s["batch_size"], {"guidance_batching": s["guidance_batching"]})
            start = time.perf_counter()
            images = _batched(fs.decode, head.sample(request, self.progress))
            seconds = time.perf_counter() - start
            save_array(out / "samples.npy", images)
            save_array(out / "query_ids.npy", queries)
            if query_labels is not None:
                save_array(out / "query_labels.npy", query_labels)
            save_grid(out / "samples.png", images, query_images)
            return {"num": len(images), "sample_s": seconds, "k": k}

        return self.stage("samples", config, inputs, compute)

    def queries(self, cfg: dict[str, Any], paths: dict[str, Path]):
        """Query ids, their labels, the neighbour context (num, k, dim) and the query images."""
        s = cfg["sample"]
        k = s["k"]
        db_emb = load_array(paths["db_embeddings"] / "embeddings.npy", mmap=True)
        if s["mode"] == "unconditional":
            nbr_ids = load_array(paths["neighbours"] / "ids.npy")
            p = prop.truncate_top_m(prop.proposal(nbr_ids, max(k, 1), len(db_emb)), s["top_m"])
            ids = prop.draw_pseudo_queries(p, s["num"], cfg["seed"])
            q_emb = np.asarray(db_emb[ids], dtype=np.float32)
            images = load_array(paths["database"] / "database_images.npy", mmap=True)
            labels = _maybe(paths["database"] / "database_labels.npy")
        else:
            ref = load_array(paths["ref_embeddings"] / "embeddings.npy")
            ids = np.arange(s["num"]) % len(ref)
            q_emb = ref[ids].astype(np.float32)
            images = load_array(paths["data"] / "reference_images.npy", mmap=True)
            labels = _maybe(paths["data"] / "reference_labels.npy")
        query_images = np.asarray(images[ids])
        query_labels = None if labels is None else np.asarray(labels)[ids]
        if k == 0:
            return ids, query_labels, None, query_images
        ret = self.retriever(cfg, paths["index"], paths["db_embeddings"])
        extra = 1 if s["omit_query"] and s["mode"] == "unconditional" else 0
        _, nbr = _search(ret, q_emb, k + extra, cfg["retriever"]["query"], None)
        if extra:  # drop the pseudo-query itself, wherever the search ranked it
            nbr = np.stack([np.concatenate([r[r != q], r[r == q]])[:k] for r, q in zip(nbr, ids)])
        context = np.asarray(db_emb[nbr.reshape(-1)], dtype=np.float32).reshape(len(ids), k, -1)
        return ids, query_labels, context, query_images

    def reference_features(self, cfg: dict[str, Any], data: Path) -> Path:
        spec = cfg["metrics"]["feature_extractor"]
        config = {"feature_extractor": self.fingerprint("encoder", spec)}

        def compute(out: Path) -> dict:
            fe = self.plugin("encoder", spec)
            feats = fe.features(load_array(data / "reference_images.npy", mmap=True), self.progress)
            for name, arr in feats.items():
                save_array(out / f"{name}.npy", arr.astype(np.float32))
            return {"feature_extractor": fe.identity(), "count": len(next(iter(feats.values())))}

        return self.stage("reference_features", config, {"data": data.name}, compute)

    def metrics(self, cfg: dict[str, Any], samples: Path, ref_feats: Path, data: Path) -> Path:
        m = cfg["metrics"]
        config = {"use": {name: self.fingerprint("metric", {"name": name, **kwargs}) for name, kwargs in m["use"].items()},
                  "feature_extractor": self.fingerprint("encoder", m["feature_extractor"]), "seed": cfg["seed"],
                  "bootstrap": m["bootstrap"], "ci_level": m["ci_level"]}

        def compute(out: Path) -> dict:
            fe = self.plugin("encoder", m["feature_extractor"])
            generated = fe.features(load_array(samples / "samples.npy"), self.progress)

            def features(role: str, output: str) -> np.ndarray:
                if role == "generated":
                    return generated[output].astype(np.float32)
                if role == "reference":
                    return load_array(ref_feats / f"{output}.npy")
                raise ValueError(f"role must be 'generated' or 'reference', got {role!r}")

            inputs = MetricInputs(features, fe.identity(), _maybe(data / "reference_labels.npy"),
                                  _maybe(samples / "query_labels.npy"), cfg["seed"])
            from rdmbench.stats import bootstrap

            values: dict[str, Any] = {}
            metrics = [self.registry.create("metric", {"name": name, **kwargs}) for name, kwargs in m["use"].items()]
            for metric in metrics:
                values.update(metric.compute(inputs))
            start = time.perf_counter()
            values.update(bootstrap(metrics, inputs, values, resamples=m["bootstrap"], level=m["ci_level"],
                                    seed=cfg["seed"]))
            values["bootstrap_s"] = round(time.perf_counter() - start, 2)
            values["feature_extractor"] = fe.identity()
            values["num_samples"] = len(generated["embedding"])
            values["num_reference"] = len(inputs.features("reference", "embedding"))
            write_json(out / "metrics.json", values)
            return {}

        return self.stage("metrics", config, {"samples": samples.name, "reference": ref_feats.name}, compute)

    # -- a whole run ----------------------------------------------------------------------------------
    def run(self, cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Path]]:
        """Compute (or reuse) every stage of one run; return its row values and files to keep beside it."""
        self.stage_log = []
        if cfg["task"] == "retrieval":
            from rdmbench.ann import run_retrieval

            return run_retrieval(self, cfg)
        return self.run_generation(cfg)

    def run_generation(self, cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Path]]:
        retrieval = cfg["k_train"] > 0 or cfg["sample"]["k"] > 0 or cfg["sample"]["mode"] == "unconditional"
        p: dict[str, Path] = {}
        p["data"] = self.data(cfg)
        p["database"] = self.database(cfg, p["data"])
        p["first_stage"] = self.first_stage(cfg, p["data"])
        p["db_embeddings"] = self.embeddings(cfg["encoder"], p["database"], "database")
        if retrieval:
            p["train_embeddings"] = self.embeddings(cfg["encoder"], p["data"], "train")
            p["index"] = self.index(cfg, p["db_embeddings"])
            p["neighbours"] = self.neighbours(cfg, p["index"], p["db_embeddings"], p["train_embeddings"])
        if cfg["sample"]["mode"] == "reference-queries":
            p["ref_embeddings"] = self.embeddings(cfg["encoder"], p["data"], "reference")
        k = cfg["k_train"]
        p["train"] = self.train(cfg, p["first_stage"], p.get("neighbours") if k else None, p["db_embeddings"])
        p["samples"] = self.samples(cfg, p)
        p["reference_features"] = self.reference_features(cfg, p["data"])
        p["metrics"] = self.metrics(cfg, p["samples"], p["reference_features"], p["data"])
        row = {**read_json(p["metrics"] / "metrics.json"),
               "encoder": read_json(p["db_embeddings"] / "info.json").get("encoder"),
               "train_s": read_json(p["train"] / "info.json").get("seconds"),
               "head_parameters": read_json(p["train"] / "info.json").get("head_parameters"),
               "sample_s": read_json(p["samples"] / "info.json").get("sample_s")}
        if k:
            from rdmbench.ann import neighbour_recall

            row["retrieval_recall"] = neighbour_recall(self, cfg, p)
        row.update(opt_ins(p))
        return row, {"samples.png": p["samples"] / "samples.png"}


def opt_ins(p: dict[str, Path]) -> dict[str, Any]:
    """Row columns for explicit opt-ins that made a stage differ from what was asked, so a number never
    hides them: an index built otherwise (``small_database:``), a database overlapping the reference set."""
    out: dict[str, Any] = {}
    built = read_json(p["index"] / "info.json").get("built") if "index" in p else None
    if built:
        out["retriever_built"] = built
    overlap = read_json(p["database"] / "info.json").get("overlap_with_reference") if "database" in p else None
    if overlap:
        out["database_reference_overlap"] = overlap
    return out


def neighbour_k(cfg: dict[str, Any]) -> int:
    s = cfg["sample"]
    return max(cfg["k_train"], s["k"] + (1 if s["omit_query"] else 0), cfg["retriever"]["train_neighbours"])


def describe(plugin: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Cache-key material of a plugin instance (also for plugins nested in others, e.g. a database's dataset)."""
    fp = getattr(plugin, "fingerprint", None)
    return {"spec": spec, "version": type(plugin).version, **(fp() if fp else {}),
            **provenance.plugin_provenance(type(plugin))}


def _take(count: int, size: int | None, rng: np.random.Generator, key: str) -> np.ndarray:
    """Indices of a seeded subset of ``count`` rows, ascending (all rows when ``size`` is None).

    The same draws as when the split was loaded whole and subset, so earlier cached data stages
    hold the same images.
    """
    if size is None:
        return np.arange(count)
    if size > count:
        raise ConfigError(f"{size} requested but the split has only {count} images; allowed: 1..{count}", key=key)
    return np.sort(rng.permutation(count)[:size])


def _save_images(out: Path, name: str, images: ImageSet | SplitView) -> tuple[str, ...] | None:
    """Store images (and labels) as ``<name>_images.npy`` a chunk at a time; return the class names."""
    parts = [images] if isinstance(images, ImageSet) else images.chunks()
    labels: list[np.ndarray | None] = []
    class_names: list[tuple[str, ...] | None] = []

    def pixels():
        for part in parts:
            labels.append(part.labels)
            class_names.append(part.class_names)
            yield part.images

    write_rows(out / f"{name}_images.npy", len(images), pixels())
    if all(part is not None for part in labels):
        save_array(out / f"{name}_labels.npy", np.concatenate(labels).astype(np.int64))
    elif any(part is not None for part in labels):
        raise RdmbenchError(f"{name}: the dataset returned labels for some images and not for others")
    return class_names[0]


def _load_images(path: Path, name: str) -> ImageSet:
    """Stored images, memory-mapped (read on demand, never loaded whole)."""
    meta = read_json(path / "meta.json") if (path / "meta.json").exists() else {}
    return ImageSet(load_array(path / f"{name}_images.npy", mmap=True), _maybe(path / f"{name}_labels.npy"),
                    tuple(meta.get("class_names") or ()) or None)


def _maybe(path: Path) -> np.ndarray | None:
    return load_array(path) if path.exists() else None


def _batched(fn: Callable[[np.ndarray], np.ndarray], items: np.ndarray, batch: int = 1024) -> np.ndarray:
    return np.concatenate([fn(np.asarray(items[s:s + batch])) for s in range(0, len(items), batch)])


def _search(retriever: Any, queries: np.ndarray, k: int, query_args: dict[str, Any],
            progress: Progress | None, batch: int = 4096,
            description: str = "search neighbours") -> tuple[np.ndarray, np.ndarray]:
    sims, ids = [], []
    with progress.task(description, len(queries)) if progress else nullcontext() as advance:
        for s in range(0, len(queries), batch):
            a, b = retriever.search(queries[s:s + batch], k, **query_args)
            sims.append(a)
            ids.append(b)
            if advance:
                advance(len(a))
    ids_all = np.concatenate(ids)
    if (ids_all < 0).any():
        raise RdmbenchError(f"the retriever returned fewer than k = {k} neighbours for some queries")
    return np.concatenate(sims), ids_all
