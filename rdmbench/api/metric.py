"""The metric contract and its inputs: ``MetricInputs`` (features of generated and reference images, roles
named), ``TextInputs`` (text-conditioned samples and their prompts in an image–text space) and ``Metric``."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Hashable, TypeVar

import numpy as np

from rdmbench.api.plugin import Plugin

T = TypeVar("T")
_KEPT = 8  # a few references' values at once (a study's seeds, each metric's): bounded, they hold covariances
_OF_REFERENCE: OrderedDict[tuple[str, Hashable], Any] = OrderedDict()


@dataclass
class MetricInputs:
    """Features of the generated and the reference images (and of the training set X for a metric that
    ``needs_training``), with the roles named.

    ``features(role, output)`` returns the feature extractor's output (``"embedding"`` or ``"logits"``) for
    ``role`` in {"generated", "reference"}, and "training" when a metric of the run needs it, computed once and
    shared by metrics.
    """

    features: Callable[[str, str], np.ndarray]
    feature_extractor: str
    reference_labels: np.ndarray | None
    query_labels: np.ndarray | None
    seed: int = 0
    #: the samples and their prompts in an image–text space (``metrics.text_space``), for text-conditioned runs
    text: TextInputs | None = None
    #: names the reference features and labels (their cache keys); None: unnamed, nothing is shared
    reference_key: str | None = None

    def of_reference(self, what: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, a value of the reference alone (a classifier fit on it, its covariance's square root),
        named by ``what`` with every argument it depends on. Runs of one reference in one process (a suite's
        runs one after another, a test's smoke suite) compute it once: the runs of a suite share their
        reference, and the fit was half of a small run's metrics time."""
        if self.reference_key is None:
            return compute()
        key = (self.reference_key, what)
        if key in _OF_REFERENCE:
            _OF_REFERENCE.move_to_end(key)
            value: T = _OF_REFERENCE[key]
            return value
        value = _OF_REFERENCE[key] = compute()
        while len(_OF_REFERENCE) > _KEPT:
            _OF_REFERENCE.popitem(last=False)
        return value


@dataclass
class TextInputs:
    """Text-conditioned samples, their prompts and the held-out images, embedded in an image–text space
    (``metrics.text_space``, never the retrieval encoder alone), for image–text metrics.

    ``features(role)`` gives L2-normalised embeddings: "generated" (num, d), "reference" (held-out images),
    "prompts" (P, d), one per distinct prompt; ``prompt_of_sample`` (num,) indexes ``prompts``;
    ``prompt_labels`` (P,) the class each prompt names (None: unlabelled). ``space`` names the space, and
    ``space_report`` holds its own held-out quality when it was trained (``Encoder.fit``'s report).
    """

    features: Callable[[str], np.ndarray]
    prompts: tuple[str, ...]
    prompt_of_sample: np.ndarray
    prompt_labels: np.ndarray | None
    space: str
    space_report: dict[str, Any]


class Metric(Plugin):
    """A score of generated images against a held-out reference. ``columns`` are its result keys."""

    kind = "metric"
    columns: ClassVar[tuple[str, ...]] = ()
    #: feature extractor outputs it needs; a metric needing "logits" fails early on an encoder without them.
    needs: ClassVar[tuple[str, ...]] = ("embedding",)
    #: True for metrics of the queries' classes (class agreement): skipped, and said so in the row's
    #: ``skipped_metrics``, when the queries' labels are not the reference set's classes (queries from a
    #: database of other classes swapped in at sampling time)
    needs_query_labels: ClassVar[bool] = False
    #: True for metrics of samples against their prompts (``MetricInputs.text``): skipped, and said so, in a
    #: run whose queries are not prompts; a suite using one must name ``metrics.text_space``
    needs_text: ClassVar[bool] = False
    #: True for metrics of samples against the training set X (memorisation, novelty): the metrics stage then
    #: also reads X's features, as role "training"
    needs_training: ClassVar[bool] = False
    #: columns that get a bootstrap confidence interval (``<col>_lo``, ``<col>_hi``); None: all of them.
    #: Leave out spreads (``kid_std``) and values the generated samples do not change.
    interval_columns: ClassVar[tuple[str, ...] | None] = None

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        raise NotImplementedError

    def resampler(self, inputs: MetricInputs) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        """For the bootstrap (rdmbench.stats): a function of resampled generated-sample indices,
        shape (resamples, n), returning each interval column's value per resample.

        This default recomputes the metric on each resample, which is right for any metric but as
        slow as ``compute`` times the resamples; override it to reuse what the resample does not change.
        """
        from rdmbench.stats import recompute_on_resamples

        return recompute_on_resamples(self, inputs)
