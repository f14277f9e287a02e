"""Types shared by retrieval, the agent and the API: what a request asks and what comes back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    """When the recommendation is for, the person's constraints, and the domain's own arguments."""

    time: datetime  # tz-aware
    text: str | None = None  # free text from a chat message or request ("somewhere quiet for lunch")
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    # None: the domain's default (places may be shown again; a film already rated never is)
    exclude_visited: bool | None = None
    exclude_items: tuple[str, ...] = ()
    # Exact catalog kind names (the chat's grounded wish and exclusions); the two lists above
    # match by substring, as the API has always done for words a caller types.
    include_kinds: tuple[str, ...] = ()
    exclude_kinds: tuple[str, ...] = ()
    # Kinds related to ``include_kinds`` (the wish's family), best first: when the wished kinds
    # hold fewer than k items the list is filled from these, then from a wider domain filter.
    related_kinds: tuple[str, ...] = ()
    # May a thin list be filled from a wider domain filter (the chat: yes, and it says so; an API
    # caller's filter is a filter: no)?
    widen_if_thin: bool = False
    # False: the caller gave no time and asks "what next?" (ranked as of ``time``, the next
    # event's own time unknown); True: the recommendation is for that moment.
    time_known: bool = True
    # What only the domain reads: places {"lat", "lon", "max_distance_km"}, films {"decade"}.
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = self.time.isoformat()
        return d

    def arg(self, name: str) -> Any:
        return self.args.get(name)


@dataclass
class Candidate:
    item_id: str
    name: str | None = None
    category: str | None = None  # the primary kind
    kinds: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)  # the domain's attributes (location, year, ...)
    sources: list[str] = field(default_factory=list)  # which candidate sources found it
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0  # feature-ranker score
    llm_score: float | None = None
    final_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RankedList:
    candidates: list[Candidate]  # best first
    ranker: str  # e.g. "learned-lgbm@3f2a1c", "heuristic", "features (llm unavailable)"
    pool_size: int = 0  # candidates generated before ranking
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage
    pool_sources: dict[str, int] = field(default_factory=dict)  # pool items found by each source
    places_scored: int = 0  # items whose features were computed to find the pool
    feedback: dict[str, Any] = field(default_factory=dict)  # what the user's reactions shifted, and why
    # which filter left nothing (an empty list says why): {"filter": ..., "allowed_before": n}
    emptied_by: dict[str, Any] | None = None
    # how a thin list was filled, in order: {"step": "related_kinds" | "wider", "added": n,
    # "kinds": [...], "words": "..."}; the items the wish itself found come first
    filled: list[dict[str, Any]] = field(default_factory=list)
    wished: int = 0  # how many of the candidates the request's own filters found (before filling)
    notes: list[str] = field(
        default_factory=list
    )  # what the domain says of the request ("like Heat (1995): ...")
