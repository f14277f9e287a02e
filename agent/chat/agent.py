"""The chat agent: one turn = open the conversation (once), load the person (once), understand the
message (LLM, else rules), run the tool the registry names, write the reply (LLM, streamed and
checked, else template), store everything support staff need to answer "why".

``start`` opens the turn (an unknown user or someone else's conversation raises before any
response starts); its ``events`` yields ``turn`` (the items, as soon as the tool returns),
``delta`` / ``reset`` (reply text; see agent/chat/reply.py) and ``done`` (the whole ChatTurn).
One LLM session (agent/llm/gateway.py) serves the turn: one slot of the worker's bounded queue,
one deadline, the understanding, a rerank the tool may do and the reply.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.chat.guard import ReplyRules
from agent.chat.reply import ReplyOutcome, ReplyRequest, ReplyWriter
from agent.chat.state import ChatState
from agent.chat.tools import TOOLS, Registry, ToolResult, TurnDeps
from agent.chat.transcript import Transcript
from agent.chat.turn import ChatEvent, ChatTurn, Opened
from agent.chat.understand import Understander, Understanding
from agent.context import RequestUser
from agent.list_notes import why_not_llm
from agent.llm.gateway import LLMGateway, LLMSession
from agent.llm.tokens import TokenCounter
from agent.memory import add_message, find_conversation, history, open_conversation, recent_history
from agent.pipeline import RecommendPipeline
from agent.records import Records
from core.models import Conversation
from core.settings import ChatSettings
from retrieval.grounding import CategoryGrounder

MAX_MESSAGE_CHARS = 4000
PROFILE_SUMMARY_CHARS = 240


def _summary(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= PROFILE_SUMMARY_CHARS else text[: PROFILE_SUMMARY_CHARS - 1] + "…"


class ChatAgent:
    """One per app; a turn's state lives in the conversation row, its parts in TurnDeps."""

    def __init__(
        self,
        pipeline: RecommendPipeline,
        records: Records,
        llm: LLMGateway,
        settings: ChatSettings,
        *,
        grounder: CategoryGrounder | None = None,
        tokens: TokenCounter | None = None,
        tools: Registry = TOOLS,
        llm_on: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.records = records
        self.llm = llm
        self.settings = settings
        self.domain = pipeline.domain
        self.grounder = grounder
        self.tools = tools
        self.llm_on = llm_on and llm.enabled
        self.understander = Understander(settings, self.domain, tools, model=llm.model, grounder=grounder)
        self.writer = ReplyWriter(settings, self.domain, llm.model, enabled=self.llm_on)
        self.tokens = tokens or TokenCounter()

    @property
    def breaker_state(self) -> str:
        return self.llm.breaker.state

    # -- the turn ---------------------------------------------------------------------------

    def check_access(self, user_id: str, conversation_id: str | None) -> None:
        """Raise what the turn would raise for an unknown user or someone else's conversation."""
        with self.records.factory() as s:
            open_conversation(s, user_id, conversation_id)
            s.rollback()

    def stream(
        self,
        user_id: str,
        message: str,
        conversation_id: str | None = None,
        *,
        when: datetime | None = None,
        args: dict[str, Any] | None = None,
        prior: Sequence[dict[str, str]] | None = None,
    ) -> Iterator[ChatEvent]:
        """``args``: the request's domain arguments (places: lat, lon); ``prior``: the earlier
        messages an OpenAI-style client sent along (the stored conversation they match is
        continued, else a new one starts from them)."""
        t0 = time.perf_counter()
        deadline = time.monotonic() + self.settings.turn_timeout_s
        when = when or datetime.now(UTC)
        message = message[:MAX_MESSAGE_CHARS]
        opened = self._open(user_id, message, conversation_id, prior)
        user = self.pipeline.users.load(user_id, when)
        wait = min(deadline, time.monotonic() + self.settings.understand_timeout_s)
        session_cm = self.llm.session(deadline, wait_until=wait) if self.llm_on else _off(self.llm, deadline)
        with session_cm as session:
            yield from self._turn(session, user, message, opened, when, args or {}, t0)

    def _turn(
        self,
        session: LLMSession,
        user: RequestUser,
        message: str,
        opened: Opened,
        when: datetime,
        args: dict[str, Any],
        t0: float,
    ) -> Iterator[ChatEvent]:
        hist = recent_history(opened.earlier, self.settings.history_tokens, self.tokens.count)
        profile_text = self._readable(user)
        u = self.understander.understand(session, message, opened.state, hist, _summary(profile_text))
        t_understood = time.perf_counter()
        deps = self._deps(session, user, message, opened, u, when, args)
        result = self.tools.get(u.intent.action).run(deps)
        t_tool = time.perf_counter()
        turn_info = {
            "conversation_id": opened.conversation_id,
            "items": result.items,
            "recommendation_id": result.recommendation_id,
            "ranker": result.ranker,
            "understood_by": u.source,
            "action": result.action,
        }
        yield ChatEvent("turn", turn_info)
        outcome: ReplyOutcome | None = None
        stored = False
        record = Transcript(self.records.factory, opened.conversation_id, user.user_id)
        try:
            outcome = yield from self._reply(session, self._request(message, result, u, deps))
            if result.stored and result.stored[1] not in outcome.text:
                added = f"\n\n{result.stored[0]}"  # what was written for them is always said
                yield ChatEvent("delta", added)
                outcome.text += added
            done = self._result(opened, u, result, outcome, session, (t0, t_understood, t_tool))
            record.store(deps, result, u, outcome, done)
            stored = True
            yield ChatEvent("done", done)
        finally:
            if not stored:  # the client went away (or the reply failed): keep the turn's trace
                record.store(deps, result, u, outcome, None)

    def respond(self, user_id: str, message: str, conversation_id: str | None = None, **kw: Any) -> ChatTurn:
        done = None
        for ev in self.stream(user_id, message, conversation_id, **kw):
            if ev.kind == "done":
                done = ev.data
        assert done is not None  # stream always ends with "done" unless it raised
        return done

    # -- steps --------------------------------------------------------------------------------

    def _open(
        self, user_id: str, message: str, conversation_id: str | None, prior: Sequence[dict[str, str]] | None
    ) -> Opened:
        with self.records.factory() as s:
            conv: Conversation | None = find_conversation(s, user_id, prior) if prior else None
            if conv is None:
                conv = open_conversation(s, user_id, None if prior is not None else conversation_id)
                for m in prior or []:  # what the client says was said before, kept for the trace
                    if m["role"] in ("user", "assistant"):
                        add_message(
                            s, conv, m["role"], m["content"][:MAX_MESSAGE_CHARS], {"from_client": True}
                        )
                s.flush()
            state = ChatState.from_dict(conv.state)
            earlier = [{"role": m.role, "content": m.content} for m in history(s, conv.id)]
            add_message(s, conv, "user", message)
            s.commit()
            return Opened(conv.id, state, earlier)

    def _readable(self, user: RequestUser) -> str:
        p = user.profile
        if p is None or not p.text:
            return ""
        return self.domain.readable_profile(p.text, p, self.pipeline.retriever.kind_of)

    def _deps(
        self,
        session: LLMSession,
        user: RequestUser,
        message: str,
        opened: Opened,
        u: Understanding,
        when: datetime,
        args: dict[str, Any],
    ) -> TurnDeps:
        trace = {
            "conversation_id": opened.conversation_id,
            "message": message[:500],
            "understood_by": u.source,
            "intent": u.to_dict()["intent"],
        }
        return TurnDeps(
            self.pipeline,
            self.records,
            self.domain,
            self.grounder,
            user,
            opened.conversation_id,
            message,
            opened.state,
            u.intent,
            when,
            self.domain.request_args(**args),
            self.settings.k,
            self.settings.rerank and not u.llm_down,
            u.llm_down,
            trace,
            [],
            session,
        )

    def _request(self, message: str, result: ToolResult, u: Understanding, deps: TurnDeps) -> ReplyRequest:
        template = result.template
        if u.llm_down and result.action not in ("recommend", "reject"):
            template += f"\n({LLM_UNAVAILABLE})"
        rules = ReplyRules(
            tool_text=result.results,
            message=message,
            n_items=result.n_items,
            shown_categories=result.shown_kinds,
            excluded_categories=set(result.state.exclude_kinds),
            catalog_categories=self.grounder.categories if self.grounder else (),
            instructions=self.writer.instruction_text(result.task),
            superlatives=self.domain.superlatives,
        )
        return ReplyRequest(message, result.results, result.task, rules, template, llm_ok=not u.llm_down)

    def _reply(self, session: LLMSession, req: ReplyRequest) -> Generator[ChatEvent, None, ReplyOutcome]:
        gen = self.writer.stream(session, req)
        try:
            while True:
                ev = next(gen)
                yield ChatEvent(ev.kind, ev.text)
        except StopIteration as stop:
            outcome: ReplyOutcome = stop.value
            return outcome

    def _result(
        self,
        opened: Opened,
        u: Understanding,
        result: ToolResult,
        outcome: ReplyOutcome,
        session: LLMSession,
        ts: tuple[float, float, float],
    ) -> ChatTurn:
        t0, t_understood, t_tool = ts
        notes = list(result.notes)
        # plain words for the person; the error itself is in the stored turn (understanding, reply)
        if u.source == "rules" and u.error and u.error != "llm disabled":
            notes.append(f"{why_not_llm(u.error)}, so rules understood this message")
        if outcome.source == "template" and outcome.note:
            notes.append(f"a template wrote this reply ({why_not_llm(outcome.note)})")
        timings = {
            "understand_ms": round((t_understood - t0) * 1000, 1),
            "tool_ms": round((t_tool - t_understood) * 1000, 1),
            "reply_ms": round(outcome.ms, 1),
            "total_ms": round((time.perf_counter() - t0) * 1000, 1),
        }
        if outcome.first_token_ms is not None:
            timings["first_token_ms"] = round((t_tool - t0) * 1000 + outcome.first_token_ms, 1)
        args = self.domain.describe_args(result.state.args)
        return ChatTurn(
            conversation_id=opened.conversation_id,
            reply=outcome.text,
            reply_source=outcome.source,
            understood_by=u.source,
            action=result.action,
            items=result.items,
            recommendation_id=result.recommendation_id,
            ranker=result.ranker,
            constraints=result.state.to_dict() | {"summary": result.state.summary(args=args)},
            notes=notes,
            timings=timings,
            usage=dict(session.usage),
        )


LLM_UNAVAILABLE = (
    "the language model is unavailable right now, so rules understood this and a template answered"
)


def _off(llm: LLMGateway, deadline: float) -> Any:
    from contextlib import nullcontext

    return nullcontext(llm.unused(deadline, "LLM disabled"))
