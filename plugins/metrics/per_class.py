"""Class-conditional quality: FD, precision and recall of each prompted class's samples against that
class's held-out images, averaged over classes.

A class-conditional model whose samples of "sneaker" look like good sandals scores well on FD and
precision against the whole reference set; against the class's own reference images it does not. The
samples of class c (those whose query was labelled c) are compared with the reference images labelled c,
in the suite's feature space: FD computed exactly through the singular values of the small cross matrix
(``fid.frechet_distance_few``: a class holds fewer samples than features have dimensions), precision and
recall by the ``precision-recall`` metric as it is; the per-class values are averaged with equal weight. With n samples per class, FD is biased upward
by roughly d/n, so compare it only across runs with the same number of samples per class. Without
intervals: resampling would refit 2 x classes metrics per resample.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

CLASS_FID = Column("class_fid", "per-class FD", "lower", space_dependent=True,
                   description="FD of each prompted class's samples against that class's held-out images, class mean")
CLASS_PRECISION = Column("class_precision", "per-class precision", "higher",
                         description="precision against the prompted class's held-out images, class mean")
CLASS_RECALL = Column("class_recall", "per-class recall", "higher",
                      description="recall of the prompted class's held-out images, class mean")
CLASS_SAMPLES = Column("class_samples", "samples per class (least)", summary=False, numeric=True)


class PerClassMetric(Metric):
    """FD, precision and recall of each class's samples against that class's held-out images, averaged over classes."""

    name = "per-class"
    columns = (CLASS_FID, CLASS_PRECISION, CLASS_RECALL, CLASS_SAMPLES)
    interval_columns = ()
    needs_query_labels = True
    code_modules = ("rdmbench_plugins.metrics.fid", "rdmbench_plugins.metrics.precision_recall")

    def __init__(self, neighborhood: int = 3, min_samples: int = 5):
        if min_samples < 2:
            raise ValueError("min_samples must be >= 2")
        self.neighborhood, self.min_samples = neighborhood, min_samples

    def compute(self, inputs: MetricInputs) -> dict:
        from rdmbench.registry import get_registry

        if inputs.query_labels is None or inputs.reference_labels is None:
            raise RdmbenchError("per-class needs labelled queries and a labelled reference set; drop this metric")
        from rdmbench_plugins.metrics.fid import frechet_distance_few

        pr = get_registry().create("metric", {"name": "precision-recall", "neighborhood": self.neighborhood})
        queries, reference = np.asarray(inputs.query_labels), np.asarray(inputs.reference_labels)
        rows, least = [], None
        enough = max(self.min_samples, self.neighborhood + 1)  # precision-recall needs more than k per set
        for c in np.unique(queries):
            g, r = np.flatnonzero(queries == c), np.flatnonzero(reference == c)
            if len(g) < enough or len(r) < enough:
                continue
            least = len(g) if least is None else min(least, len(g))
            sub = MetricInputs(_subset(inputs, g, r), inputs.feature_extractor, reference[r], queries[g], inputs.seed)
            fd = frechet_distance_few(sub.features("generated", "embedding"), sub.features("reference", "embedding"))
            rows.append({"fid": fd, **pr.compute(sub)})
        if not rows:
            raise RdmbenchError(f"per-class: no class has {enough} samples and {enough} reference images; draw more "
                                "samples (sample.num) or lower neighborhood")
        return {CLASS_FID: float(np.mean([r["fid"] for r in rows])),
                CLASS_PRECISION: float(np.mean([r["precision"] for r in rows])),
                CLASS_RECALL: float(np.mean([r["recall"] for r in rows])), CLASS_SAMPLES: least}


def _subset(inputs: MetricInputs, generated: np.ndarray, reference: np.ndarray):
    rows = {"generated": generated, "reference": reference}

    def features(role: str, output: str) -> np.ndarray:
        return np.asarray(inputs.features(role, output))[rows[role]]

    return features


@hookimpl
def rdmbench_metrics():
    return [PerClassMetric]
