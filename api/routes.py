"""HTTP routes: speak HTTP only; the logic lives in agent.service / agent.chat / core.ingest.

Routes are sync ``def`` so FastAPI runs them in its thread pool: FAISS, embedding, the database and
LLM calls never block the event loop.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.deps import CurrentKey, SessionDep, State
from api.errors import error_body
from api.schemas import (
    ChatCompletionIn,
    ChatIn,
    EventsIn,
    EventsOut,
    FeedbackIn,
    RecommendIn,
    RecommendOut,
)
from core.errors import ChronotopeError, InvalidInputError, NotFoundError
from core.models import Conversation, Item, Message, User
from retrieval.types import RequestContext

router = APIRouter()


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(state: State, session: SessionDep, response: Response) -> dict[str, Any]:
    from sqlalchemy import text

    from agent.llm.status import llm_status

    out: dict[str, Any] = {}
    try:
        session.execute(text("SELECT 1"))
        out["db"] = {"ok": True}
    except Exception as exc:  # pragma: no cover - db down
        out["db"] = {"ok": False, "error": str(exc)[:200]}
    out["retrieval"] = state.service.retriever.status()
    out["llm"] = llm_status(state.settings, timeout_s=1.0)
    out["ready"] = out["db"]["ok"]
    out["ranker_in_use"] = (
        "llm+features" if out["llm"]["reachable"] and state.service.reranker else "features (llm unavailable)"
    )
    if not out["ready"]:
        response.status_code = 503
    return out


@router.post("/v1/events", response_model=EventsOut, tags=["ingest"])
def ingest_events(body: EventsIn, key: CurrentKey, state: State) -> EventsOut:
    """Batch ingest (admin). Idempotent by event id; each bad event is reported by its position."""
    from core.ingest import parse_records, write_events

    key.require_admin()
    df, rejections, dups = parse_records(body.events)
    inserted, present, _, _ = write_events(state.factory, df, source="api")
    with state.factory() as s:
        for uid in set(df["user_id"].astype(str)):
            state.service.retriever.refresh_user(s, uid)
    errs = [{"index": r.line - 1, "reason": r.reason} for r in rejections]
    return EventsOut(inserted=inserted, already_present=present, duplicates=len(dups), errors=errs)


@router.get("/v1/items/{item_id}", tags=["items"])
def get_item(item_id: str, key: CurrentKey, session: SessionDep) -> dict[str, Any]:
    it = session.get(Item, item_id)
    if it is None:
        raise NotFoundError(f"no item {item_id!r}")
    return {
        "item_id": it.id,
        "name": it.name,
        "category": it.category,
        "lat": it.lat,
        "lon": it.lon,
        "attributes": it.attributes,
    }


@router.get("/v1/items", tags=["items"])
def list_items(
    key: CurrentKey,
    session: SessionDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    category: str | None = Query(None, max_length=120),
) -> dict[str, Any]:
    stmt = select(Item).order_by(Item.id).limit(limit).offset(offset)
    if category:
        stmt = stmt.where(Item.category == category)
    rows = session.scalars(stmt).all()
    return {
        "items": [{"item_id": i.id, "name": i.name, "category": i.category} for i in rows],
        "offset": offset,
    }


def _context(c: Any) -> RequestContext:
    when = c.time or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if (c.lat is None) != (c.lon is None):
        raise InvalidInputError("give both lat and lon, or neither")
    return RequestContext(
        time=when,
        lat=c.lat,
        lon=c.lon,
        text=c.text,
        include_categories=tuple(c.include_categories),
        exclude_categories=tuple(c.exclude_categories),
        max_distance_km=c.max_distance_km,
        exclude_visited=c.exclude_visited,
    )


def _items_out(result: Any) -> list[dict[str, Any]]:
    out = []
    for c in result.items:
        exp = result.explanation.items.get(c.item_id) if result.explanation else None
        out.append(
            {
                "item_id": c.item_id,
                "name": c.name,
                "category": c.category,
                "lat": c.lat,
                "lon": c.lon,
                "score": c.final_score if c.final_score is not None else c.score,
                "feature_score": c.score,
                "llm_score": c.llm_score,
                "sources": c.sources,
                "explanation": exp.text if exp else None,
                "fact_ids": exp.fact_ids if exp else [],
            }
        )
    return out


@router.post("/v1/recommendations", response_model=RecommendOut, tags=["recommendations"])
def recommend(body: RecommendIn, key: CurrentKey, state: State) -> dict[str, Any]:
    key.require_act_as(body.user_id)
    r = state.service.recommend(
        body.user_id, _context(body.context), body.k, body.explain, use_llm=body.use_llm
    )
    return {
        "recommendation_id": r.recommendation_id,
        "user_id": r.user_id,
        "ranker": r.ranker,
        "items": _items_out(r),
        "explanation_source": r.explanation.source if r.explanation else None,
        "notes": r.notes,
        "timings": {k: v for k, v in r.timings.items() if isinstance(v, int | float)},
    }


@router.get("/v1/recommendations/{recommendation_id}", tags=["support"])
def trace(recommendation_id: str, key: CurrentKey, state: State, session: SessionDep) -> dict[str, Any]:
    """Everything behind a recommendation: facts, candidates and sources, scores, prompt, model."""
    rec = state.service.trace(session, recommendation_id)
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
    }


@router.post("/v1/recommendations/{recommendation_id}/feedback", status_code=201, tags=["recommendations"])
def feedback(
    recommendation_id: str, body: FeedbackIn, key: CurrentKey, state: State, session: SessionDep
) -> dict[str, str]:
    rec = state.service.trace(session, recommendation_id)
    key.require_act_as(rec.user_id)
    session.close()  # give the connection back before the service opens its own
    eid = state.service.feedback(recommendation_id, rec.user_id, body.kind, body.item_id, body.reason)
    with state.factory() as s:
        state.service.retriever.refresh_user(s, rec.user_id)
    return {"event_id": eid}


@router.get("/v1/users/{user_id}/profile", tags=["profiles"])
def profile(user_id: str, key: CurrentKey, session: SessionDep) -> dict[str, Any]:
    from retrieval.profile_store import latest_profile, profile_versions

    key.require_read(user_id)
    p = latest_profile(session, user_id)
    if p is None:
        if session.get(User, user_id) is None:
            raise NotFoundError(f"no user {user_id!r}")
        raise NotFoundError(f"no profile for user {user_id!r} yet: run `chronotope mine`")
    return {
        **p.to_dict(),
        "versions": profile_versions(session, user_id),
        "plots": [f"/v1/users/{user_id}/profile/plots/{n}.png" for n in ("rhythm", "places")],
    }


@router.get("/v1/users/{user_id}/profile/plots/{name}.png", tags=["profiles"])
def plot(user_id: str, name: str, key: CurrentKey, session: SessionDep) -> Response:
    from core.events_frame import events_frame
    from mining.plots import PLOTS, render_plot

    key.require_read(user_id)
    if name not in PLOTS:
        raise NotFoundError(f"no plot {name!r}; have {', '.join(PLOTS)}")
    df = events_frame(session, [user_id])
    if df.empty:
        raise NotFoundError(f"no events for user {user_id!r}")
    return Response(render_plot(name, df, user_id), media_type="image/png")


@router.get("/v1/users/{user_id}/recommendations", tags=["support"])
def recent(
    user_id: str, key: CurrentKey, state: State, session: SessionDep, limit: int = Query(20, ge=1, le=100)
) -> dict[str, Any]:
    key.require_read(user_id)
    recs = state.service.recent(session, user_id, limit)
    return {
        "recommendations": [
            {
                "recommendation_id": r.id,
                "created_at": r.created_at.isoformat(),
                "items": r.items,
                "ranker": r.ranker,
            }
            for r in recs
        ]
    }


@router.get("/v1/users", tags=["support"])
def users(key: CurrentKey, session: SessionDep, limit: int = Query(100, ge=1, le=2000)) -> dict[str, Any]:
    if key.role == "user":
        return {"users": [key.user_id]}
    return {"users": list(session.scalars(select(User.id).order_by(User.id).limit(limit)))}


@router.delete("/v1/users/{user_id}", tags=["privacy"])
def delete_user(user_id: str, key: CurrentKey, state: State, session: SessionDep) -> dict[str, Any]:
    """Delete a user and all their data (events, profiles, recommendations, conversations, keys)."""
    from core.models import ApiKey

    key.require_admin()
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id!r}")
    for k in session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)):
        session.delete(k)
    session.delete(user)
    session.commit()
    state.service.retriever.forget_user(user_id)
    return {"deleted": user_id}


@router.get("/v1/conversations/{conversation_id}", tags=["chat"])
def conversation(conversation_id: str, key: CurrentKey, session: SessionDep) -> dict[str, Any]:
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFoundError(f"no conversation {conversation_id!r}")
    key.require_read(conv.user_id)
    msgs = session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    )
    return {
        "conversation_id": conv.id,
        "user_id": conv.user_id,
        "state": conv.state,
        "messages": [{"role": m.role, "content": m.content, "meta": m.meta} for m in msgs],
    }


def _sse(events: Iterator[tuple[str, Any]]) -> Iterator[str]:
    for event, data in events:
        yield f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.post("/v1/chat", tags=["chat"])
def chat(body: ChatIn, key: CurrentKey, state: State) -> Any:
    key.require_act_as(body.user_id)

    def run() -> dict[str, Any]:
        when = body.time.replace(tzinfo=body.time.tzinfo or UTC) if body.time else None
        return state.chat.respond(
            body.user_id, body.message, body.conversation_id, when=when, lat=body.lat, lon=body.lon
        )

    if not body.stream:
        return run()

    def events() -> Iterator[tuple[str, Any]]:
        try:
            out = run()
        except ChronotopeError as exc:  # the same error object, as the last event
            yield "error", error_body(exc.message, exc.type, exc.code)
            return
        for line in out["reply"].split("\n"):
            yield "delta", {"content": line + "\n"}
        yield "done", out

    return StreamingResponse(_sse(events()), media_type="text/event-stream")


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@router.post("/v1/chat/completions", tags=["chat"])
def chat_completions(body: ChatCompletionIn, key: CurrentKey, state: State) -> Any:
    """OpenAI-compatible: ``user`` names the Chronotope user; earlier user turns carry constraints."""
    user_id = body.user or key.user_id
    if not user_id:
        raise InvalidInputError("set the request's `user` field to the Chronotope user id")
    key.require_act_as(user_id)
    user_turns = [_message_text(m.content) for m in body.messages if m.role == "user"]
    if not user_turns or not user_turns[-1].strip():
        raise InvalidInputError("the last message must be a user message with text")
    conv_id = None
    out: dict[str, Any] = {}
    for turn in user_turns[-6:]:  # replay recent turns so constraints accumulate, statelessly
        out = state.chat.respond(user_id, turn[:4000], conv_id)
        conv_id = out["conversation_id"]
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    meta = {
        "recommendation_id": out["recommendation_id"],
        "ranker": out["ranker"],
        "items": out["items"],
        "conversation_id": conv_id,
    }
    if not body.stream:
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": out["reply"]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "chronotope": meta,
        }

    def chunks() -> Iterator[str]:
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.model}
        yield (
            "data: "
            + json.dumps(
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            )
            + "\n\n"
        )
        for line in out["reply"].split("\n"):
            yield (
                "data: "
                + json.dumps(
                    {
                        **base,
                        "choices": [{"index": 0, "delta": {"content": line + "\n"}, "finish_reason": None}],
                    }
                )
                + "\n\n"
            )
        yield (
            "data: "
            + json.dumps(
                {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "chronotope": meta}
            )
            + "\n\n"
        )
        yield "data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")
