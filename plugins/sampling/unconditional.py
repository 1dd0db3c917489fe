"""Unconditional sampling (Blattmann et al. 2022, sec. 3.3): pseudo-queries x̃ drawn from the proposal
p_D(x̃), how often a database entry is among the k nearest neighbours of a training image, truncated
to its top-m fraction; each sample is conditioned on ξ_k(x̃, D). Small m trades diversity (recall)
for quality (precision); m = 0.01 was best for FID/IS in the paper.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rdmbench import proposal
from rdmbench.api import Need, Queries, SamplingMode, SamplingSource
from rdmbench.hookspecs import hookimpl


class Unconditional(SamplingMode):
    """Pseudo-queries from the proposal p_D, truncated to its top-m fraction (the paper's unconditional mode)."""

    name = "unconditional"
    needs = frozenset({Need.PROPOSAL})
    code_modules = ("rdmbench.proposal",)

    def __init__(self, top_m: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0, omit_query: bool = False):
        #: the fraction of database entries, by proposal mass, that pseudo-queries are drawn from
        self.top_m = top_m
        #: drop the pseudo-query itself from its own neighbours (the official code's omit-query option)
        self.omit_query = omit_query

    def check_k(self, k: int, k_train: int) -> str | None:
        if k == 0 and k_train > 0:
            return "unconditional sampling conditions on the pseudo-query's neighbours: k must be >= 1"
        return None

    def extra_neighbours(self) -> int:
        return 1 if self.omit_query else 0

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        emb = source.database_embeddings()
        p = proposal.truncate_top_m(proposal.proposal(source.proposal_ids(), max(k, 1), len(emb)), self.top_m)
        ids = proposal.draw_pseudo_queries(p, num, seed)
        return source.pick("database", ids, ids if self.omit_query else None)


@hookimpl
def rdmbench_sampling_modes():
    return [Unconditional]
