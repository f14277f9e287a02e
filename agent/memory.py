"""Conversation memory in the store: messages, and the constraints the user has stated so far."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


HISTORY_MESSAGE_CHARS = 300  # one earlier message, as read back into a prompt


def recent_history(
    messages: Sequence[Message | dict[str, str]], budget_tokens: int, count: Callable[[str], int]
) -> list[dict[str, str]]:
    """The newest earlier messages that fit ``budget_tokens``, oldest first, each shortened."""
    out: list[dict[str, str]] = []
    used = 0
    for m in reversed(messages):
        role = m["role"] if isinstance(m, dict) else m.role
        content = m["content"] if isinstance(m, dict) else m.content
        if role not in ("user", "assistant"):
            continue
        text = " ".join(content.split())
        if len(text) > HISTORY_MESSAGE_CHARS:
            text = text[: HISTORY_MESSAGE_CHARS - 1] + "…"
        cost = count(text) + 4  # the role marker and separators
        if used + cost > budget_tokens:
            break
        out.append({"role": role, "content": text})
        used += cost
    return out[::-1]


def find_conversation(session: Session, user_id: str, prior: Sequence[dict[str, str]]) -> Conversation | None:
    """The user's stored conversation whose messages are exactly ``prior`` (role and content), so
    an OpenAI-style client that resends the whole exchange continues it: one lookup, no replay."""
    assistant = [m for m in prior if m["role"] == "assistant"]
    if not assistant:
        return None
    candidates = session.scalars(
        select(Message.conversation_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.user_id == user_id,
            Message.role == "assistant",
            Message.content == assistant[-1]["content"],
        )
        .order_by(Message.id.desc())
        .limit(5)
    ).all()
    want = [(m["role"], m["content"]) for m in prior if m["role"] in ("user", "assistant")]
    for conv_id in dict.fromkeys(candidates):
        stored = [(m.role, m.content) for m in history(session, conv_id)]
        if stored == want:
            return session.get(Conversation, conv_id)
    return None
