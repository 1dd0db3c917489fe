"""Stages of a generation run beyond the shared ones (rdmbench.stages):

    first_stage (fit once; latents of X) ─ train(k_train, seed) ─ samples ─ features(samples) ─ metrics
    features(X), features(reference) ────────────────────────────────────────────┴─ novelty (+ panel)
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from rdmbench import processes
from rdmbench.api import (Condition, Head, HeadInputs, MetricInputs, Queries, SampleRequest, SamplingMode,
                          SamplingSource, Space, TextInputs, TrainingData, TrainSettings)
from rdmbench.cache import load_array, read_json, save_array, write_json
from rdmbench.chunks import row_chunks, write_rows
from rdmbench.failpoints import failpoint
from rdmbench.imaging import save_grid, save_panel, save_prompt_grid
from rdmbench.stages import batched, class_names, encoder, encoder_fit, maybe, retriever, search, text_embeddings
from rdmbench.schema import PluginSpec, RetrieverSection
from rdmbench.tasks.generation.schema import MetricsSection, RunConfig, SampleSection, resolve_guidance_batching

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline


def first_stage(pipe: Pipeline, spec: PluginSpec, seed: int, data: Path) -> Path:
    """Fit the first stage once (``seed``: the data seed); store the latents of X and, for a first stage with a
    codebook, its tokens."""
    config = {"first_stage": pipe.fingerprint("first_stage", spec), "seed": seed}

    def compute(out: Path) -> dict[str, Any]:
        fs = pipe.plugin("first_stage", spec)
        images = load_array(data / "train_images.npy", mmap=True)
        info = fs.fit(images, seed, pipe.progress) if fs.trainable else {}
        fs.save(out)
        write_rows(out / "latents.npy", len(images), (fs.encode(chunk) for chunk in row_chunks(images)))
        if fs.codebook_size() is not None:
            write_rows(out / "tokens.npy", len(images),
                       (np.asarray(fs.encode_tokens(chunk), np.int64) for chunk in row_chunks(images)))
            info = {**info, "codebook_size": fs.codebook_size()}
        return info

    return pipe.stage("first_stage", config, {"data": data.name}, compute)


def head_space(pipe: Pipeline, head: PluginSpec, fs: Path) -> tuple[np.ndarray, int | None]:
    """X in the space the run's head generates in (latents, or token ids), and the codebook size if tokens."""
    if pipe.registry.contract(Head, head["name"]).generates is Space.TOKENS:
        return load_array(fs / "tokens.npy", mmap=True), read_json(fs / "info.json")["codebook_size"]
    return load_array(fs / "latents.npy", mmap=True), None


def make_head(pipe: Pipeline, spec: PluginSpec, k_train: int, seed: int, fs: Path, context_dim: int) -> Head:
    x, codebook = head_space(pipe, spec, fs)
    head = pipe.registry.build(Head, spec)  # fresh: heads hold trained state
    head.setup(HeadInputs(tuple(x.shape[1:]), context_dim, k_train, codebook), pipe.device, seed)
    return head


def train(pipe: Pipeline, spec: PluginSpec, settings: TrainSettings, k: int, seed: int, fs: Path, nbrs: Path | None,
          db_emb: Path) -> Path:
    """The head ``spec`` trained under ``settings`` with ``k`` neighbours per example (``k_train``) from training
    seed ``seed``. ``db_emb`` also at k = 0: the baseline is built at its retrieval head's context width, so both
    have the same parameters; its key names only that width, not the embeddings it never reads."""
    emb = load_array(db_emb / "embeddings.npy", mmap=True)
    config = {"head": pipe.fingerprint("head", spec), "train": asdict(settings), "k_train": k, "seed": seed,
              "context_dim": emb.shape[1],
              # several processes share each batch and draw their own noise: the same effective batch, other weights
              **({"processes": processes.world()} if processes.launched() else {})}
    inputs = {"first_stage": fs.name, **({"neighbours": nbrs.name, "embeddings": db_emb.name} if nbrs else {})}

    def compute(out: Path) -> dict[str, Any]:
        head = make_head(pipe, spec, k, seed, fs, emb.shape[1])
        data = TrainingData(np.asarray(head_space(pipe, spec, fs)[0]), load_array(nbrs / "ids.npy") if nbrs else None,
                            emb, k)
        info = head.fit(data, seed, pipe.progress, settings)
        head.save(out)
        return info

    return pipe.stage("train", config, inputs, compute, uses=(make_head, head_space), collective=True)


