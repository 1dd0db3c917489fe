"""The contracts every plugin kind implements, one module each, re-exported here.

A plugin class sets ``name`` (what suites call it) and a docstring whose first line is its
one-line description. Its ``__init__`` keyword arguments, with type annotations and defaults, are
its configuration: the registry validates a suite's values against them before any work starts,
and the resolved values become part of every cache key the plugin touches.

Arrays cross plugin boundaries as numpy (images uint8 NHWC, embeddings float32), so that
plugins built on other frameworks fit. This package must not import torch.

Where each lives:

- ``plugin``: ``Plugin``, the base of every kind;
- ``images``: ``ImageSet``, ``SplitView``;
- ``dataset``: ``Dataset``; ``database``: ``Database``; ``encoder``: ``Encoder``;
  ``first_stage``: ``FirstStage``;
- ``retriever``: ``Retriever``, what a retriever plugin writes; ``retriever_runtime``: what every
  retriever gets (checked build and search, padding, the manifest and its checksums, streaming
  helpers, ``array_digest``);
- ``head``: ``Head``, ``Space``, ``TrainingData``, ``HeadInputs``, ``TrainSettings``, ``SampleRequest``;
- ``metric``: ``Metric``, ``MetricInputs``, ``TextInputs``;
- ``sampling``: ``SamplingMode``, ``Need``, ``Queries``, ``Condition``, ``SamplingSource``.

One module per contract, so that a cached stage's key (rdmbench.provenance) holds only the contracts
its code and its plugins reach: editing the head's contract re-keys the head's stages and what reads
them, not the data, the embeddings or the index (tests/test_contract_keys.py). A name imported from
here is followed to the module that defines it, so this file adds no contract to a stage's reach. Its
own top-level statements (this docstring, the imports, ``__all__``, ``CONTRACTS``) are keyed in nearly
every stage, since nearly every stage imports through it: editing this file re-keys them all. That is
accepted because it changes only when the export list does; define nothing else here.
"""

from __future__ import annotations

from rdmbench.api.database import Database
from rdmbench.api.dataset import Dataset
from rdmbench.api.encoder import Encoder
from rdmbench.api.first_stage import FirstStage
from rdmbench.api.head import Head, HeadInputs, SampleRequest, Space, TrainingData, TrainSettings
from rdmbench.api.images import ImageSet, SplitView
from rdmbench.api.metric import Metric, MetricInputs, TextInputs
from rdmbench.api.plugin import Plugin
from rdmbench.api.retriever import Retriever
from rdmbench.api.retriever_runtime import RetrieverRuntime, array_digest
from rdmbench.api.sampling import Condition, Need, Queries, SamplingMode, SamplingSource

__all__ = ["CONTRACTS", "Condition", "Database", "Dataset", "Encoder", "FirstStage", "Head", "HeadInputs", "ImageSet", "Metric",
           "MetricInputs", "Need", "Plugin", "Queries", "Retriever", "RetrieverRuntime", "SampleRequest", "SamplingMode",
           "SamplingSource", "Space", "SplitView", "TextInputs", "TrainSettings", "TrainingData", "array_digest"]

CONTRACTS: dict[str, type[Plugin]] = {
    c.kind: c for c in (Dataset, Database, Encoder, Retriever, FirstStage, Head, Metric, SamplingMode)
}
