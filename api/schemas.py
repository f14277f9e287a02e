"""Request and response bodies (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EARLIEST, LATEST = datetime(1970, 1, 2), datetime(2200, 1, 1)


def _sane_time(v: datetime | None) -> datetime | None:
    """Times far outside any behaviour data overflow the nanosecond clocks the ranker uses."""
    if v is not None and not (EARLIEST <= v.replace(tzinfo=None) <= LATEST):
        raise ValueError(f"time must be between {EARLIEST.date()} and {LATEST.date()}")
    return v


SaneTime = Annotated[datetime | None, AfterValidator(_sane_time)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventsIn(Strict):
    events: list[dict[str, Any]] = Field(
        ..., max_length=10_000, description="Generic events format (docs/ingest-format.md)."
    )


class EventsOut(BaseModel):
    inserted: int
    already_present: int
    duplicates: int
    errors: list[dict[str, Any]]


class ContextIn(Strict):
    time: SaneTime = Field(
        None,
        description="When the recommendation is for. Without it the request asks for the next item "
        '("what next?", ranked as of now with the next event\'s own time unknown).',
    )
    lat: float | None = Field(None, ge=-90, le=90, description="Where the person is (catalogs of places).")
    lon: float | None = Field(None, ge=-180, le=180, description="Where the person is (catalogs of places).")
    text: str | None = Field(None, max_length=2000, description="Free text, e.g. 'somewhere quiet'.")
    include_categories: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Only items with a kind containing one of these words.",
    )
    exclude_categories: list[str] = Field(
        default_factory=list, max_length=50, description="No item with a kind containing one of these words."
    )
    max_distance_km: float | None = Field(
        None, gt=0, le=20_000, description="At most this far (catalogs of places; ignored elsewhere)."
    )
    decade: int | None = Field(
        None,
        ge=1800,
        le=2100,
        multiple_of=10,
        description="Only films from this decade, e.g. 1990 (catalogs of films).",
    )
    like: str | None = Field(
        None,
        max_length=120,
        description="A film the wish is like, by title, e.g. 'Heat' (catalogs of films).",
    )
    exclude_visited: bool | None = Field(
        None,
        description="Leave out items the person already had; unset: the catalog's default (places may "
        "be shown again, a film already rated never is).",
    )


class RecommendIn(Strict):
    user_id: str = Field(..., min_length=1, max_length=64)
    context: ContextIn = Field(default_factory=ContextIn)
    k: int = Field(10, ge=1, le=50)
    explain: bool = True
    use_llm: bool = Field(
        True,
        description="Let the LLM write the explanations, and rerank where llm.rerank_when allows (never "
        "by default; with_text: requests with context.text); the notes say when it did not rerank and why.",
    )


class ItemOut(BaseModel):
    item_id: str
    label: str = Field(
        description="How the item is named to this user (a place: its kind and where it is for "
        "them; a film: its title and year)."
    )
    name: str | None
    category: str | None = Field(description="The item's primary kind.")
    kinds: list[str] = Field(default_factory=list, description="Every kind of the item (a film's genres).")
    lat: float | None
    lon: float | None
    year: int | None = Field(None, description="A film's year.")
    score: float
    feature_score: float
    llm_score: float | None
    sources: list[str]
    explanation: str | None
    fact_ids: list[str]
    explained_by: Literal["llm", "template"] | None = Field(
        None, description="Who wrote this explanation: the LLM, or the template from the same facts."
    )
    checked: bool | None = Field(
        None, description="Whether the explanation passed the faithfulness check (always true when served)."
    )


class RecommendOut(BaseModel):
    recommendation_id: str
    user_id: str
    ranker: str
    items: list[ItemOut]
    explanation_source: str | None
    notes: list[str]
    emptied_by: dict[str, Any] | None = Field(
        None, description="When no item is left: the filter that left none, and how many it started from."
    )
    timings: dict[str, float]
    experiment: dict[str, Any] | None = Field(
        None, description="The online experiment and arm that served this request, and what the arm changes."
    )


class FeedbackIn(Strict):
    kind: Literal["clicked", "accepted", "rejected"]
    item_id: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=2000)


class ChatIn(Strict):
    user_id: str = Field(..., min_length=1, max_length=64)
    message: str = Field(..., min_length=1, max_length=4000)
    conversation_id: str | None = Field(None, max_length=32)
    stream: bool = False
    time: SaneTime = None
    lat: float | None = Field(None, ge=-90, le=90, description="Where the person is (catalogs of places).")
    lon: float | None = Field(None, ge=-180, le=180, description="Where the person is (catalogs of places).")


class ChatItemOut(BaseModel):
    item_id: str
    name: str | None
    category: str | None
    kinds: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="What the catalog says of the item (a film's year, a place's lat/lon).",
    )
    label: str = Field(description="How the item is named to the user.")
    details: list[str] = Field(default_factory=list, description="Distance, familiarity, year.")
    score: float
    sources: list[str]
    explanation: str | None
    fact_ids: list[str]


class ChatOut(BaseModel):
    conversation_id: str
    reply: str
    reply_source: Literal["llm", "template"] = Field(description="Who wrote the reply.")
    understood_by: Literal["llm", "rules"] = Field(description="Who understood the message.")
    action: str = Field(description="The tool the turn used: recommend, explain, reject, profile, chat.")
    items: list[ChatItemOut]
    recommendation_id: str | None
    ranker: str | None
    constraints: dict[str, Any] = Field(description="The search as it stands after this turn.")
    notes: list[str]
    timings: dict[str, float]
    usage: dict[str, int] = Field(description="Tokens the LLM read and wrote for this turn.")
