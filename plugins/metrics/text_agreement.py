"""Image–text agreement of text-conditioned samples, graded in a named image–text space.

The paper grades text-to-image samples with CLIP; here the space is whatever ``metrics.text_space``
names (offline: a ``lit`` space built on another image network than the retrieval encoder's), and
every column says which. Grading only in the space that conditioned the samples would reward a head for
reproducing that space's quirks, so the suite loader refuses a text space equal to the run's encoder;
the held-out classifier's class agreement is the space-independent check beside it.

- ``text_similarity``: mean cosine similarity of each sample with its prompt (CLIP-score without the
  rescaling), next to ``text_similarity_reference``: the same for held-out images of the prompt's class
  (what real images of the class score; labelled prompts only).
- ``text_match``: share of samples whose nearest prompt, among the run's distinct prompts, names their
  prompt's class (or is their prompt, for unlabelled prompts); ``text_match_chance`` is the share
  expected were a sample's nearest prompt independent of its own.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column, Expected
from rdmbench.hookspecs import hookimpl

# measured in metrics.text_space, not the feature extractor's space: the label says so, the text_space column which
SIMILARITY = Column("text_similarity", "image–text similarity (text space)", "higher",
                    description="mean cosine of each sample with its prompt, in the image–text space named in the "
                                "text_space column")
SIMILARITY_REFERENCE = Column("text_similarity_reference", "image–text similarity of real images (text space)",
                              description="the same for held-out images of the prompt's class: what real images score")
MATCH_CHANCE = Column("text_match_chance", "prompt match by chance", description="the match of shuffled prompts: the floor")
MATCH = Column("text_match", "prompt match (text space)", "higher",
               description="share of samples whose nearest prompt (among the run's) names their prompt's class",
               expected=Expected(MATCH_CHANCE, "chance"))
SPACE = Column("text_space", "image–text space", summary=False, description="the space that graded image–text agreement")
SPACE_ACCURACY = Column("text_space_image_to_text", "text space: image→text accuracy", summary=False, numeric=True,
                        description="the grading space's own accuracy on held-out images with unseen templates")


class TextAgreementMetric(Metric):
    """How well text-conditioned samples match their prompts, in a named image–text space (not the conditioning one)."""

    name = "text-agreement"
    columns = (SIMILARITY, SIMILARITY_REFERENCE, MATCH, MATCH_CHANCE, SPACE, SPACE_ACCURACY)
    interval_columns = (SIMILARITY, MATCH, MATCH_CHANCE)
    needs_text = True

    def compute(self, inputs: MetricInputs) -> dict:
        sim, hit, own, nearest = self._per_sample(inputs)
        t = inputs.text
        values = {SIMILARITY: float(sim.mean()), MATCH: float(hit.mean()), MATCH_CHANCE: _chance(own, nearest),
                  SPACE: t.space, SPACE_ACCURACY: t.space_report.get("image_to_text")}
        values[SIMILARITY_REFERENCE] = self._reference(inputs)
        return values

    def resampler(self, inputs: MetricInputs):
        from rdmbench.stats import counts

        sim, hit, own, nearest = self._per_sample(inputs)
        classes = np.union1d(own, nearest)
        one_own = (own[:, None] == classes).astype(np.float64)
        one_near = (nearest[:, None] == classes).astype(np.float64)

        def run(indices: np.ndarray) -> dict[str, np.ndarray]:
            w = counts(indices, len(sim)) / indices.shape[1]
            return {SIMILARITY: w @ sim, MATCH: w @ hit, MATCH_CHANCE: ((w @ one_own) * (w @ one_near)).sum(1)}

        return run

    def _per_sample(self, inputs: MetricInputs) -> tuple[np.ndarray, ...]:
        """Per sample: cosine with its prompt, whether its nearest prompt matches, its prompt's class (or prompt
        index) and its nearest prompt's."""
        t = inputs.text
        gen, prompts = _unit(t.features("generated")), _unit(t.features("prompts"))
        of = np.asarray(t.prompt_of_sample)
        scores = gen @ prompts.T
        sim = scores[np.arange(len(of)), of].astype(np.float64)
        group = np.asarray(t.prompt_labels) if t.prompt_labels is not None else np.arange(len(prompts))
        own, nearest = group[of], group[scores.argmax(1)]
        return sim, (own == nearest).astype(np.float64), own, nearest

    def _reference(self, inputs: MetricInputs) -> float | None:
        t = inputs.text
        if t.prompt_labels is None or inputs.reference_labels is None:
            return None
        ref, prompts = _unit(t.features("reference")), _unit(t.features("prompts"))
        labels = np.asarray(inputs.reference_labels)
        per_prompt = [float((ref[labels == c] @ prompts[i]).mean()) for i, c in enumerate(t.prompt_labels)
                      if np.any(labels == c)]
        if not per_prompt:
            return None
        weights = np.bincount(np.asarray(t.prompt_of_sample), minlength=len(prompts))  # as the samples use them
        used = [weights[i] for i, c in enumerate(t.prompt_labels) if np.any(labels == c)]
        return float(np.average(per_prompt, weights=used)) if sum(used) else float(np.mean(per_prompt))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _chance(own: np.ndarray, nearest: np.ndarray) -> float:
    classes = np.union1d(own, nearest)
    return float(sum(np.mean(own == c) * np.mean(nearest == c) for c in classes))


@hookimpl
def rdmbench_metrics():
    return [TextAgreementMetric]
