"""How retrieval works for one domain: its features, its candidate sources, its filters.

A domain package (``domains/places``, ``domains/films``) builds a ``RetrievalPlan`` and the
retrieval code takes it as a parameter; nothing here knows what the items are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from retrieval.candidate_pool import DEPTH, SourcePlan, plan_from
from retrieval.catalog import item_text
from retrieval.catalog_stats import CatalogStats
from retrieval.features import FeatureSet
from retrieval.query import Query
from retrieval.sources import CandidateSource
from retrieval.types import RequestContext

# (stats, query, request) -> items the domain's own filter allows (None: it does not apply)
DomainFilter = Callable[[CatalogStats, Query, RequestContext], np.ndarray | None]
# (stats, query, catalog index) -> values shown on a candidate beside its features ("distance_km")
Annotate = Callable[[CatalogStats, Query, int], dict[str, float]]
# (stats, catalog index, the catalog's attributes of the item) -> Candidate.attrs
Attrs = Callable[[CatalogStats, int, Mapping[str, Any]], dict[str, Any]]


def no_attrs(stats: CatalogStats, i: int, row: Mapping[str, Any]) -> dict[str, Any]:
    return dict(row)


@dataclass(frozen=True)
class RetrievalPlan:
    domain: str
    features: FeatureSet
    sources: tuple[CandidateSource, ...]  # every ranked source the domain offers
    default_sources: tuple[str, ...]  # the ones it reads unless settings name others
    shows_consumed: bool = True  # may an item the person already has be shown again by default
    domain_filter: DomainFilter | None = None
    annotate: Annotate | None = None
    attrs: Attrs = no_attrs
    filter_name: str = "domain filter"
    # the request with the domain filter loosened one step and its words ("within 2 km"), or None
    # when there is nothing to loosen: a thin list is filled from a wider range, and says so
    widen: Callable[[RequestContext], tuple[RequestContext, str] | None] | None = None
    item_text: Callable[[Mapping[str, Any]], str] = item_text  # what the FAISS index embeds
    notes: tuple[str, ...] = field(default=())  # said on every response (e.g. "no locations")
    default_depths: Mapping[str, int] = field(default_factory=dict)  # per source, unless settings say
    union_pool: bool = False  # the pool is the sources' union (retrieval.candidate_pool.SourcePlan)

    def source_plan(self, depths: Mapping[str, int] | None, default_depth: int | None = None) -> SourcePlan:
        """The sources named in ``depths`` (settings), else the domain's defaults, each at
        ``default_depth`` when given, else at the domain's own depth for it (else DEPTH)."""
        chosen = (
            dict(depths)
            if depths
            else {s: default_depth or self.default_depths.get(s, DEPTH) for s in self.default_sources}
        )
        return replace(plan_from(self.sources, chosen), union=self.union_pool)
