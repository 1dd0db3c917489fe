"""A memorisation audit of a generation run, as an outside package adds a task: one module, one entry-point line

    [project.entry-points."rdmbench.tasks"]
    audit = "rdmbench_audit:AuditTask"

The run is the generation run its spec describes, up to its samples and their features (reused from
``rdmbench.tasks.generation.plan``: the same cached stages, so auditing a finished run costs one stage). The
audit asks how close each sample sits to its nearest training image compared with how close held-out images
sit (Carlini et al. 2023: a copy is judged against what unseen images look like), and keeps the closest
pairs side by side. Nothing here is private to rdmbench: the generation task's schema, validation and plan
are its public parts, stages go through ``Pipeline.stage``, arrays through ``rdmbench.cache``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from rdmbench.cache import load_array, read_json, save_array, write_json
from rdmbench.columns import Column
from rdmbench.imaging import save_panel
from rdmbench.pipeline import Pipeline
from rdmbench.schema import Section
from rdmbench.tasks.generation import GenerationTask, plan
from rdmbench.tasks.generation.schema import RunConfig


class AuditSection(Section):
    #: a sample is a copy when its nearest training image is nearer than this share of held-out images' are
    quantile: float = Field(default=0.01, gt=0.0, lt=0.5)
    #: the closest sample–training pairs kept side by side
    shown: int = Field(default=8, ge=1)


class AuditRunConfig(RunConfig):
    """A generation run's spec plus what the audit asks (task ``audit``)."""

    task: Literal["audit"] = "audit"  # type: ignore[assignment]
    audit: AuditSection = Field(default_factory=AuditSection)


class AuditTask(GenerationTask):
    """Memorisation audit: samples' nearest training images against held-out images' (Carlini et al. 2023)."""

    name = "audit"
    schema = AuditRunConfig
    columns = (
        Column("copies", "samples nearer X than held-out images are", "lower",
               description="share of samples whose nearest training image is nearer than the audit's quantile of "
                           "held-out images' nearest; samples as novel as held-out images: about that quantile"),
        Column("copy_quantile", "held-out quantile", summary=False),
        Column("median_ratio", "median nearest-training distance, samples / held-out", "higher"),
    )

    def result_columns(self, spec: Any, registry: Any) -> list[Column]:
        return list(self.columns)

    def run(self, pipe: Pipeline, spec: Any) -> tuple[dict[str, Any], dict[str, Path]]:
        p = plan.up_to_samples(pipe, spec)
        p.update(plan.features(pipe, spec, p))
        path = audit(pipe, spec.audit, p)
        return read_json(path / "audit.json"), {"copies.png": path / "copies.png"}

    def report(self, data: Any) -> list[Any]:
        return []  # the row is the audit; results.csv and copies.png beside each run hold it


def audit(pipe: Pipeline, a: AuditSection, p: dict[str, Path]) -> Path:
    """The audit's one stage, keyed on its settings and the feature stages it reads."""
    names = ("generated_features", "train_features", "reference_features", "samples", "data")

    def compute(out: Path) -> dict[str, Any]:
        train = load_array(p["train_features"] / "embedding.npy").astype(np.float64)
        gen_d, gen_i = nearest(load_array(p["generated_features"] / "embedding.npy"), train)
        ref_d, _ = nearest(load_array(p["reference_features"] / "embedding.npy"), train)
        threshold = float(np.quantile(ref_d, a.quantile))
        write_json(out / "audit.json", {"copies": float((gen_d < threshold).mean()), "copy_quantile": a.quantile,
                                        "median_ratio": float(np.median(gen_d) / max(np.median(ref_d), 1e-12))})
        closest = np.argsort(gen_d, kind="stable")[:a.shown]
        save_array(out / "closest.npy", np.stack([closest, gen_i[closest]], axis=1).astype(np.int64))
        samples = load_array(p["samples"] / "samples_images.npy", mmap=True)
        save_panel(out / "copies.png", np.asarray(samples[closest]), None, None,
                   load_array(p["data"] / "train_images.npy", mmap=True), gen_i[closest], rows=a.shown)
        return {"threshold": threshold}

    return pipe.stage("audit", {"quantile": a.quantile, "shown": a.shown}, {n: p[n].name for n in names}, compute)


def nearest(x: np.ndarray, train: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance to, and index of, each row's nearest training row (exact, float64)."""
    norms = (train ** 2).sum(1)
    dist, idx = np.empty(len(x)), np.empty(len(x), np.int64)
    for s in range(0, len(x), batch):
        xb = np.asarray(x[s:s + batch], np.float64)
        d2 = (xb ** 2).sum(1)[:, None] + norms[None] - 2 * xb @ train.T
        idx[s:s + batch] = d2.argmin(1)
        dist[s:s + batch] = np.sqrt(np.maximum(d2.min(1), 0))
    return dist, idx
