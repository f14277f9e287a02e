"""The chat agent: one turn = read the conversation back, understand the message (LLM, else rules),
ground it in the catalog, run the tool, write the reply (LLM, streamed and checked, else template),
store everything support staff need to answer "why".

``stream`` yields events as they happen: ``turn`` (the places, as soon as the tool returns),
``delta`` / ``reset`` (reply text; see agent/chat/reply.py) and ``done`` (the whole ChatTurn).
``respond`` runs the same turn and returns the ChatTurn.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.chat.guard import ReplyRules
from agent.chat.present import (
    CHAT_TASK,
    CHAT_TEMPLATE,
    EXPLAIN_TASK,
    NOTHING_TASK,
    PROFILE_TASK,
    RECOMMEND_TASK,
    item_facts,
    item_label,
    listing,
    reason_text,
    results_for_items,
    template_for_items,
)
from agent.chat.reply import ReplyOutcome, ReplyRequest, ReplyWriter
from agent.chat.state import ChatState, ShownItem, apply, to_context
from agent.chat.tools import ChatDeps, RecommendArgs, build_tools
from agent.chat.understand import Understander, Understanding
from agent.llm.breaker import CircuitBreaker, breaker_for
from agent.llm.client import make_openai_client
from agent.llm.tokens import TokenCounter
from agent.memory import add_message, find_conversation, history, open_conversation, recent_history
from agent.service import RecommendationResult, RecommendationService
from core.models import Conversation
from core.settings import Settings
from retrieval.grounding import CategoryGrounder

MAX_MESSAGE_CHARS = 4000
PROFILE_SUMMARY_CHARS = 240
LLM_UNAVAILABLE_NOTE = (
    "the language model is unavailable right now, so rules understood this and a template answered"
)


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
    def text_with_places(self) -> str:
        """The reply for a text-only client: an LLM-written reply with the shown places listed
        under it (rendered from ``items``); a template reply already lists them."""
        if self.reply_source == "llm" and self.items:
            return f"{self.reply}\n\n{listing(self.items)}"
        return self.reply


def _summary(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= PROFILE_SUMMARY_CHARS else text[: PROFILE_SUMMARY_CHARS - 1] + "…"


def _item_out(c: Any, result: RecommendationResult) -> dict[str, Any]:
    exp = result.explanation.items.get(c.item_id) if result.explanation else None
    return {
        "item_id": c.item_id,
        "name": c.name,
        "category": c.category,
        "label": item_label(c),
        "details": item_facts(c) + ([result.where[c.item_id]] if c.item_id in result.where else []),
        "score": c.final_score if c.final_score is not None else c.score,
        "sources": c.sources,
        "explanation": exp.text if exp else None,
        "fact_ids": exp.fact_ids if exp else [],
    }


class ChatAgent:
    """One per app; a turn's state lives in the conversation row, its parts in ChatDeps."""

    def __init__(
        self,
        service: RecommendationService,
        settings: Settings,
        *,
        grounder: CategoryGrounder | None = None,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        tokens: TokenCounter | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.grounder = grounder
        use_llm = settings.chat.llm and settings.llm.enabled
        self.client = client if client is not None or not use_llm else make_openai_client(settings)
        self.breaker = breaker or breaker_for(settings.resolved_llm_base_url)
        self.understander = Understander(
            settings, self.client, self.breaker, enabled=use_llm, grounder=grounder
        )
        self.writer = ReplyWriter(settings, self.client, self.breaker, enabled=use_llm)
        self.tokens = tokens or TokenCounter()

    # -- the turn ---------------------------------------------------------------------------

    def check_access(self, user_id: str, conversation_id: str | None) -> None:
        """Raise what the turn would raise for an unknown user or someone else's conversation,
        before a response (and a stream) starts."""
        with self.service.factory() as s:
            open_conversation(s, user_id, conversation_id)
            s.rollback()

    def stream(
        self,
        user_id: str,
        message: str,
        conversation_id: str | None = None,
        *,
        when: datetime | None = None,
        lat: float | None = None,
        lon: float | None = None,
        prior: Sequence[dict[str, str]] | None = None,
    ) -> Iterator[ChatEvent]:
        """``prior``: the earlier messages an OpenAI-style client sent along (role, content); the
        stored conversation they match is continued, else a new one starts from them."""
        cs = self.settings.chat
        t0 = time.perf_counter()
        deadline = time.monotonic() + cs.turn_timeout_s
        when = when or datetime.now(UTC)
        message = message[:MAX_MESSAGE_CHARS]
        conv_id, state, earlier, profile_text = self._open(user_id, message, conversation_id, prior)
        hist = recent_history(earlier, cs.history_tokens, self.tokens.count)
        with ExitStack() as llm_slot:  # the turn's LLM work shares the worker's bounded queue
            yield from self._turn(
                user_id, message, conv_id, state, hist, profile_text, when, lat, lon, t0, deadline, llm_slot
            )

    def _turn(
        self,
        user_id: str,
        message: str,
        conv_id: str,
        state: Any,
        hist: list[dict[str, str]],
        profile_text: str | None,
        when: datetime,
        lat: float | None,
        lon: float | None,
        t0: float,
        deadline: float,
        llm_slot: ExitStack,
    ) -> Iterator[ChatEvent]:
        cs = self.settings.chat
        busy = None
        admission = self.service.admission
        if admission is not None and self.understander.enabled:
            # Wait for a slot no longer than an understanding may take; past that, rules answer.
            busy = llm_slot.enter_context(
                admission.slot(min(deadline, time.monotonic() + cs.understand_timeout_s))
            )
        left = deadline - time.monotonic()
        u = self.understander.understand(
            message, state, hist, _summary(profile_text), min(cs.understand_timeout_s, left), busy=busy
        )
        t_understood = time.perf_counter()
        turn = self._act(user_id, conv_id, message, state, u, when, lat, lon)
        t_tool = time.perf_counter()
        yield ChatEvent(
            "turn",
            {
                "conversation_id": conv_id,
                "items": turn["items"],
                "recommendation_id": turn["recommendation_id"],
                "ranker": turn["ranker"],
                "understood_by": u.source,
                "action": u.intent.action,
            },
        )
        outcome: ReplyOutcome | None = None
        persisted = False
        try:
            outcome = yield from self._reply(turn["request"], deadline)
            notes = list(turn["notes"])
            if u.source == "rules" and u.error and u.error != "llm disabled":
                notes.append(f"rules understood this turn: {u.error}")
            llm_slot.close()  # the reply has been written: the next request may use the LLM
            if outcome.source == "template" and outcome.note:
                notes.append(f"template reply: {outcome.note}")
            first = (
                round((t_tool - t0) * 1000 + outcome.first_token_ms, 1)
                if outcome.first_token_ms is not None
                else None
            )
            timings = {
                "understand_ms": round((t_understood - t0) * 1000, 1),
                "tool_ms": round((t_tool - t_understood) * 1000, 1),
                "reply_ms": round(outcome.ms, 1),
                "total_ms": round((time.perf_counter() - t0) * 1000, 1),
            } | ({"first_token_ms": first} if first is not None else {})
            usage = dict(u.usage)
            for k, v in outcome.usage.items():
                usage[k] = usage.get(k, 0) + v
            result = ChatTurn(
                conversation_id=conv_id,
                reply=outcome.text,
                reply_source=outcome.source,
                understood_by=u.source,
                action=u.intent.action,
                items=turn["items"],
                recommendation_id=turn["recommendation_id"],
                ranker=turn["ranker"],
                constraints=turn["state"].to_dict() | {"summary": turn["state"].summary()},
                notes=notes,
                timings=timings,
                usage=usage,
            )
            self._store(conv_id, user_id, turn, u, outcome, result)
            persisted = True
            yield ChatEvent("done", result)
        finally:
            if not persisted:  # the client went away (or the reply failed): keep the turn's trace
                self._store_aborted(conv_id, user_id, turn, u, outcome)

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
    ) -> tuple[str, ChatState, list[Any], str]:
        svc = self.service
        with svc.factory() as s:
            conv: Conversation | None = None
            if prior:
                conv = find_conversation(s, user_id, prior)
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
            profile = svc.profile(s, user_id)
            s.commit()
            return conv.id, state, earlier, svc.readable_text(profile)

    def _act(
        self,
        user_id: str,
        conv_id: str,
        message: str,
        state: ChatState,
        u: Understanding,
        when: datetime,
        lat: float | None,
        lon: float | None,
    ) -> dict[str, Any]:
        """Run the tool the intent names; returns what the reply and the trace need."""
        intent = u.intent
        trace: dict[str, Any] = {
            "conversation_id": conv_id,
            "message": message[:500],
            "understood_by": u.source,
            "intent": u.to_dict()["intent"],
        }
        deps = ChatDeps(
            self.service,
            user_id,
            conv_id,
            self.settings.chat.k,
            self.settings.chat.rerank and not u.llm_down,
            trace,
        )
        tools = build_tools(deps)
        calls: list[dict[str, Any]] = []
        notes: list[str] = []
        items: list[dict[str, Any]] = []
        rec_id, ranker = None, None
        shown_cats: set[str] = {s.category for s in state.shown if s.category}
        new_state = state

        def call(name: str, args: dict[str, Any]) -> Any:
            t = time.perf_counter()
            out = tools[name].invoke(args)
            calls.append({"tool": name, "arguments": args, "ms": round((time.perf_counter() - t) * 1000, 1)})
            return out

        if intent.action in ("recommend", "reject"):
            results_head = ""
            new_state = ChatState.from_dict(state.to_dict())
            if intent.action == "reject" and state.shown and state.last_recommendation:
                target = state.shown[(intent.item or 1) - 1]
                call(
                    "reject",
                    {
                        "recommendation_id": state.last_recommendation,
                        "item_id": target.item_id,
                        "reason": message[:500],
                    },
                )
                new_state.rejected.append(target.item_id)
                results_head = f"They turned down {target.label}; it will not be suggested again.\n"
            new_state = apply(new_state, intent, self.grounder)
            trace["grounding"] = {
                "wish": new_state.wish,
                "categories": new_state.wish_categories,
                "avoid": new_state.avoid,
                "avoid_categories": new_state.avoid_categories,
            }
            ctx = to_context(new_state, when, lat, lon, self.service.utc_offset_min(user_id))
            args = RecommendArgs.from_context(ctx).model_dump(mode="json")
            result: RecommendationResult = call("recommend", args)
            new_state.shown = [ShownItem(c.item_id, item_label(c), c.category) for c in result.items]
            new_state.last_recommendation = result.recommendation_id
            explanations = result.explanation.items if result.explanation else {}
            items = [_item_out(c, result) for c in result.items]
            rec_id, ranker, notes = result.recommendation_id, result.ranker, list(result.notes)
            shown_cats = {c.category for c in result.items if c.category}
            results = results_head + results_for_items(result.items, explanations, new_state)
            task = RECOMMEND_TASK if result.items else NOTHING_TASK
            note = LLM_UNAVAILABLE_NOTE if u.llm_down else None
            template = results_head + template_for_items(result.items, explanations, new_state, note)
            n_items = len(result.items)
        elif intent.action == "explain":
            positions = [intent.item] if intent.item else list(range(1, min(3, len(state.shown)) + 1))
            targets = [(n, state.shown[n - 1]) for n in positions]
            info = call(
                "explain",
                {"recommendation_id": state.last_recommendation, "item_ids": [t.item_id for _, t in targets]},
            )
            lines, tlines = [], []
            for n, t in targets:
                e = info["items"].get(t.item_id, {})
                reason = reason_text(e.get("text", "")) or "it ranked highly"
                facts = "; ".join(e.get("facts", []))
                lines.append(f"{n}. {t.label}: {reason}" + (f" (facts: {facts})" if facts else ""))
                tlines.append(f"{n}. {t.label} — {reason}")
            results = "The places they ask about, with the recorded reasons:\n" + "\n".join(lines)
            task = EXPLAIN_TASK
            template = (
                "Why I suggested " + ("it" if len(tlines) == 1 else "these") + ":\n" + "\n".join(tlines)
            )
            rec_id, ranker = state.last_recommendation, info.get("ranker")
            n_items = len(state.shown)
        elif intent.action == "profile":
            text = call("profile", {})
            results = "What was learned from their history: " + (
                text or "too little history to say much yet."
            )
            task = PROFILE_TASK
            template = ("Here is what I know: " + text) if text else "I don't know much about you yet."
            n_items = 0
        else:
            results, task, template, n_items = (
                "This message is not a request for places.",
                CHAT_TASK,
                CHAT_TEMPLATE,
                0,
            )
        if u.llm_down and intent.action != "recommend" and intent.action != "reject":
            template += f"\n({LLM_UNAVAILABLE_NOTE})"
        rules = ReplyRules(
            tool_text=results,
            message=message,
            n_items=n_items,
            shown_categories=shown_cats,
            excluded_categories=set(new_state.exclude_kinds),
            catalog_categories=self.grounder.categories if self.grounder else (),
            instructions=self.writer.instruction_text(task),
        )
        return {
            "items": items,
            "recommendation_id": rec_id,
            "ranker": ranker,
            "notes": notes,
            "state": new_state,
            "calls": calls,
            "trace": trace,
            "request": ReplyRequest(message, results, task, rules, template, llm_ok=not u.llm_down),
        }

    def _reply(self, req: ReplyRequest, deadline: float) -> Generator[ChatEvent, None, ReplyOutcome]:
        gen = self.writer.stream(req, deadline)
        try:
            while True:
                ev = next(gen)
                yield ChatEvent(ev.kind, ev.text)
        except StopIteration as stop:
            outcome: ReplyOutcome = stop.value
            return outcome

    # -- the record ---------------------------------------------------------------------------

    def _meta(self, turn: dict[str, Any], u: Understanding, outcome: ReplyOutcome | None) -> dict[str, Any]:
        return {
            "recommendation_id": turn["recommendation_id"],
            "understanding": u.to_dict(),
            "tool_calls": turn["calls"],
            "grounding": turn["trace"].get("grounding"),
            "reply": outcome.to_dict() if outcome else None,
        }

    def _store(
        self,
        conv_id: str,
        user_id: str,
        turn: dict[str, Any],
        u: Understanding,
        outcome: ReplyOutcome,
        result: ChatTurn,
    ) -> None:
        with self.service.factory() as s:
            conv = open_conversation(s, user_id, conv_id)
            conv.state = turn["state"].to_dict()
            meta = self._meta(turn, u, outcome) | {
                "reply_source": result.reply_source,
                "timings": result.timings,
                "usage": result.usage,
            }
            # What a text-only client sees (and sends back): a later request finds this turn by it.
            add_message(s, conv, "assistant", result.text_with_places, meta)
            s.commit()

    def _store_aborted(
        self, conv_id: str, user_id: str, turn: dict[str, Any], u: Understanding, outcome: ReplyOutcome | None
    ) -> None:
        with self.service.factory() as s:
            conv = open_conversation(s, user_id, conv_id)
            conv.state = turn["state"].to_dict()  # the tool ran: what was shown and rejected holds
            meta = self._meta(turn, u, outcome) | {"aborted": "the reply was not delivered"}
            add_message(s, conv, "assistant", outcome.text if outcome else "", meta)
            s.commit()
