"""The chat's tools, as LangChain StructuredTools over the recommendation service.

The LLM (or, when it is down, the rules) picks the tool and its arguments (agent/chat/intent.py);
the agent grounds the arguments in the catalog and invokes the tool here. Tools get their
dependencies explicitly (``ChatDeps``), one per turn; nothing lives in module globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from agent.service import RecommendationResult, RecommendationService
from core.errors import NotFoundError
from retrieval.types import RequestContext


@dataclass
class ChatDeps:
    service: RecommendationService
    user_id: str
    conversation_id: str
    k: int
    rerank: bool  # let the LLM rerank this turn's places too
    trace: dict[str, Any]  # the turn's understanding and grounding, stored with the recommendation


class RecommendArgs(BaseModel):
    """The grounded arguments the recommend tool acts on (what the trace shows)."""

    time: datetime
    lat: float | None = None
    lon: float | None = None
    wish: str | None = Field(None, max_length=200)
    include_kinds: list[str] = Field(default_factory=list)
    exclude_kinds: list[str] = Field(default_factory=list)
    max_distance_km: float | None = None
    new_only: bool = False
    exclude_items: list[str] = Field(default_factory=list)

    @classmethod
    def from_context(cls, ctx: RequestContext) -> RecommendArgs:
        return cls(
            time=ctx.time,
            lat=ctx.lat,
            lon=ctx.lon,
            wish=ctx.text,
            include_kinds=list(ctx.include_kinds),
            exclude_kinds=list(ctx.exclude_kinds),
            max_distance_km=ctx.max_distance_km,
            new_only=ctx.exclude_visited,
            exclude_items=list(ctx.exclude_items),
        )

    def context(self) -> RequestContext:
        return RequestContext(
            time=self.time,
            lat=self.lat,
            lon=self.lon,
            text=self.wish,
            include_kinds=tuple(self.include_kinds),
            exclude_kinds=tuple(self.exclude_kinds),
            max_distance_km=self.max_distance_km,
            exclude_visited=self.new_only,
            exclude_items=tuple(self.exclude_items),
        )


class ExplainArgs(BaseModel):
    recommendation_id: str
    item_ids: list[str] = Field(..., min_length=1)


class RejectArgs(BaseModel):
    recommendation_id: str
    item_id: str
    reason: str | None = Field(None, max_length=500)


def build_tools(deps: ChatDeps) -> dict[str, StructuredTool]:
    svc = deps.service

    def recommend(**kw: Any) -> RecommendationResult:
        args = RecommendArgs(**kw)
        return svc.recommend(
            deps.user_id,
            args.context(),
            deps.k,
            explain=True,
            use_llm=deps.rerank,
            explain_with_llm=False,  # the reply is the LLM's explanation; items keep template reasons
            conversation_id=deps.conversation_id,
            trace_extra={"chat": deps.trace},
        )

    def explain_items(recommendation_id: str, item_ids: list[str]) -> dict[str, Any]:
        with svc.factory() as s:
            rec = svc.trace(s, recommendation_id)
            if rec.user_id != deps.user_id:
                raise NotFoundError(f"no recommendation {recommendation_id!r}")
            exp = (rec.explanation or {}).get("items", {})
            facts = {f["id"]: f["statement"] for f in rec.facts or []}
            out = {}
            for iid in item_ids:
                e = exp.get(iid) or {}
                out[iid] = {
                    "text": e.get("text", ""),
                    "facts": [facts[f] for f in e.get("fact_ids", []) if f in facts],
                    "fact_ids": e.get("fact_ids", []),
                }
            return {"items": out, "ranker": rec.ranker}

    def show_profile() -> str:
        with svc.factory() as s:
            p = svc.profile(s, deps.user_id)
        return svc.readable_text(p)

    def reject_item(recommendation_id: str, item_id: str, reason: str | None = None) -> str:
        return svc.feedback(recommendation_id, deps.user_id, "rejected", item_id, reason)

    return {
        "recommend": StructuredTool.from_function(
            recommend,
            name="recommend",
            description="Places for the user now, within the grounded kinds, exclusions and distance.",
            args_schema=RecommendArgs,
        ),
        "explain": StructuredTool.from_function(
            explain_items,
            name="explain",
            description="Why earlier shown places were suggested: their stored reasons and facts.",
            args_schema=ExplainArgs,
        ),
        "profile": StructuredTool.from_function(
            show_profile, name="profile", description="What was learned from the user's history."
        ),
        "reject": StructuredTool.from_function(
            reject_item,
            name="reject",
            description="Record that the user turned down a shown place (stored as feedback).",
            args_schema=RejectArgs,
        ),
    }