def source(p: dict[str, Path], mode: SamplingMode,
           embed_text: Callable[[list[str]], np.ndarray] | None = None) -> SamplingSource:
    """What ``mode`` may read, each loaded when it asks (``p``: the run's stage paths, with ``sampling_*`` the
    database sampled from); ``embed_text`` embeds prompts with the run's encoder."""
    def missing(*_: Any) -> Any:
        raise RuntimeError("this run embeds no text")

    db, ref = p["sampling_database"], p["data"]
    return SamplingSource.gated(
        mode.name, mode.needs,
        class_names=lambda: class_names(p["data"]),
        proposal_ids=lambda: load_array(p["proposal"] / "ids.npy"),
        database_embeddings=lambda: load_array(p["sampling_embeddings"] / "embeddings.npy", mmap=True),
        database_images=lambda: load_array(db / "database_images.npy", mmap=True),
        database_labels=lambda: maybe(db / "database_labels.npy"),
        database_class_names=lambda: class_names(db),
        reference_embeddings=lambda: load_array(p["reference_embeddings"] / "embeddings.npy", mmap=True),
        reference_images=lambda: load_array(ref / "reference_images.npy", mmap=True),
        reference_labels=lambda: maybe(ref / "reference_labels.npy"),
        reference_class_names=lambda: class_names(ref),
        embed_text=embed_text or missing)


def condition(pipe: Pipeline, sample: SampleSection, seed: int, mode: SamplingMode, queries: Queries,
              p: dict[str, Path]) -> tuple[np.ndarray, np.ndarray | None]:
    """What conditions each sample, as the queries' ``condition`` says: the query's k neighbours in the sampling
    database (its ``omit`` id dropped wherever it ranked; with a ``pool``, k drawn at random from its l
    nearest), its own embedding alone, or its embedding then its k - 1 neighbours
    -> (context (num, k, dim) float32, neighbour ids (num, k or k - 1), or None for the embedding alone)."""
    k = sample.k
    assert k is not None and queries.embeddings is not None  # resolved by validation; a mode that conditions
    take = k - 1 if queries.condition is Condition.QUERY_NEIGHBOURS else k
    if queries.condition is Condition.QUERY or take == 0:  # the query plus k - 1 = 0 neighbours is the query alone
        return np.ascontiguousarray(queries.embeddings[:, None, :], dtype=np.float32), None
    depth = max(mode.searched(k), queries.pool or 0)
    r = sample.retriever
    assert r is not None  # resolved by validation
    ret = retriever(pipe, r, p["sampling_index"], p["sampling_embeddings"])
    _, nbr = search(ret, queries.embeddings, depth, r.query, None)
    if queries.omit is not None:
        nbr = np.stack([np.concatenate([row[row != q], row[row == q]]) for row, q in zip(nbr, queries.omit)])
    if queries.pool:  # each sample draws its k from its query's pool, seeded
        rng = np.random.default_rng(seed)
        nbr = np.stack([row[np.sort(rng.choice(queries.pool, take, replace=False))] for row in nbr[:, : queries.pool]])
    nbr = nbr[:, :take]
    emb = load_array(p["sampling_embeddings"] / "embeddings.npy", mmap=True)
    context = np.asarray(emb[nbr.reshape(-1)], dtype=np.float32).reshape(len(nbr), take, -1)
    if queries.condition is Condition.QUERY_NEIGHBOURS:
        context = np.concatenate([queries.embeddings[:, None, :].astype(np.float32), context], axis=1)
    return context, nbr


