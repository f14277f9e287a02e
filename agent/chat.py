"""The chat agent: understands constraints, calls tools over the services, answers.

Tools (LangChain ``StructuredTool``s over the RecommendationService): get_profile, recommend,
explain, lookup_recommendation, record_feedback. Constraints ("no coffee", "closer", "somewhere
new", "a museum") are parsed deterministically and remembered in the conversation; the small local
model only phrases the reply, and the items in a reply are always exactly the items the recommend
tool returned. Text that looks like instructions to the model is treated as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from agent.memory import add_message, open_conversation
from agent.service import RecommendationResult, RecommendationService
from retrieval.types import RequestContext

CATEGORY_WORDS = {
    "coffee": "coffee",
    "cafe": "caf",
    "café": "caf",
    "bar": "bar",
    "bars": "bar",
    "drink": "bar",
    "beer": "bar",
    "pub": "pub",
    "museum": "museum",
    "art": "art",
    "gym": "gym",
    "park": "park",
    "pizza": "pizza",
    "restaurant": "restaurant",
    "food": "restaurant",
    "lunch": "restaurant",
    "dinner": "restaurant",
    "sushi": "sushi",
    "burger": "burger",
    "shop": "store",
    "shopping": "store",
    "train": "train",
    "subway": "subway",
    "office": "office",
    "music": "music",
}
NEGATION = re.compile(
    r"\b(?:no|not|without|except|avoid|don't want|dont want|nothing like)\s+(?:a |an |any |more )?(\w+)"
)
DEFAULT_NEAR_KM = 2.0


@dataclass
class Constraints:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_km: float | None = None
    exclude_visited: bool = False
    exclude_items: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Constraints:
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


@dataclass
class Intent:
    kind: str  # recommend | explain | reject | profile
    constraints: Constraints


def parse(message: str, previous: Constraints) -> Intent:
    """Deterministic understanding of one user message, on top of what was said before."""
    text = message.lower()
    c = Constraints.from_dict(
        {k: list(v) if isinstance(v, list) else v for k, v in previous.to_dict().items()}
    )  # a copy
    if re.search(r"\b(why|explain|how come)\b", text):
        return Intent("explain", c)
    if re.search(r"\b(who am i|my profile|what do you know)\b", text):
        return Intent("profile", c)
    negated = set()
    for m in NEGATION.finditer(text):
        word = m.group(1)
        if word in CATEGORY_WORDS:
            negated.add(word)
            cat = CATEGORY_WORDS[word]
            if cat not in c.exclude:
                c.exclude.append(cat)
            if cat in c.include:
                c.include.remove(cat)
    for word, cat in CATEGORY_WORDS.items():
        if word in negated:
            continue
        if re.search(rf"\b{re.escape(word)}\b", text) and cat not in c.exclude and cat not in c.include:
            c.include = [cat]  # a new wish replaces the previous category wish
    if re.search(r"\b(closer|nearer|near me|nearby|close by|walking distance)\b", text):
        c.max_km = DEFAULT_NEAR_KM if c.max_km is None else max(0.3, c.max_km / 2)
    if re.search(r"\b(new|never been|somewhere different|haven't been)\b", text):
        c.exclude_visited = True
    if re.search(r"\b(not that one|something else|another one|don't like|dont like|no thanks)\b", text):
        return Intent("reject", c)
    return Intent("recommend", c)


class RecommendArgs(BaseModel):
    include_categories: list[str] = Field(default_factory=list)
    exclude_categories: list[str] = Field(default_factory=list)
    max_distance_km: float | None = None
    exclude_visited: bool = False
    exclude_items: list[str] = Field(default_factory=list)
    text: str | None = None


class ChatAgent:
    """One instance per app; per-request state lives in the conversation row."""

    def __init__(self, service: RecommendationService, k: int = 5) -> None:
        self.service = service
        self.k = k

    def tools(
        self, user_id: str, when: datetime, lat: float | None, lon: float | None
    ) -> dict[str, StructuredTool]:
        svc = self.service

        def recommend(**kw: Any) -> RecommendationResult:
            args = RecommendArgs(**kw)
            ctx = RequestContext(
                time=when,
                lat=lat,
                lon=lon,
                text=args.text,
                include_categories=tuple(args.include_categories),
                exclude_categories=tuple(args.exclude_categories),
                max_distance_km=args.max_distance_km,
                exclude_visited=args.exclude_visited,
                exclude_items=tuple(args.exclude_items),
            )
            return svc.recommend(user_id, ctx, self.k, explain=True)

        def get_profile() -> str:
            with svc.factory() as s:
                p = svc.profile(s, user_id)
            return p.text if p and p.text else "I don't know much about you yet."

        def lookup(recommendation_id: str) -> dict[str, Any]:
            with svc.factory() as s:
                rec = svc.trace(s, recommendation_id)
                return {"items": rec.items, "explanation": rec.explanation, "ranker": rec.ranker}

        def feedback(recommendation_id: str, item_id: str, reason: str | None = None) -> str:
            return svc.feedback(recommendation_id, user_id, "rejected", item_id, reason)

        return {
            "recommend": StructuredTool.from_function(
                recommend,
                name="recommend",
                description="Recommend places with constraints.",
                args_schema=RecommendArgs,
            ),
            "get_profile": StructuredTool.from_function(
                get_profile, name="get_profile", description="The user's profile text."
            ),
            "lookup_recommendation": StructuredTool.from_function(
                lookup,
                name="lookup_recommendation",
                description="An earlier recommendation and its explanation.",
            ),
            "record_feedback": StructuredTool.from_function(
                feedback, name="record_feedback", description="Record that the user rejected an item."
            ),
        }

    def respond(
        self,
        user_id: str,
        message: str,
        conversation_id: str | None = None,
        *,
        when: datetime | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> dict[str, Any]:
        when = when or datetime.now(UTC)
        with self.service.factory() as s:
            conv = open_conversation(s, user_id, conversation_id)
            state = dict(conv.state or {})
            add_message(s, conv, "user", message[:4000])
            s.commit()
            conv_id = conv.id
        previous = Constraints.from_dict(state.get("constraints"))
        intent = parse(message, previous)
        tools = self.tools(user_id, when, lat, lon)
        last_rec = state.get("last_recommendation")
        result: RecommendationResult | None = None
        if intent.kind == "profile":
            reply = "Here is what I know: " + tools["get_profile"].invoke({})
        elif intent.kind == "explain" and last_rec:
            info = tools["lookup_recommendation"].invoke({"recommendation_id": last_rec})
            exp = (info.get("explanation") or {}).get("items", {})
            lines = [f"- {iid}: {exp[iid]['text']}" for iid in info["items"] if iid in exp]
            reply = (
                "Why I suggested these:\n" + "\n".join(lines) if lines else "I have no explanation stored."
            )
        else:
            if intent.kind == "reject" and last_rec and state.get("last_items"):
                rejected = state["last_items"][0]
                tools["record_feedback"].invoke(
                    {"recommendation_id": last_rec, "item_id": rejected, "reason": message[:500]}
                )
                if rejected not in intent.constraints.exclude_items:
                    intent.constraints.exclude_items.append(rejected)
            c = intent.constraints
            result = tools["recommend"].invoke(
                {
                    "include_categories": c.include,
                    "exclude_categories": c.exclude,
                    "max_distance_km": c.max_km,
                    "exclude_visited": c.exclude_visited,
                    "exclude_items": c.exclude_items,
                }
            )
            reply = self._phrase(result, c)
            state["last_recommendation"] = result.recommendation_id
            state["last_items"] = [i.item_id for i in result.items]
        state["constraints"] = intent.constraints.to_dict()
        with self.service.factory() as s:
            conv = open_conversation(s, user_id, conv_id)
            conv.state = state
            add_message(
                s,
                conv,
                "assistant",
                reply,
                {"recommendation_id": result.recommendation_id if result else None},
            )
            s.commit()
        return {
            "conversation_id": conv_id,
            "reply": reply,
            "items": [self._item(i, result) for i in result.items] if result else [],
            "recommendation_id": result.recommendation_id if result else None,
            "ranker": result.ranker if result else None,
            "constraints": intent.constraints.to_dict(),
            "notes": result.notes if result else [],
        }

    @staticmethod
    def _item(c: Any, result: RecommendationResult | None) -> dict[str, Any]:
        exp = result.explanation.items.get(c.item_id) if result and result.explanation else None
        return {
            "item_id": c.item_id,
            "name": c.name,
            "category": c.category,
            "score": c.final_score if c.final_score is not None else c.score,
            "sources": c.sources,
            "explanation": exp.text if exp else None,
            "fact_ids": exp.fact_ids if exp else [],
        }

    @staticmethod
    def _phrase(result: RecommendationResult, c: Constraints) -> str:
        """The reply lists exactly the tool's items (never anything else), with their explanations."""
        if not result.items:
            return (
                "I found nothing that fits all of that. Try relaxing a constraint (e.g. a larger distance)."
            )
        bits = []
        if c.include:
            bits.append("matching " + ", ".join(c.include))
        if c.exclude:
            bits.append("avoiding " + ", ".join(c.exclude))
        if c.max_km:
            bits.append(f"within {c.max_km:g} km")
        if c.exclude_visited:
            bits.append("new to you")
        head = "Here are my suggestions" + (f" ({'; '.join(bits)})" if bits else "") + ":"
        lines = []
        for i, item in enumerate(result.items, start=1):
            label = item.name or f"Place {item.item_id}"
            if item.category:
                label += f" ({item.category})"
            exp = result.explanation.items.get(item.item_id) if result.explanation else None
            lines.append(f"{i}. {label}" + (f" — {exp.text}" if exp else ""))
        tail = f"\n[ranker: {result.ranker}]"
        if any("LLM unavailable" in n for n in result.notes):
            tail += " The language model is unavailable right now, so these come from the feature ranker."
        return head + "\n" + "\n".join(lines) + tail
