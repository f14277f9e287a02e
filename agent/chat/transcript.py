"""The stored record of a chat turn: the assistant message with everything support staff need to
answer "why" (the understanding, the tool calls, the grounding, the reply's attempts), and the
conversation's state after the turn (what was shown and rejected holds, even when the reply was
not delivered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.chat.reply import ReplyOutcome
from agent.chat.tools import ToolResult, TurnDeps
from agent.chat.turn import ChatTurn
from agent.chat.understand import Understanding
from agent.memory import add_message
from core.models import Conversation


@dataclass
class Transcript:
    factory: sessionmaker[Session]
    conversation_id: str
    user_id: str

    def store(
        self,
        deps: TurnDeps,
        result: ToolResult,
        u: Understanding,
        outcome: ReplyOutcome | None,
        done: ChatTurn | None,
    ) -> None:
        """``done``: the turn as delivered; None when it was not (the client went away)."""
        meta: dict[str, Any] = {
            "recommendation_id": result.recommendation_id,
            "understanding": u.to_dict(),
            "tool_calls": deps.calls,
            "grounding": deps.trace.get("grounding"),
            "reply": outcome.to_dict() if outcome else None,
        }
        if done is not None:
            meta |= {"reply_source": done.reply_source, "timings": done.timings, "usage": done.usage}
            text = done.text_with_items  # what a text-only client sees (and sends back)
        else:
            meta["aborted"] = "the reply was not delivered"
            text = outcome.text if outcome else ""
        with self.factory() as s:
            conv = s.get(Conversation, self.conversation_id)
            if conv is None or conv.user_id != self.user_id:
                return  # deleted meanwhile: nothing to keep
            conv.state = result.state.to_dict()  # the tool ran: what was shown and rejected holds
            add_message(s, conv, "assistant", text, meta)
            s.commit()
