"""The conversational recommender and its stored conversations."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import CurrentKey, SessionDep, State
from api.schemas import ChatIn, ChatOut
from api.streaming import chat_out, chat_sse
from core.errors import NotFoundError
from core.models import Conversation, Message

router = APIRouter(tags=["chat"])


@router.post(
    "/v1/chat",
    response_model=ChatOut,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE with stream"}},
)
def chat(body: ChatIn, key: CurrentKey, state: State) -> Any:
    key.require_act_as(body.user_id)
    state.chat.check_access(body.user_id, body.conversation_id)  # errors before any stream starts
    when = body.time.replace(tzinfo=body.time.tzinfo or UTC) if body.time else None
    args = {"lat": body.lat, "lon": body.lon} if body.lat is not None and body.lon is not None else {}
    events = state.chat.stream(body.user_id, body.message, body.conversation_id, when=when, args=args)
    if body.stream:
        return chat_sse(events)
    done = [ev.data for ev in events if ev.kind == "done"]
    return chat_out(done[-1])


@router.get("/v1/conversations/{conversation_id}")
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