def samples(pipe: Pipeline, spec: RunConfig, p: dict[str, Path],
            embed_text: Callable[[list[str]], np.ndarray] | None = None) -> Path:
    """Samples of the trained head (``p["train"]``), conditioned as the sampling mode's queries say; reads the
    run's ``sample``, ``head`` and ``first_stage`` sections, its ``k_train`` and its ``seed``."""
    sample, seed, k_train = spec.sample, spec.seed, spec.k_train
    k = sample.k
    assert k is not None  # resolved by validation
    # the sampling database enters through its stages' keys; the index's key holds how it was built, and how
    # `condition` searches it (nprobe, ef, …) is keyed here
    s = sample.model_dump(exclude={"database", "encoder", "retriever"})
    guided = sample.guidance_scale != 1.0 and k > 0 and k_train > 0
    # the two guidance paths differ in the last bits, so the one taken is keyed; unguided, none is
    s["guidance_batching"] = resolve_guidance_batching(sample.guidance_batching, pipe.device) if guided else None
    s["mode"] = pipe.fingerprint("sampling_mode", sample.mode)
    s["retriever_query"] = dict(sample.retriever.query) if sample.retriever else None
    config = {"sample": s, "seed": seed, "k_train": k_train}
    inputs = {n: q.name for n, q in p.items()}

    def compute(out: Path) -> dict[str, Any]:
        mode = pipe.plugin("sampling_mode", sample.mode)
        queries = mode.queries(source(p, mode, embed_text), sample.num, k, seed)
        context, nbr = condition(pipe, sample, seed, mode, queries, p) if k > 0 and k_train > 0 else (None, None)
        fs = pipe.loaded("first_stage", spec.first_stage, p["first_stage"], lambda f: f.load(p["first_stage"]))
        emb_dim = load_array(p["db_embeddings"] / "embeddings.npy", mmap=True).shape[1]
        head = make_head(pipe, spec.head, k_train, seed, p["first_stage"], emb_dim)
        head.load(p["train"])
        request = SampleRequest(context=context, num=sample.num, seed=seed, batch_size=sample.batch_size,
                                guidance_scale=sample.guidance_scale,
                                guidance_batching=s["guidance_batching"] or "split")
        start = time.perf_counter()
        decode = fs.decode_tokens if head.generates is Space.TOKENS else fs.decode
        images = batched(decode, head.sample(request, pipe.progress, **sample.head))
        seconds = time.perf_counter() - start
        save_array(out / "samples_images.npy", images)
        failpoint("samples.sampled")
        save_array(out / "query_ids.npy", np.asarray(queries.ids))
        if queries.images is not None:
            save_array(out / "query_images.npy", queries.images)
        if nbr is not None:
            save_array(out / "neighbour_ids.npy", nbr.astype(np.int64))
        # class agreement needs query labels in the reference set's label space (not a swapped database's)
        same_space = queries.class_names == class_names(p["data"])
        if queries.labels is not None and same_space:
            save_array(out / "query_labels.npy", queries.labels)
        save_grid(out / "samples.png", images, queries.images)
        if queries.texts is not None:
            write_json(out / "query_texts.json", list(queries.texts))
            save_prompt_grid(out / "prompts.png", images, list(queries.texts))
        return {"num": len(images), "sample_s": seconds, "k": k, "queries": queries.source,
                "condition": queries.condition.value, "pool": queries.pool,
                "query_labels_comparable": bool(queries.labels is not None and same_space)}

    return pipe.stage("samples", config, inputs, compute, uses=(condition, source, make_head, head_space))


def features(pipe: Pipeline, spec: PluginSpec, src: Path, array: str, fitted: Path | None = None) -> Path:
    """The metric feature extractor's outputs (float32 ``embedding``, ``logits``...) of a stored image array
    (``fitted``: a trained encoder's fit, e.g. the image–text space that grades prompts)."""
    config = {"feature_extractor": pipe.fingerprint("encoder", spec), "array": array}

    def compute(out: Path) -> dict[str, Any]:
        fe = encoder(pipe, spec, fitted)
        feats = fe.features(load_array(src / f"{array}_images.npy", mmap=True), pipe.progress)
        for name, arr in feats.items():
            save_array(out / f"{name}.npy", arr.astype(np.float32))
        return {"feature_extractor": fe.identity(), "count": len(next(iter(feats.values())))}

    return pipe.stage("features", config, {"source": src.name, **({"encoder_fit": fitted.name} if fitted else {})},
                      compute, uses=(encoder,))


def text_space(pipe: Pipeline, spec: PluginSpec, data_seed: int, p: dict[str, Path]) -> dict[str, Path] | None:
    """The samples, the held-out images and the distinct prompts in the space ``spec`` (``metrics.text_space``;
    fitted on X with the data seed when it is trained); None when the run's queries are not prompts."""
    texts = maybe_json(p["samples"] / "query_texts.json")
    if texts is None:
        return None
    fit = encoder_fit(pipe, spec, p["data"], data_seed)
    out = {"generated": features(pipe, spec, p["samples"], "samples", fit),
           "reference": features(pipe, spec, p["data"], "reference", fit),
           "prompts": text_embeddings(pipe, spec, list(dict.fromkeys(texts)), fit)}
    return {**out, "fit": fit} if fit else out


