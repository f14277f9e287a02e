"""What one chat turn produces: its stream events and the whole turn as the API returns it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agent.chat.present import listing
from agent.chat.state import ChatState


@dataclass
class ChatEvent:
    kind: str  # "turn", "delta", "reset" or "done"
    data: Any = None


@dataclass
class ChatTurn:
    conversation_id: str
    reply: str
    reply_source: str  # "llm" or "template"
    understood_by: str  # "llm" or "rules"
    action: str  # the tool the turn used: recommend, explain, reject, profile or chat
    items: list[dict[str, Any]]
    recommendation_id: str | None
    ranker: str | None
    constraints: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def text_with_items(self) -> str:
        """The reply for a text-only client: an LLM-written reply with the shown items listed
        under it (rendered from ``items``); a template reply already lists them."""
        if self.reply_source == "llm" and self.items:
            return f"{self.reply}\n\n{listing(self.items)}"
        return self.reply


@dataclass
class Opened:
    """A turn's conversation, read once: its id, state and earlier messages."""

    conversation_id: str
    state: ChatState
    earlier: list[dict[str, str]]
