"""Class-conditional sampling by a pool (Blattmann et al. 2022, sec. 3.3): per class, the l nearest
database neighbours of its prompt ("An image of a {class}.", embedded by the run's encoder, which must
embed text) form a pool ξ_l(c), l >= k, and each sample is conditioned on k of them drawn at random, so
samples of one class vary more than the prompt's k nearest alone would let them. Samples cycle through
the classes (``classes``, default all) in order.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from rdmbench import prompts as prompt_lists
from rdmbench.api import Need, Queries, SamplingMode, SamplingSource
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


class ClassPool(SamplingMode):
    """Per class, a pool of the l nearest neighbours of its prompt; each sample draws k of them at random."""

    name = "class-pool"
    needs = frozenset({Need.TEXT})
    code_modules = ("rdmbench.prompts",)

    def __init__(self, pool: Annotated[int, Field(ge=1)] = 32, template: str = "An image of a {class}.",
                 classes: list[str] | None = None):
        if prompt_lists.PLACEHOLDER not in template:
            raise ConfigError(f"the template must hold {prompt_lists.PLACEHOLDER}, got {template!r}", key="template")
        if classes is not None and not classes:
            raise ConfigError("list at least one class, or leave classes out for all", key="classes")
        #: l, the size of each class's pool of neighbours
        self.pool, self.template, self.classes = pool, template, classes

    def check_k(self, k: int, k_train: int) -> str | None:
        if k_train == 0:
            return "a class pool steers a head through its neighbour conditioning: k_train must be >= 1"
        if k < 1:
            return "each sample is conditioned on k neighbours of its class's pool: sample.k must be >= 1"
        if self.pool < k:
            return f"the pool (l = {self.pool}) is smaller than sample.k = {k}: each sample draws k of l; set pool >= {k}"
        return None

    def check_classes(self, class_names: tuple[str, ...] | None) -> str | None:
        return prompt_lists.problem([self.template], class_names, self.classes)

    def searched(self, k: int) -> int:
        return max(self.pool, k)

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        names = source.class_names()
        texts, labels = prompt_lists.expand([self.template], names, self.classes)
        embedded = source.embed_text(texts)
        ids = np.arange(num) % len(texts)
        return Queries(ids=ids, embeddings=np.asarray(embedded[ids], np.float32), images=None, labels=labels[ids],
                       class_names=names, source=f"class pools (l = {self.pool})", pool=self.pool,
                       texts=tuple(texts[i] for i in ids))


@hookimpl
def rdmbench_sampling_modes():
    return [ClassPool]