def maybe_json(path: Path) -> Any:
    return read_json(path) if path.exists() else None


def text_inputs(text: dict[str, Path], samples_path: Path) -> TextInputs:
    """The text-conditioned samples' prompts and their embeddings in the grading space (``text_space``'s paths)."""
    texts = read_json(samples_path / "query_texts.json")
    prompts = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(prompts)}
    of = np.asarray([index[t] for t in texts], np.int64)
    labels = maybe(samples_path / "query_labels.npy")
    first = np.unique(of, return_index=True)[1]  # each prompt's first sample, in prompt order
    prompt_labels = None if labels is None else np.asarray(labels[first], np.int64)
    loaded = {"generated": load_array(text["generated"] / "embedding.npy"),
              "reference": load_array(text["reference"] / "embedding.npy"),
              "prompts": load_array(text["prompts"] / "embeddings.npy")}
    report = read_json(text["fit"] / "info.json") if "fit" in text else {}
    return TextInputs(loaded.__getitem__, tuple(prompts), of, prompt_labels,
                      read_json(text["reference"] / "info.json")["feature_extractor"], report)


def metrics(pipe: Pipeline, m: MetricsSection, seed: int, gen: Path, ref: Path, samples_path: Path, data: Path,
            text: dict[str, Path] | None = None, train: Path | None = None) -> Path:
    """The metric plugins' values with bootstrap intervals (``train``: X's features, given when a metric
    ``needs_training``; keyed only then)."""
    config = {"use": {name: pipe.fingerprint("metric", {"name": name, **kwargs}) for name, kwargs in m.use.items()},
              "seed": seed, "bootstrap": m.bootstrap, "ci_level": m.ci_level}

    def compute(out: Path) -> dict[str, Any]:
        from rdmbench.stats import bootstrap, write_replicates

        roles = {"generated": gen, "reference": ref, **({"training": train} if train else {})}

        def feats(role: str, output: str) -> np.ndarray:
            if role not in roles:
                raise ValueError(f"role must be one of {', '.join(roles)}, got {role!r} (a metric reads X's features "
                                 "as 'training' when it sets needs_training)")
            return load_array(roles[role] / f"{output}.npy")

        identity = read_json(ref / "info.json")["feature_extractor"]
        inputs = MetricInputs(feats, identity, maybe(data / "reference_labels.npy"),
                              maybe(samples_path / "query_labels.npy"), seed,
                              text_inputs(text, samples_path) if text else None, f"{ref.name}+{data.name}")
        values: dict[str, Any] = {}
        used = [pipe.registry.create("metric", {"name": name, **kwargs}) for name, kwargs in m.use.items()]
        sampled = read_json(samples_path / "info.json")
        if text is None and any(u.needs_text for u in used):
            skipped = [u.name for u in used if u.needs_text]
            used = [u for u in used if not u.needs_text]
            values["skipped_metrics"] = f"{', '.join(skipped)}: queries from the {sampled.get('queries')} are not prompts"
        if not sampled.get("query_labels_comparable", True):
            skipped = [u for u in used if u.needs_query_labels]
            used = [u for u in used if not u.needs_query_labels]
            if skipped:
                why = (f"{', '.join(u.name for u in skipped)}: queries from the {sampled.get('queries')} are not "
                       "labelled with the reference classes")
                values["skipped_metrics"] = "; ".join(filter(None, (values.get("skipped_metrics"), why)))
        for metric in used:
            values.update(metric.compute(inputs))
        start = time.perf_counter()
        replicates: dict[str, np.ndarray] = {}
        values.update(bootstrap(used, inputs, values, resamples=m.bootstrap, level=m.ci_level, seed=seed,
                                replicates=replicates))
        values["bootstrap_s"] = round(time.perf_counter() - start, 2)
        if replicates:
            write_replicates(out / "replicates.csv", replicates)
        values["feature_extractor"] = identity
        values["num_samples"] = len(feats("generated", "embedding"))
        values["num_reference"] = len(feats("reference", "embedding"))
        write_json(out / "metrics.json", values)
        return {}

    inputs = {"generated": gen.name, "reference": ref.name, "samples": samples_path.name,
              **{f"text_{role}": path.name for role, path in (text or {}).items()},
              **({"training": train.name} if train else {})}
    return pipe.stage("metrics", config, inputs, compute, uses=(text_inputs,))


