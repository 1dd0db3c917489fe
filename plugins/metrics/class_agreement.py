"""Class agreement: does a sample show the class of the query whose neighbours conditioned it?

Blattmann et al. 2022 (arXiv 2204.11824) condition each sample on the k nearest database
neighbours of a query; if retrieval steers content, a sample should share the query's class. A
classifier (standardised features + multinomial logistic regression, scikit-learn) is fit on 80%
of the held-out reference set's embeddings and labels, its accuracy on the other 20% is reported
(``classifier_acc``, the ceiling on agreement), and it labels the generated samples.

``class_agreement_chance`` is the agreement expected were a sample's class independent of its
query's: sum over classes c of p(query class c) * p(predicted class c), both over the samples.

Bootstrap resamples (rdmbench.stats) reuse the classifier and its predictions (they depend on the
reference only) and reweight the samples; ``classifier_acc`` gets no interval, as the generated
samples do not change it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column, Expected
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

CLASS_AGREEMENT_CHANCE = Column("class_agreement_chance", "class agreement by chance", description="agreement of shuffled queries: the floor")
CLASS_AGREEMENT = Column("class_agreement", "class agreement", "higher", description="share of samples the classifier puts in their query's class",
                         expected=Expected(CLASS_AGREEMENT_CHANCE, "chance"))
CLASSIFIER_ACC = Column("classifier_acc", "classifier accuracy", description="the classifier's accuracy on the reference set: the ceiling")


class ClassAgreementMetric(Metric):
    """How often a sample's predicted class equals its query's class (classifier fit on the reference)."""

    name = "class-agreement"
    columns = (CLASS_AGREEMENT, CLASS_AGREEMENT_CHANCE, CLASSIFIER_ACC)
    interval_columns = (CLASS_AGREEMENT, CLASS_AGREEMENT_CHANCE)
    needs_query_labels = True

    def __init__(self, test_fraction: float = 0.2, max_iter: int = 2000):
        if not 0.0 < test_fraction < 1.0:
            raise ValueError("test_fraction must be in (0, 1)")
        if max_iter <= 0:
            raise ValueError("max_iter must be positive")
        self.test_fraction, self.max_iter = test_fraction, max_iter
        self._fitted: tuple[MetricInputs, tuple] | None = None  # compute and resampler share one fit

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        predicted, query_labels, accuracy = self._predict(inputs)
        classes = np.union1d(query_labels, predicted)
        p_query = np.array([np.mean(query_labels == c) for c in classes])
        p_pred = np.array([np.mean(predicted == c) for c in classes])
        return {
            CLASS_AGREEMENT: float(np.mean(predicted == query_labels)),
            CLASS_AGREEMENT_CHANCE: float(p_query @ p_pred),
            CLASSIFIER_ACC: accuracy,
        }

    def resampler(self, inputs: MetricInputs):
        from rdmbench.stats import counts

        predicted, query_labels, _ = self._predict(inputs)
        classes = np.union1d(query_labels, predicted)
        agree = (predicted == query_labels).astype(np.float64)
        onehot_query = (query_labels[:, None] == classes).astype(np.float64)
        onehot_pred = (predicted[:, None] == classes).astype(np.float64)

        def run(indices: np.ndarray) -> dict[str, np.ndarray]:
            w = counts(indices, len(agree)) / indices.shape[1]
            return {CLASS_AGREEMENT: w @ agree, CLASS_AGREEMENT_CHANCE: ((w @ onehot_query) * (w @ onehot_pred)).sum(1)}

        return run

    def _predict(self, inputs: MetricInputs) -> tuple[np.ndarray, np.ndarray, float]:
        """The classifier's labels for the generated samples, their queries' labels, its held-out accuracy."""
        if self._fitted is None or self._fitted[0] is not inputs:
            self._fitted = (inputs, self._fit_predict(inputs))
        return self._fitted[1]

    def _fit_predict(self, inputs: MetricInputs) -> tuple[np.ndarray, np.ndarray, float]:
        if inputs.query_labels is None or inputs.reference_labels is None:
            missing = "query labels" if inputs.query_labels is None else "reference labels"
            raise RdmbenchError(f"class-agreement needs labelled queries and a labelled reference set, but the "
                                f"{missing} are missing; use a labelled dataset or drop this metric")
        generated = np.asarray(inputs.features("generated", "embedding"), dtype=np.float64)
        query_labels = np.asarray(inputs.query_labels)
        if len(query_labels) != len(generated):
            raise RdmbenchError(f"class-agreement: {len(query_labels)} query labels for {len(generated)} samples")
        classifier, accuracy = inputs.of_reference(("class-agreement", inputs.seed, self.test_fraction, self.max_iter),
                                                   lambda: self._fit(inputs))
        return classifier.predict(generated), query_labels, accuracy

    def _fit(self, inputs: MetricInputs) -> tuple[Any, float]:
        """The classifier fit on the reference split of this seed, and its held-out accuracy."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        reference = np.asarray(inputs.features("reference", "embedding"), dtype=np.float64)
        ref_labels = np.asarray(inputs.reference_labels)
        if len(ref_labels) != len(reference):
            raise RdmbenchError(f"class-agreement: {len(ref_labels)} reference labels for {len(reference)} features")
        if len(np.unique(ref_labels)) < 2:
            raise RdmbenchError("class-agreement needs at least 2 classes in the reference set")

        _, counts = np.unique(ref_labels, return_counts=True)
        stratify = ref_labels if counts.min() >= 2 else None  # a singleton class cannot be split both ways
        x_fit, x_test, y_fit, y_test = train_test_split(reference, ref_labels, test_size=self.test_fraction,
                                                        random_state=inputs.seed, stratify=stratify)
        if len(np.unique(y_fit)) < 2:
            raise RdmbenchError("class-agreement: the reference training split holds a single class")
        classifier = make_pipeline(StandardScaler(),
                                   LogisticRegression(max_iter=self.max_iter, random_state=inputs.seed))
        classifier.fit(x_fit, y_fit)
        return classifier, float(classifier.score(x_test, y_test))


@hookimpl
def rdmbench_metrics():
    return [ClassAgreementMetric]
