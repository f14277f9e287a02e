"""Recommendations, their stored traces ("why?") and feedback on them."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from agent.explanations import reason_text
from agent.pipeline import RecommendOptions
from api.deps import CurrentKey, SessionDep, State
from api.schemas import FeedbackIn, RecommendIn, RecommendOut
from core.errors import InvalidInputError
from retrieval.types import RequestContext

router = APIRouter(tags=["recommendations"])
DOMAIN_FIELDS = ("lat", "lon", "max_distance_km", "decade", "like")


def _context(c: Any, state: Any) -> RequestContext:
    when = c.time or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if (c.lat is None) != (c.lon is None):
        raise InvalidInputError("give both lat and lon, or neither")
    # the domain's own arguments (places: where the person is, how far they would go; films: decade)
    domain = state.services.domain
    given = {k: getattr(c, k) for k in DOMAIN_FIELDS if getattr(c, k) is not None}
    args = domain.request_args(**given)
    if unread := [k for k in given if k not in args]:  # a filter that would do nothing is an error
        raise InvalidInputError(
            f"{', '.join(unread)}: not an argument of this catalog of {domain.nouns.items}"
        )
    return RequestContext(
        time=when,
        time_known=c.time is not None,  # no time: "what next?", ranked as of now
        text=c.text,
        include_categories=tuple(c.include_categories),
        exclude_categories=tuple(c.exclude_categories),
        exclude_visited=c.exclude_visited,
        args=args,
    )


def _items_out(result: Any) -> list[dict[str, Any]]:
    out = []
    for c in result.items:
        exp = result.explanation.items.get(c.item_id) if result.explanation else None
        out.append(
            {
                "item_id": c.item_id,
                "label": r_label(result, c),
                "name": c.name,
                "category": c.category,
                "kinds": list(c.kinds),
                "lat": c.attrs.get("lat"),
                "lon": c.attrs.get("lon"),
                "year": c.attrs.get("year"),
                "score": c.final_score if c.final_score is not None else c.score,
                "feature_score": c.score,
                "llm_score": c.llm_score,
                "sources": c.sources,
                # the sentence a person reads; the facts it cites are in fact_ids (and the trace)
                "explanation": reason_text(exp) if exp else None,
                "fact_ids": exp.fact_ids if exp else [],
                "explained_by": exp.source if exp else None,
                "checked": exp.verdict.get("ok") if exp and exp.verdict else None,
            }
        )
    return out


def _labels(rec: Any) -> list[str]:
    """The shown places as the person was shown them (stored with the candidates)."""
    by_id = {c.get("item_id"): c.get("label") for c in rec.candidates or []}
    return [by_id.get(i) or "a place (no label stored)" for i in rec.items]


def r_label(result: Any, c: Any) -> str:
    return result.labels.get(c.item_id) or c.name or c.category or "an item"


@router.post("/v1/recommendations", response_model=RecommendOut)
async def recommend(body: RecommendIn, key: CurrentKey, state: State) -> dict[str, Any]:
    key.require_act_as(body.user_id)
    # Not stated in the request: the user's experiment arm (if any) decides.
    use_llm = body.use_llm if "use_llm" in body.model_fields_set else None
    opts = RecommendOptions(explain=body.explain, use_llm=use_llm, unknown_user_is_error=True)
    call = partial(state.pipeline.run, body.user_id, _context(body.context, state), body.k, opts)
    # Without the LLM a request is ~10 ms of CPU over in-memory state: it runs on the event loop
    # (one worker per core), as threads would only queue for the GIL. With it, it waits on the
    # model server, so a thread waits instead of the loop.
    r = await run_in_threadpool(call) if state.pipeline.may_call_llm(use_llm, body.user_id) else call()
    return {
        "recommendation_id": r.recommendation_id,
        "user_id": r.user_id,
        "ranker": r.ranker,
        "items": _items_out(r),
        "explanation_source": r.explanation.source if r.explanation else None,
        "notes": r.notes,
        "emptied_by": r.emptied_by,
        "timings": {k: v for k, v in r.timings.items() if isinstance(v, int | float)},
        "experiment": r.experiment,
    }


@router.get("/v1/recommendations/{recommendation_id}", tags=["support"])
def trace(recommendation_id: str, key: CurrentKey, state: State, session: SessionDep) -> dict[str, Any]:
    """Everything behind a recommendation: facts, candidates and sources, scores, prompt, model."""
    rec = state.records.trace(session, recommendation_id)
    key.require_read(rec.user_id)
    return {
        "recommendation_id": rec.id,
        "user_id": rec.user_id,
        "created_at": rec.created_at.isoformat(),
        "request": rec.request,
        "profile_version": rec.profile_version,
        "facts": rec.facts,
        "candidates": rec.candidates,
        "items": rec.items,
        "ranker": rec.ranker,
        "prompt_version": rec.prompt_version,
        "model": rec.model,
        "explanation": rec.explanation,
        "timings": rec.timings,
        "conversation_id": rec.conversation_id,
        # which arm served it, and what the user's earlier feedback hid or moved
        "experiment": {"name": rec.experiment, "arm": rec.arm} if rec.experiment else None,
        "feedback": (rec.request or {}).get("feedback") or None,
    }


@router.post("/v1/recommendations/{recommendation_id}/feedback", status_code=201)
def feedback(
    recommendation_id: str, body: FeedbackIn, key: CurrentKey, state: State, session: SessionDep
) -> dict[str, str]:
    rec = state.records.trace(session, recommendation_id)
    key.require_act_as(rec.user_id)
    session.close()  # give the connection back before the service opens its own
    # Feedback is not a visit: histories do not change; reactions are read per request.
    eid = state.records.feedback(recommendation_id, rec.user_id, body.kind, body.item_id, body.reason)
    if state.miner is not None:  # the profile's feedback facts follow in the background
        state.miner.submit([rec.user_id])
    return {"event_id": eid}


@router.get("/v1/users/{user_id}/feedback", tags=["support"])
def feedback_history(
    user_id: str, key: CurrentKey, state: State, session: SessionDep, limit: int = Query(50, ge=1, le=500)
) -> dict[str, Any]:
    """The user's reactions to recommendations, newest first, with what each does now."""
    key.require_read(user_id)
    return {"user_id": user_id, "feedback": state.records.feedback_history(session, user_id, limit)}


@router.get("/v1/users/{user_id}/recommendations", tags=["support"])
def recent(
    user_id: str, key: CurrentKey, state: State, session: SessionDep, limit: int = Query(20, ge=1, le=100)
) -> dict[str, Any]:
    key.require_read(user_id)
    recs = state.records.recent(session, user_id, limit)
    return {
        "recommendations": [
            {
                "recommendation_id": r.id,
                "created_at": r.created_at.isoformat(),
                "items": r.items,
                "labels": _labels(r),
                "ranker": r.ranker,
                "experiment": r.experiment,
                "arm": r.arm,
            }
            for r in recs
        ]
    }