def novelty(pipe: Pipeline, m: MetricsSection, p: dict[str, Path]) -> Path:
    """Near-copies: the share of samples whose nearest training image is unusually near, with its Wilson
    interval. Nearness is relative (Carlini et al. 2023): the distance to the nearest training image over
    the distance to the ``RELATIVE_TO``-th nearest, in the metric feature space (L2), so that a sample in
    a dense region (or a blank image near a hub) is not called a copy. A sample is a near-copy when its
    score is below the ``near_copy_quantile`` of held-out images' scores; held-out images are novel by
    construction, so samples as novel as they are give near_copies ≈ that quantile.
    Also draws ``panel.png``: per sample, its query, its k neighbours, itself, its nearest training image."""
    q = m.near_copy_quantile
    config = {"quantile": q, "ci_level": m.ci_level, "relative_to": RELATIVE_TO}
    names = ("generated_features", "train_features", "reference_features", "samples", "data", "sampling_database")
    inputs = {n: p[n].name for n in names}

    def compute(out: Path) -> dict[str, Any]:
        from scipy.stats import norm

        train = load_array(p["train_features"] / "embedding.npy")
        gen_d, gen_i = nearest(load_array(p["generated_features"] / "embedding.npy"), train, RELATIVE_TO)
        ref_d, _ = nearest(load_array(p["reference_features"] / "embedding.npy"), train, RELATIVE_TO)
        gen_score, ref_score = relative(gen_d), relative(ref_d)
        threshold = float(np.quantile(ref_score, q))
        copies = gen_score < threshold
        n, share = len(copies), float(copies.mean())
        lo, hi = wilson(share, n, float(norm.ppf(0.5 + m.ci_level / 2)))
        save_array(out / "nearest_train.npy", gen_i[:, 0].astype(np.int64))
        save_array(out / "nearest_distance.npy", gen_d.astype(np.float32))
        values = {"near_copies": share, "near_copies_lo": lo, "near_copies_hi": hi, "near_copy_quantile": q,
                  "near_copy_threshold": threshold,
                  "nearest_train_ratio": float(np.median(gen_d[:, 0]) / max(np.median(ref_d[:, 0]), 1e-12))}
        write_json(out / "novelty.json", values)
        nbr = maybe(p["samples"] / "neighbour_ids.npy")
        db = load_array(p["sampling_database"] / "database_images.npy", mmap=True)
        save_panel(out / "panel.png", load_array(p["samples"] / "samples_images.npy", mmap=True),
                   maybe(p["samples"] / "query_images.npy"), None if nbr is None else (db, nbr),
                   load_array(p["data"] / "train_images.npy", mmap=True), gen_i[:, 0])
        return {}

    return pipe.stage("novelty", config, inputs, compute)


#: nearness of the nearest training image is judged against the distance to this many-th nearest
RELATIVE_TO = 10


def follows_database(pipe: Pipeline, m: MetricsSection, p: dict[str, Path], size: int = 5000) -> Path:
    """Whose look the samples take when the database is swapped at sampling time (the paper's zero-shot
    stylization): the share of samples whose nearest image, among ``n`` of the sampling database and ``n`` of
    the training set X (drawn at random, n = the smaller of the two and ``size``), is one of the database's, in
    the metric feature space (L2), with its Wilson interval over the samples (the pool is one fixed draw, the same
    for every run that shares these sets). A database drawn from X's own distribution gives about 0.5; samples
    that take the swapped-in domain's look, near 1; samples that stay in X's, near 0."""
    config = {"ci_level": m.ci_level, "size": size}
    names = ("generated_features", "train_features", "database_features")
    inputs = {n: p[n].name for n in names}

    def compute(out: Path) -> dict[str, Any]:
        from scipy.stats import norm

        db = load_array(p["database_features"] / "embedding.npy")
        train = load_array(p["train_features"] / "embedding.npy")
        n = min(len(db), len(train), size)
        rng = np.random.default_rng(0)  # the same draw for every run that shares these sets
        pool = np.concatenate([db[np.sort(rng.choice(len(db), n, replace=False))],
                               train[np.sort(rng.choice(len(train), n, replace=False))]])
        _, idx = nearest(load_array(p["generated_features"] / "embedding.npy"), pool)
        follows = idx[:, 0] < n
        share = float(follows.mean())
        lo, hi = wilson(share, len(follows), float(norm.ppf(0.5 + m.ci_level / 2)))
        values = {"follows_database": share, "follows_database_lo": lo, "follows_database_hi": hi,
                  "follows_database_pool": int(n)}
        write_json(out / "follows.json", values)
        return {}

    return pipe.stage("follows_database", config, inputs, compute, uses=(nearest, wilson))


