"""The generation task: train a head on retrieved neighbours, sample, measure.

    data ─ database ─ embeddings(D) ─ index ─ neighbours(X, k) ─┐
      ├─ first stage (+ latents of X) ───────────────────────────┴─ train(k_train, seed) ─┐
      │  sampling database D' (D unless ``sample.database``) ─ embeddings ─ index ─┐       │
      │      (+ neighbours(X, D') for p_D, or embeddings of held-out queries) ─────┴─ samples ─ features ─ metrics
      └─ features(X), features(reference) ──────────────────────────────────────────────────┴─ novelty

The k_train study shares data, database, first stage, embeddings, the index and one neighbour table
across its heads; a top-m or guidance sweep shares the trained head too, so it costs only sampling.
How queries are chosen is a sampling-mode plugin (``sample.mode``); the task asks it what it reads.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rdmbench import stages as shared
from rdmbench.api import Condition, Encoder, Head, Metric, Need, Space
from rdmbench.cache import read_json
from rdmbench.columns import ENCODER, Column, Expected, Role
from rdmbench.errors import ConfigError, RdmbenchError
from rdmbench.tasks import Task
from rdmbench.tasks.generation import plan
from rdmbench.tasks.generation import stages as gen
from rdmbench.tasks.generation.plan import neighbour_k
from rdmbench.tasks.generation.schema import RunConfig
from rdmbench.registry import validate_kwargs
from rdmbench.validation import Checks, data_section, k_fits, retriever_section

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline


class GenerationTask(Task[RunConfig]):
    name = "generation"
    schema = RunConfig
    columns = (
        Column("near_copies", "near-copies", "lower",
               description="share of samples whose nearest training image is unusually near (distance to the "
                           "nearest over distance to the 10th nearest, below the near-copy quantile of held-out "
                           "images' values); samples as novel as held-out images: ≈ that quantile",
               expected=Expected("near_copy_quantile", "expected")),
        Column("near_copy_quantile", "near-copy quantile", summary=False,
               description="the share of near-copies expected of samples as novel as held-out images"),
        Column("nearest_train_ratio", "nearest-training distance, samples / held-out",
               description="median distance to the nearest training image, samples over held-out images "
                           "(below 1: samples sit closer to X than unseen images do)"),
        Column("retrieval_recall", "retrieval recall@k_train", "higher",
               description="recall of the training set's neighbours against exact search"),
        Column("neighbour_class_agreement", "neighbours of the query's class", "higher",
               description="share of the training images' k_train neighbours that carry the image's class: what "
                           "the retrieval encoder hands the head, and about the ceiling of class agreement"),
        Column("follows_database", "samples nearer the sampling database than X", "higher",
               description="with a database swapped in at sampling time: share of samples whose nearest image, "
                           "among equally many of the sampling database and of X, is the database's (metric "
                           "feature space); ≈ 0.5 for a database of X's own distribution, near 1 when samples "
                           "take the swapped-in domain's look"),
        Column("follows_database_pool", "images per side of that comparison", summary=False, numeric=True),
        Column("head_parameters", "head parameters", summary=False, numeric=True),
        Column("train_processes", "training processes", summary=False, numeric=True,
               description="processes that trained the head together (torchrun / accelerate launch); 1: one"),
        Column("sampling_database", "sampling database", summary=False),
        Column("queries", "queries from", summary=False),
        Column("conditioning", "each sample conditioned on", summary=False),
        Column("skipped_metrics", "metrics not measured", summary=False),
        Column("feature_extractor", "feature extractor", summary=False, role=Role.PROVENANCE),
        ENCODER,
        Column("num_samples", "generated samples", summary=False, numeric=True, role=Role.PROVENANCE),
        Column("num_reference", "reference images", summary=False, numeric=True, role=Role.PROVENANCE),
        Column("train_s", "training time (s)", role=Role.TIMING),
        Column("sample_s", "sampling time (s)", role=Role.TIMING),
        Column("bootstrap_s", "bootstrap time (s)", role=Role.TIMING),
    )

    # -- config ----------------------------------------------------------------------------------------
    def validate(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        for kind in ("database", "first_stage", "encoder", "head"):
            out[kind] = checks.plugin(kind, getattr(run, kind), kind)
        data_section(checks, run.data.model_dump(), out["data"])
        self._validate_encoder_classes(out["encoder"], out, checks, "encoder")
        retriever = retriever_section(checks, run.retriever)
        if retriever is not None:
            out["retriever"] = retriever
        self._validate_train(run, out, checks)
        self._validate_metrics(run, out, checks)
        self._validate_sample(run, out, checks)

    def _validate_encoder_classes(self, spec: dict[str, Any] | None, out: dict[str, Any], checks: Checks,
                                  key: str) -> None:
        """The classes an encoder's settings name (lit's held_out_classes) must be those of the data it fits on."""
        if spec is None or out["data"] is None or out["data"].get("dataset") is None:
            return
        from rdmbench.api.encoder import NamesClasses

        encoder = checks.registry.create("encoder", spec)
        if not isinstance(encoder, NamesClasses):  # names none: the dataset is not opened
            return
        names = dataset_class_names(checks.registry, out["data"])
        if names is not None and (problem := encoder.check_classes(names or None)):
            checks.error(problem, key)

    def _validate_train(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        """The run's ``train:`` settings over its head's ``train_defaults``: every one filled in (what the resolved
        config shows and the training stage keys), each checked against the others."""
        if out["head"] is None:
            return
        try:
            out["train"] = asdict(checks.registry.contract(Head, out["head"]["name"]).train_defaults.resolve(
                run.train.model_dump()))
        except ConfigError as e:
            checks.error(e.detail, e.key or "train")

    def _validate_metrics(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        registry = checks.registry
        fe = checks.plugin("encoder", run.metrics.feature_extractor, "metrics.feature_extractor")
        out["metrics"]["feature_extractor"] = fe
        if fe is not None and registry.contract(Encoder, fe["name"]).trainable:
            checks.error(f"encoder {fe['name']!r} is trained within the run; the metric features need a frozen network "
                         "(e.g. efficientnet-lite, inception-v3)", "metrics.feature_extractor")
        if fe is not None and registry.contract(Encoder, fe["name"]).uses_first_stage:
            checks.error(f"encoder {fe['name']!r} is built on the run's first stage, which the metrics must not depend "
                         "on; choose an independent feature extractor (e.g. efficientnet-lite, inception-v3)",
                         "metrics.feature_extractor")
        use = {}
        for mname, margs in run.metrics.use.items():
            if checks.attempt(registry.info, "metric", mname, file=checks.file,
                              key=checks.key(f"metrics.use.{mname}")) is None:
                continue
            spec = checks.plugin("metric", {"name": mname, **(margs or {})}, f"metrics.use.{mname}")
            if spec is None:
                continue
            use[mname] = {k: v for k, v in spec.items() if k != "name"}
            # a subset as large as its set is the set itself every time (KID): refuse before any work
            for what, size in (("sample.num", run.sample.num), ("data.reference_size", run.data.reference_size)):
                if isinstance(spec.get("subset_size"), int) and size is not None and spec["subset_size"] >= size:
                    checks.error(f"subset_size {spec['subset_size']} must be smaller than {what} = {size}; allowed: "
                                 f"2..{size - 1}", f"metrics.use.{mname}.subset_size")
            if fe is not None:
                provides = registry.contract(Encoder, fe["name"]).provides
                missing = [n for n in registry.contract(Metric, mname).needs if n not in provides]
                if missing:
                    checks.error(f"metric {mname!r} needs {missing} from the feature extractor, but {fe['name']!r} "
                                 f"provides only {list(provides)}; drop the metric or choose another feature extractor",
                                 f"metrics.use.{mname}")
        out["metrics"]["use"] = use
        self._validate_text_space(run, out, checks)

    def _validate_text_space(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        registry, key = checks.registry, "metrics.text_space"
        wanted = [m for m in out["metrics"]["use"] if registry.contract(Metric, m).needs_text]
        space = checks.plugin("encoder", run.metrics.text_space, key) if run.metrics.text_space is not None else None
        out["metrics"]["text_space"] = space
        self._validate_encoder_classes(space, out, checks, key)
        if wanted and run.metrics.text_space is None:
            checks.error(f"metric {wanted[0]!r} grades samples against their prompts in an image–text space: name one "
                         "as metrics.text_space (an encoder with a text tower other than the run's, e.g. lit with "
                         "image: {name: efficientnet-lite, variant: lite2})", f"metrics.use.{wanted[0]}")
        if space is None:
            return
        cls = registry.contract(Encoder, space["name"])
        if not cls.encodes_text or cls.uses_first_stage:
            checks.error(f"encoder {space['name']!r} has no text tower to grade prompts with (allowed: "
                         f"{', '.join(text_encoders(registry))})", key)
        elif space == out["encoder"]:
            checks.error("the text space is the run's encoder, which chose the samples' conditioning: grading only in "
                         "that space rewards its quirks; use another space (e.g. lit with another image network, "
                         "image: {name: efficientnet-lite, variant: lite2})", key)

    def _validate_sample(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        s, o = run.sample, out["sample"]
        k_train = out["k_train"]
        o["mode"] = mode_spec = checks.plugin("sampling_mode", s.mode, "sample.mode")
        mode = checks.registry.create("sampling_mode", mode_spec) if mode_spec else None
        k = o["k"] = (mode.default_k(k_train) if mode else k_train) if s.k is None else s.k
        extra = mode.searched(k) - k if mode else 0
        if mode is not None and (problem := mode.check_k(k, k_train)):
            checks.error(problem, "sample.k")
        if mode is not None:
            self._validate_text_mode(mode, out, checks)
        if s.encoder is not None:
            enc = checks.plugin("encoder", s.encoder, "sample.encoder")
            if enc is not None and out["encoder"] is not None and enc != out["encoder"]:
                checks.error(f"the sampling database must be embedded with the run's encoder {out['encoder']['name']!r} "
                             f"({_args(out['encoder'])}): the head was trained on its vectors, not on "
                             f"{enc['name']!r} ({_args(enc)}); drop sample.encoder", "sample.encoder")
        o["encoder"] = out["encoder"]
        if s.retriever is not None:
            o["retriever"] = retriever_section(checks, s.retriever, "sample.retriever")
        else:
            o["retriever"] = out["retriever"] if isinstance(out["retriever"], dict) and "query" in out["retriever"] \
                else None
        if s.database is not None:
            o["database"] = checks.plugin("database", s.database, "sample.database")
            k_fits(checks, k + extra, 0, "sample.k", o["database"], "the sampling database")
            k_fits(checks, k_train, 0, "k_train", out["database"])
        else:
            need = max(k_train, k + extra)
            k_fits(checks, need, 0, "k_train" if k_train >= k + extra else "sample.k", out["database"])
        self._validate_head(run, out, checks)
        guided = s.guidance_scale != 1.0 and k > 0 and k_train > 0
        if guided and out["head"] is not None and not checks.registry.create("head", out["head"]).supports_guidance():
            checks.error(f"guidance scale {s.guidance_scale} needs a head trained with null conditioning, and head "
                         f"{out['head']['name']!r} as configured has none (rdm: head.cond_dropout > 0); set "
                         "sample.guidance_scale: 1.0 or train with null conditioning", "sample.guidance_scale")

    def _validate_text_mode(self, mode: Any, out: dict[str, Any], checks: Checks) -> None:
        """A mode that embeds text needs an encoder with a text tower; the classes it names must be the dataset's."""
        if Need.TEXT in mode.needs and out["encoder"] is not None:
            if not checks.registry.contract(Encoder, out["encoder"]["name"]).encodes_text:
                checks.error(f"sampling mode {mode.name!r} embeds prompts with the run's encoder, and "
                             f"{out['encoder']['name']!r} has no text tower; use an encoder that embeds text too "
                             f"(allowed: {', '.join(text_encoders(checks.registry))})", "encoder")
        if out["data"] is not None and out["data"].get("dataset") is not None:
            names = dataset_class_names(checks.registry, out["data"])
            if names is not None and (problem := mode.check_classes(names or None)):
                checks.error(problem, "sample.mode")

    def _validate_head(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        """The head against its first stage (a token head needs a codebook), and its sampler settings
        (``sample.head``) against its ``sample``'s keyword-only arguments."""
        if out["head"] is None:
            return
        head, codebook = checks.registry.build(Head, out["head"]), None
        options = checks.attempt(validate_kwargs, type(head).sample, run.sample.head, file=checks.file,
                                 key=checks.key("sample.head"), what=f"head {out['head']['name']!r} sampler", skip=3)
        out["sample"]["head"] = options
        if out["first_stage"] is None:
            return
        if head.generates is Space.TOKENS:
            try:
                codebook = checks.registry.create("first_stage", out["first_stage"]).codebook_size()
            except RdmbenchError:  # a pretrained first stage reads its config file to tell: the preflight
                return             # names a missing or unreadable file, before any work
        if head.generates is Space.TOKENS and codebook is None:
            checks.error(f"head {out['head']['name']!r} generates codebook tokens, and first stage "
                         f"{out['first_stage']['name']!r} as configured has no codebook; use one that has "
                         "(autoencoder with kind: vq, or pretrained-autoencoder of a VQ model)", "first_stage")
            return
        if options is not None and (problem := head.check_sampler(codebook, **options)):
            checks.error(problem, "sample.head")

    def plugin_specs(self, spec: RunConfig) -> list[tuple[str, str, dict[str, Any], bool]]:
        s, m = spec.sample, spec.metrics
        specs = [("dataset", "data.dataset", spec.data.dataset, True), ("database", "database", spec.database, True),
                 ("encoder", "encoder", spec.encoder, True), ("first_stage", "first_stage", spec.first_stage, True),
                 ("encoder", "metrics.feature_extractor", m.feature_extractor, True),
                 ("retriever", "retriever", shared.retriever_spec(spec.retriever), False),
                 ("sampling_mode", "sample.mode", s.mode, True)]
        if s.database is not None:
            specs.append(("database", "sample.database", s.database, True))
        if s.retriever is not None and s.retriever != spec.retriever:
            specs.append(("retriever", "sample.retriever", shared.retriever_spec(s.retriever), False))
        if m.text_space:
            specs.append(("encoder", "metrics.text_space", m.text_space, True))
        specs += [("metric", f"metrics.use.{name}", {"name": name, **a}, False) for name, a in m.use.items()]
        return specs

    def shared_part(self, spec: RunConfig) -> dict[str, Any]:
        return spec.model_dump(include={"device", "data", "database", "first_stage", "encoder", "retriever"})

    def trained_part(self, spec: RunConfig) -> dict[str, Any]:
        return spec.model_dump(exclude={"sample", "metrics", "label"})

    def warm(self, pipe: Pipeline, spec: RunConfig) -> None:
        plan.warm(pipe, spec)

    def result_columns(self, spec: RunConfig, registry: Any) -> list[Column]:
        metric_columns = [c for m in spec.metrics.use for c in registry.contract(Metric, m).columns]
        return [*metric_columns, *self.columns, *registry.contract(Encoder, spec.encoder["name"]).fit_columns]

    def describe(self, spec: RunConfig) -> str:
        s = spec.sample
        mode = ", ".join(f"{k}={v}" for k, v in s.mode.items() if k != "name")
        return (f"k_train={spec.k_train} seed={spec.seed} dataset={spec.data.dataset['name']} "
                f"database={database_name(spec.database)} "
                f"encoder={spec.encoder['name']} retriever={spec.retriever.name} "
                f"first_stage={spec.first_stage['name']} head={spec.head['name']} "
                f"sample: {s.mode['name']}{f'({mode})' if mode else ''} k={s.k} guidance={s.guidance_scale} "
                f"from={database_name(s.database) if s.database else 'training database'} "
                f"{s.num} samples ({_args({'name': '', **s.head})}); neighbours k={neighbour_k(spec)}")

    # -- a run -----------------------------------------------------------------------------------------
    def run(self, pipe: Pipeline, spec: RunConfig) -> tuple[dict[str, Any], dict[str, Path]]:
        """The plan's parts in order (rdmbench.tasks.generation.plan): up to the samples, their features, the
        metric plugins, the task's measures; then the row."""
        s = spec.sample
        p = plan.up_to_samples(pipe, spec)
        p.update(plan.features(pipe, spec, p))
        m = spec.metrics
        text = gen.text_space(pipe, m.text_space, spec.data.seed, p) if m.text_space else None
        training = any(pipe.registry.contract(Metric, name).needs_training for name in m.use)
        p["metrics"] = gen.metrics(pipe, m, spec.seed, p["generated_features"], p["reference_features"], p["samples"],
                                   p["data"], text, p["train_features"] if training else None)
        measured, keep = plan.measure(pipe, spec, p)
        trained, sampled = read_json(p["train"] / "info.json"), read_json(p["samples"] / "info.json")
        row = {**read_json(p["metrics"] / "metrics.json"), **measured,
               "encoder": read_json(p["db_embeddings"] / "info.json").get("encoder"),
               "train_s": trained.get("seconds"), "head_parameters": trained.get("head_parameters"),
               "train_processes": trained.get("train_processes", 1), "sample_s": sampled.get("sample_s"),
               "queries": sampled.get("queries"), "conditioning": conditioning(sampled, spec.k_train),
               "sampling_database": database_name(s.database) if s.database is not None else "training database"}
        if "encoder_fit" in p:  # a trained encoder's own quality (e.g. a joint space's held-out retrieval)
            fit = read_json(p["encoder_fit"] / "info.json")
            cls = pipe.registry.contract(Encoder, spec.encoder["name"])
            row.update({c: fit.get(c.removeprefix("encoder_")) for c in cls.fit_columns})
        row.update(shared.opt_ins(p))
        images = {"samples.png": p["samples"] / "samples.png", **keep}
        if (p["samples"] / "prompts.png").is_file():
            images["prompts.png"] = p["samples"] / "prompts.png"
        if (p["metrics"] / "replicates.csv").is_file():  # the paired comparisons of rdmbench.verdicts read it
            images["replicates.csv"] = p["metrics"] / "replicates.csv"
        return row, images


def text_encoders(registry: Any) -> list[str]:
    """The installed encoders with a text tower."""
    return [n for n in registry.names("encoder") if registry.contract(Encoder, n).encodes_text]


def conditioning(sampled: dict[str, Any], k_train: int) -> str:
    """What conditioned each sample, in words, from the samples stage's record."""
    k, pool = sampled.get("k", 0), sampled.get("pool")
    if not k or not k_train:
        return "nothing (no retrieval)"
    condition = Condition(sampled.get("condition", "neighbours"))
    if condition is Condition.QUERY:
        return "the query's embedding alone"
    if condition is Condition.QUERY_NEIGHBOURS:
        return f"the query's embedding + its {k - 1} nearest neighbour{'s' if k != 2 else ''}"
    return f"{k} of the query's {pool} nearest neighbours, drawn at random" if pool else f"the query's {k} nearest neighbours"


def dataset_class_names(registry: Any, data: dict[str, Any]) -> tuple[str, ...] | None:
    """The class names of the run's dataset, from the plugin when it knows them without reading, else from
    one row of the training split; () when it has none; None when it cannot tell (the preflight reports
    unreadable data)."""
    try:
        ds = registry.create("dataset", data["dataset"])
        names = ds.class_names
        if names is None:
            names = ds.read(data["train_split"], np.zeros(1, np.int64)).class_names
    except (RdmbenchError, OSError, IndexError, ValueError):
        return None
    return tuple(names or ())


def database_name(spec: dict[str, Any]) -> str:
    """A short name of a database spec for rows (``Database.label``: its dataset's, or its parts')."""
    from rdmbench.api import Database
    from rdmbench.registry import get_registry

    return get_registry().build(Database, spec).label()


def _args(spec: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name") or "defaults"
