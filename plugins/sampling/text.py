"""Text-to-image and class-conditional sampling of a model trained on images only (Blattmann et al. 2022,
sec. 3.3 and Fig. 8): prompts are embedded by the run's encoder, which must share one space between
images and text (``lit`` offline, ``clip`` with weights), and each sample is conditioned on

- ``text``: the prompt's embedding alone (k = 1; the paper finds it generalises best to unseen prompts);
- ``text+neighbours``: the prompt's embedding and its k - 1 nearest database neighbours;
- ``neighbours``: the prompt's k nearest database neighbours (the image-conditioned path, queried by text).

A prompt with ``{class}`` stands for one prompt per class (``classes``, default all), so the paper's
class-conditional prompt "An image of a {class}." (the default) samples every class in turn. Samples cycle
through the prompts in order.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

import numpy as np

from rdmbench import prompts as prompt_lists
from rdmbench.api import Condition, Need, Queries, SamplingMode, SamplingSource
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl

CONDITIONS = {"text": Condition.QUERY, "text+neighbours": Condition.QUERY_NEIGHBOURS,
              "neighbours": Condition.NEIGHBOURS}

#: a prompt with its class named, for a paraphrase that names none: {text: a running shoe, class: Sneaker}
PromptWithClass = TypedDict("PromptWithClass", {"text": str, "class": str})


class Text(SamplingMode):
    """Prompts embedded by the run's encoder: the text alone, text + k-1 neighbours, or the text's k neighbours."""

    name = "text"
    needs = frozenset({Need.TEXT})
    code_modules = ("rdmbench.prompts",)

    def __init__(self, prompts: list[str | PromptWithClass] | None = None, prompts_file: str | None = None,
                 condition: Literal["text", "text+neighbours", "neighbours"] = "text",
                 classes: list[str] | None = None):
        if prompts is not None and prompts_file is not None:
            raise ConfigError("give prompts or prompts_file, not both", key="prompts")
        #: prompts in order; ``{class}`` expands to one per class. None: the paper's "An image of a {class}."
        if prompts_file is not None:
            self.prompts = prompt_lists.read_file(prompts_file)
        else:
            self.prompts = list(prompts) if prompts is not None else ["An image of a {class}."]
        if not self.prompts:
            where = f"the file {prompts_file!r} holds no prompt" if prompts_file else "the prompt list is empty"
            raise ConfigError(f"{where}; list at least one prompt", key="prompts_file" if prompts_file else "prompts")
        self.prompts = [dict(p) if isinstance(p, dict) else p for p in self.prompts]
        if any(not (p["text"] if isinstance(p, dict) else p).strip() for p in self.prompts):
            raise ConfigError("a prompt is blank", key="prompts")
        self.prompts_file, self.condition, self.classes = prompts_file, condition, classes
        if classes is not None and not classes:
            raise ConfigError("list at least one class, or leave classes out for all", key="classes")

    def fingerprint(self) -> dict:
        return {"prompts": self.prompts}  # a file's lines, not its path, decide the samples

    def default_k(self, k_train: int) -> int:
        return 1 if self.condition == "text" else k_train

    def check_k(self, k: int, k_train: int) -> str | None:
        if k_train == 0:
            return "text prompts steer a head through its neighbour conditioning: k_train must be >= 1"
        if self.condition == "text" and k != 1:
            return f"condition 'text' conditions on the prompt's embedding alone (k = 1): drop sample.k (got {k})"
        if k < 1:
            return f"condition {self.condition!r} conditions on k >= 1 embeddings: sample.k must be >= 1"
        return None

    def check_classes(self, class_names: tuple[str, ...] | None) -> str | None:
        return prompt_lists.problem(self.prompts, class_names, self.classes)

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        names = source.class_names()
        texts, labels = prompt_lists.expand(self.prompts, names, self.classes)
        embedded = source.embed_text(texts)
        ids = np.arange(num) % len(texts)
        return Queries(ids=ids, embeddings=np.asarray(embedded[ids], np.float32), images=None,
                       labels=None if labels is None else labels[ids], class_names=names, source="prompts",
                       condition=CONDITIONS[self.condition], texts=tuple(texts[i] for i in ids))


@hookimpl
def rdmbench_sampling_modes():
    return [Text]
