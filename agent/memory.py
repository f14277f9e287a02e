"""Conversation memory in the store: messages, and the constraints the user has stated so far."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ForbiddenError, NotFoundError
from core.models import Conversation, Message, User, new_id


def open_conversation(session: Session, user_id: str, conversation_id: str | None) -> Conversation:
    if session.get(User, user_id) is None:
        raise NotFoundError(f"no user {user_id!r}: ingest their events first")
    if conversation_id is None:
        conv = Conversation(id=new_id(), user_id=user_id, state={})
        session.add(conv)
        session.flush()
        return conv
    found = session.get(Conversation, conversation_id)
    if found is None:
        raise NotFoundError(f"no conversation {conversation_id!r}")
    if found.user_id != user_id:
        raise ForbiddenError("this conversation belongs to another user")
    return found


def add_message(
    session: Session, conv: Conversation, role: str, content: str, meta: dict[str, Any] | None = None
) -> None:
    session.add(Message(conversation_id=conv.id, role=role, content=content, meta=meta))


def history(session: Session, conversation_id: str) -> list[Message]:
    return list(
        session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
    )
