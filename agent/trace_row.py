"""The stored trace of one served recommendation (core.models.Recommendation), built from what the
pipeline did: support staff's answer to "why was this recommended?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.context import RequestUser
from agent.explanations import ExplanationSet
from agent.llm.rerank import RerankOutcome
from core.models import Recommendation
from retrieval.feedback import Reaction
from retrieval.types import Candidate, RankedList, RequestContext


@dataclass
class Served:
    """What one request served and how (the pipeline fills it stage by stage)."""

    user: RequestUser
    ctx: RequestContext
    k: int
    ranked: RankedList
    candidates: list[Candidate]
    ranker: str
    items: list[Candidate] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    outcome: RerankOutcome | None = None
    explanation: ExplanationSet | None = None
    request: dict[str, Any] = field(default_factory=dict)  # what the request asked, as stored
    notes: list[str] = field(default_factory=list)  # for the person: short and plain
    details: list[str] = field(default_factory=list)  # for support: errors, intervals, commands
    hidden: dict[str, Reaction] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _facts(s: Served) -> list[dict[str, Any]]:
    """The profile facts the explanations cited, and the items' own attributes as told."""
    used = {f for e in (s.explanation.items.values() if s.explanation else []) for f in e.fact_ids}
    profile = s.user.profile
    facts: list[dict[str, Any]] = [
        {"id": f.id, "statement": f.statement, "confidence": f.confidence}
        for f in (profile.facts if profile else [])
        if f.id in used
    ]
    for item_id, e in s.explanation.items.items() if s.explanation else []:
        for ev in (e.evidence or {}).get("evidence", []):
            if ev["id"].startswith("item.") and ev["id"] in e.fact_ids:
                facts.append({"id": ev["id"], "statement": ev["text"], "item_id": item_id})
    return facts


def _candidates(s: Served) -> list[dict[str, Any]]:
    return [
        {
            "item_id": c.item_id,
            "label": s.labels.get(c.item_id),
            "sources": c.sources,
            "feature_score": c.score,
            "llm_score": c.llm_score,
            "final_score": c.final_score,
            # zero-valued features left out: most are zero for most items (a third of a trace)
            "features": {name: v for name, v in c.features.items() if v},
        }
        for c in s.candidates
    ]


def feedback_trace(s: Served, shifted: dict[str, str]) -> dict[str, Any]:
    """What support staff read: which items earlier feedback hid or moved, and why."""
    signals, fb = s.user.reactions, s.ranked.feedback
    if signals is None or not signals.reactions:
        return {}
    return {
        **signals.summary(),
        "hidden": {
            i: f"item {i} hidden: rejected on {r.at.date().isoformat()}"
            + (f" (recommendation {r.recommendation_id})" if r.recommendation_id else "")
            for i, r in sorted(s.hidden.items())
        },
        "shifted": shifted,  # shown items the feedback moved
        "displaced": fb.get("displaced", {}),  # pushed out of the ranked list (would have been shown)
        "shifted_in_pool": fb.get("shifted_in_pool", 0),
    }


def trace_row(s: Served, rec_id: str, conversation_id: str | None, shifted: dict[str, str]) -> Recommendation:
    o, e, arm = s.outcome, s.explanation, s.user.arm
    request = dict(s.request)
    fb = feedback_trace(s, shifted)
    if fb:
        request["feedback"] = fb
    if arm is not None:
        request["experiment"] = arm.to_dict()
    if s.ranked.emptied_by:
        request["emptied_by"] = s.ranked.emptied_by
    if s.ranked.filled:  # how a thin list was filled (the items say "fill:<step>" in their sources)
        request["filled"] = {"wished": s.ranked.wished, "steps": s.ranked.filled}
    prompts = [
        p for p in (o.prompt_version if o and not o.error else None, e.prompt_version if e else None) if p
    ]
    return Recommendation(
        id=rec_id,
        user_id=s.user.user_id,
        request=request,
        profile_version=s.user.profile_version,
        facts=_facts(s),
        candidates=_candidates(s),
        items=[c.item_id for c in s.items],
        ranker=s.ranker,
        prompt_version=", ".join(prompts) or None,
        model=(o.model if o else None) or (e.model if e else None),
        explanation=e.to_dict() if e else None,
        timings={
            **s.timings,
            "notes": s.notes,
            "details": s.details,
            "pool_size": s.ranked.pool_size,
            "pool_sources": s.ranked.pool_sources,
            "places_scored": s.ranked.places_scored,
        },
        conversation_id=conversation_id,
        experiment=arm.experiment if arm else None,
        arm=arm.arm if arm else None,
    )
