"""Plugin hook specifications.

A plugin module implements one or more of these hooks with ``@hookimpl`` and is named by one line
in the ``[project.entry-points.rdmbench]`` table of its package. Built-ins load the same way.

Each hook is called once, when the registry first loads, and returns plugin *classes* (never
instances): the constructor's keyword arguments are the plugin's configuration, validated against
its signature before any work starts. Plugin modules must not import torch at module level, so
that ``rdmbench --help`` and ``rdmbench plugins`` stay fast; import it inside methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rdmbench import api

PROJECT = "rdmbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rdmbench_datasets() -> list[type[api.Dataset]]:
    """Return dataset classes: labelled image splits (training set X and held-out reference)."""


@hookspec
def rdmbench_databases() -> list[type[api.Database]]:
    """Return database classes: the image collection D that neighbours are retrieved from."""


@hookspec
def rdmbench_encoders() -> list[type[api.Encoder]]:
    """Return encoder classes: frozen image embedders (retrieval space phi, or metric features)."""


@hookspec
def rdmbench_retrievers() -> list[type[api.Retriever]]:
    """Return retriever classes: build / search / save / load over embeddings."""


@hookspec
def rdmbench_first_stages() -> list[type[api.FirstStage]]:
    """Return first-stage classes: the space a head generates in (autoencoder latents or pixels)."""


@hookspec
def rdmbench_heads() -> list[type[api.Head]]:
    """Return head classes: the trained decoder conditioned on neighbour embeddings."""


@hookspec
def rdmbench_metrics() -> list[type[api.Metric]]:
    """Return metric classes: scores of generated images against a held-out reference."""


@hookspec
def rdmbench_sampling_modes() -> list[type[api.SamplingMode]]:
    """Return sampling-mode classes: how queries and their neighbours are chosen when sampling."""


#: kind -> hook name; the single place that lists the kinds.
KIND_HOOKS = {
    "dataset": "rdmbench_datasets",
    "database": "rdmbench_databases",
    "encoder": "rdmbench_encoders",
    "retriever": "rdmbench_retrievers",
    "first_stage": "rdmbench_first_stages",
    "head": "rdmbench_heads",
    "metric": "rdmbench_metrics",
    "sampling_mode": "rdmbench_sampling_modes",
}
