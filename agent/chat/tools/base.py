"""A chat tool is one object: its name, what it does (the understanding prompt's line for it), the
words that ask for it when the rules understand a turn, and what it does and says.

``run`` gets the turn's dependencies (``TurnDeps``: the pipeline, the records, the person loaded
once for the turn, the conversation's state, the verified intent) and returns a ``ToolResult``:
the state after the turn, the items shown, and the material of the reply (what the LLM writes
from, the template that says the same, the reply's task). Tools never touch module globals.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agent.chat.intent import TurnIntent
from agent.chat.state import ChatState
from agent.context import RequestUser
from agent.llm.gateway import LLMSession
from agent.pipeline import RecommendPipeline
from agent.records import Records
from core.nouns import Nouns
from domains.base import Domain
from retrieval.grounding import CategoryGrounder


@dataclass
class TurnDeps:
    pipeline: RecommendPipeline
    records: Records
    domain: Domain
    grounder: CategoryGrounder | None
    user: RequestUser  # loaded once for the turn
    conversation_id: str
    message: str
    state: ChatState  # as the turn found it
    intent: TurnIntent  # verified against the message
    when: datetime
    args: dict[str, Any]  # the request's domain arguments (places: where the person is)
    k: int
    rerank: bool  # let the LLM rerank this turn's items too
    llm_down: bool  # the LLM failed this turn already: the template answers
    trace: dict[str, Any]  # the turn's understanding and grounding, stored with its recommendation
    calls: list[dict[str, Any]] = field(default_factory=list)
    session: LLMSession | None = None  # the turn's LLM session (its slot and deadline)

    @property
    def nouns(self) -> Nouns:
        return self.domain.nouns

    def call(self, name: str, arguments: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """Run one tool step and keep it for the trace (name, arguments, time)."""
        t = time.perf_counter()
        out = fn()
        self.calls.append(
            {"tool": name, "arguments": arguments, "ms": round((time.perf_counter() - t) * 1000, 1)}
        )
        return out


@dataclass
class ToolResult:
    results: str  # the tool's result as the reply's writer sees it
    template: str  # the rules' reply from the same result
    task: str  # what the reply should do
    state: ChatState  # the conversation's state after the turn
    items: list[dict[str, Any]] = field(default_factory=list)  # the items shown (response items)
    n_items: int = 0  # items the reply may refer to by position
    recommendation_id: str | None = None
    ranker: str | None = None
    notes: list[str] = field(default_factory=list)
    shown_kinds: set[str] = field(default_factory=set)
    action: str = ""  # the tool that ran (a rejection without rejection words runs recommend)
    # what the turn stored or took back on the person's behalf, in a sentence for them: always in
    # the reply (added after a model's reply that does not name the item)
    stored: tuple[str, str] | None = None  # (the sentence, the item's label)


class Tool(Protocol):
    name: str
    needs_shown: bool  # offered only once something has been shown

    def describe(self, nouns: Nouns) -> str: ...

    def cue(self, message: str) -> bool: ...

    def run(self, deps: TurnDeps) -> ToolResult: ...


def pattern_cue(pattern: re.Pattern[str] | None) -> Callable[[str], bool]:
    return lambda message: bool(pattern and pattern.search(message))