def relative(d: np.ndarray) -> np.ndarray:
    """Distance to the nearest over distance to the farthest of the sorted neighbour distances ``d``; 1
    where all are 0 (many training images share the point, e.g. all-zero features: no one of them is copied)."""
    far = d[:, -1]
    ratio: np.ndarray = np.divide(d[:, 0], far, out=np.ones_like(far), where=far > 0)
    return ratio


def nearest(x: np.ndarray, ref: np.ndarray, n: int = 1, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances to, and indices of, each row's ``n`` nearest rows of ``ref``, nearest first
    (exact; float64)."""
    ref64 = ref.astype(np.float64)
    rn = (ref64 ** 2).sum(1)
    n = min(n, len(ref))
    dist, idx = np.empty((len(x), n)), np.empty((len(x), n), dtype=np.int64)
    for s in range(0, len(x), batch):
        xb = x[s:s + batch].astype(np.float64)
        d2 = (xb ** 2).sum(1)[:, None] + rn[None] - 2 * xb @ ref64.T
        part = np.argpartition(d2, n - 1, axis=1)[:, :n] if n < len(ref) else np.tile(np.arange(len(ref)), (len(xb), 1))
        vals = np.take_along_axis(d2, part, 1)
        order = np.argsort(vals, axis=1, kind="stable")
        idx[s:s + batch] = np.take_along_axis(part, order, 1)
        dist[s:s + batch] = np.sqrt(np.maximum(np.take_along_axis(vals, order, 1), 0))
    return dist, idx


def wilson(share: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (stays inside [0, 1] and is sensible at 0 or 1)."""
    if n == 0:
        return float("nan"), float("nan")
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, round(centre - half, 12))), float(min(1.0, round(centre + half, 12)))


def neighbour_recall(pipe: Pipeline, r: RetrieverSection, k: int, data_seed: int, p: dict[str, Path],
                     k_table: int) -> float:
    """Recall@k (``k_train``) of the training set's neighbours (what the head learns from) against exact search
    of ``k_table`` (the neighbour table's depth)."""
    from rdmbench.tasks.retrieval.stages import ground_truth, recall_at_k

    metric = r.build.get("metric", "cosine")
    gt = ground_truth(pipe, metric, k_table, None, data_seed, p["db_embeddings"], p["train_embeddings"])

    def compute(out: Path) -> dict[str, Any]:
        db = load_array(p["db_embeddings"] / "embeddings.npy", mmap=True)
        q = load_array(p["train_embeddings"] / "embeddings.npy", mmap=True)
        found = load_array(p["neighbours"] / "ids.npy")[:, :k]
        recall = recall_at_k(db, q, load_array(gt / "neighbours.npy"), found, k, metric)
        return {"recall": float(recall.mean())}

    path = pipe.stage("neighbour_recall", {"k": k, "metric": metric},
                      {"neighbours": p["neighbours"].name, "ground_truth": gt.name}, compute, uses=(recall_at_k,))
    return float(read_json(path / "info.json")["recall"])


def neighbour_classes(pipe: Pipeline, k: int, p: dict[str, Path]) -> float | None:
    """Share of the training images' ``k`` (``k_train``) neighbours that carry the image's own class: how much
    of the class the retrieval encoder hands the head (the ceiling of class agreement). None without
    labels, or when D's classes are not X's (another dataset)."""

    def compute(out: Path) -> dict[str, Any]:
        train, db = maybe(p["data"] / "train_labels.npy"), maybe(p["database"] / "database_labels.npy")
        if train is None or db is None or class_names(p["data"]) != class_names(p["database"]):
            return {"agreement": None}
        ids = load_array(p["neighbours"] / "ids.npy")[:, :k]
        return {"agreement": float(np.mean(db[ids] == train[:, None]))}

    path = pipe.stage("neighbour_classes", {"k": k}, {n: p[n].name for n in ("data", "database", "neighbours")},
                      compute, portable=True)
    agreement = read_json(path / "info.json")["agreement"]
    return None if agreement is None else float(agreement)
