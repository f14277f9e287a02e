"""The chat writes feedback only on the person's own "not that one" words, about the item the
conversation is about, says what it stored, and can take it back; with the LLM's form (a scripted
fake that makes the confusions the real model made) and with the rules."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.chat.intent import intent_json_schema
from agent.chat.state import ChatState
from agent.chat.tools import TOOLS
from core.models import Event
from core.settings import Settings
from retrieval.types import Candidate
from tests.agent.fakes import FakeChatLLM
from tests.agent.test_chat_agent import WHEN, _agent
from tests.agent.test_pipeline import store  # noqa: F401


def _feedback(store: sessionmaker[Session]) -> list[str | None]:  # noqa: F811
    with store() as s:
        return [
            e.item_id for e in s.scalars(select(Event).where(Event.kind == "feedback").order_by(Event.ts))
        ]


def _llm(*intents: dict[str, Any]) -> FakeChatLLM:
    return FakeChatLLM(intents=list(intents), replies=["Here you go."] * len(intents))


@pytest.mark.parametrize("llm_on", [True, False])
def test_no_pizza_is_an_exclusion_never_a_rejection(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
    llm_on: bool,
) -> None:
    """The model read "no pizza" as "not that one" and a place was hidden for a month (6 of 6)."""
    llm = _llm({"action": "recommend"}, {"action": "reject", "item": 1, "avoid": ["pizza"]})
    agent, _ = _agent(store, settings, candidates, llm, llm=llm_on)
    first = agent.respond("u1", "somewhere to eat", when=WHEN)
    out = agent.respond("u1", "no pizza", first.conversation_id, when=WHEN)
    assert _feedback(store) == []
    assert out.action == "recommend" and out.items


@pytest.mark.parametrize("llm_on", [True, False])
def test_not_that_one_after_why_the_second_turns_down_the_second(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
    llm_on: bool,
) -> None:
    llm = _llm({"action": "recommend"}, {"action": "explain", "item": 2}, {"action": "reject", "item": 1})
    agent, retriever = _agent(store, settings, candidates, llm, llm=llm_on)
    first = agent.respond("u1", "where to?", when=WHEN)
    second = first.items[1]
    agent.respond("u1", "why the second one?", first.conversation_id, when=WHEN)
    # the model's form points at item 1; the conversation is about the one just explained
    out = agent.respond("u1", "not that one", first.conversation_id, when=WHEN)
    assert out.action == "reject" and _feedback(store) == [second["item_id"]]
    assert second["item_id"] in retriever.contexts[-1].exclude_items
    # said, whoever wrote the reply (the template, or after the model's words)
    assert second["label"] in out.reply and "won't suggest" in out.reply


def test_a_rejection_with_nothing_to_point_at_asks_and_writes_nothing(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    agent, _ = _agent(store, settings, candidates, _llm(), llm=False)
    first = agent.respond("u1", "where to?", when=WHEN)
    out = agent.respond("u1", "not that one", first.conversation_id, when=WHEN)
    assert _feedback(store) == [] and "Which one do you mean?" in out.reply


@pytest.mark.parametrize("llm_on", [True, False])
def test_a_rejection_is_listed_and_can_be_taken_back(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
    llm_on: bool,
) -> None:
    llm = _llm(
        {"action": "recommend"},
        {"action": "reject", "item": 2},
        {"action": "recommend", "wish": "fine"},  # the real model's reading of "that one was fine"
        {"action": "undo"},
        {"action": "recommend"},
    )
    agent, retriever = _agent(store, settings, candidates, llm, llm=llm_on)
    first = agent.respond("u1", "where to?", when=WHEN)
    second = first.items[1]
    agent.respond("u1", "not the second one", first.conversation_id, when=WHEN)
    assert _feedback(store) == [second["item_id"]]
    back = agent.respond("u1", "actually, that one was fine", first.conversation_id, when=WHEN)
    assert back.action == "undo" and _feedback(store) == []
    assert "took back" in back.reply and second["label"] in back.reply
    again = agent.respond("u1", "actually, that one was fine", first.conversation_id, when=WHEN)
    assert again.action == "undo" and "nothing to take back" in again.reply.lower() or llm_on
    assert _feedback(store) == []
    nxt = agent.respond("u1", "where to?", first.conversation_id, when=WHEN)
    assert nxt.items and second["item_id"] not in retriever.contexts[-1].exclude_items


def test_undo_is_offered_to_the_model_only_when_something_was_stored() -> None:
    none = intent_json_schema("actually, that one was fine", 3, ChatState(), TOOLS.names)
    assert "undo" not in none["properties"]["action"]["enum"]
    stored = ChatState(written=[{"event_id": "e1", "item_id": "i1", "label": "Bar"}])
    some = intent_json_schema("actually, that one was fine", 3, stored, TOOLS.names)
    assert "undo" in some["properties"]["action"]["enum"]


@pytest.mark.parametrize("llm_on", [True, False])
def test_what_else_shows_other_items_and_writes_nothing(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
    llm_on: bool,
) -> None:
    llm = _llm({"action": "recommend"}, {"action": "recommend"}, {"action": "recommend"})
    agent, retriever = _agent(store, settings, candidates, llm, llm=llm_on)
    first = agent.respond("u1", "where to?", when=WHEN)
    shown = {i["item_id"] for i in first.items}
    more = agent.respond("u1", "ok, what else would you suggest?", first.conversation_id, when=WHEN)
    assert more.action == "recommend" and more.items
    assert not shown & {i["item_id"] for i in more.items}
    assert shown <= set(retriever.contexts[-1].exclude_items) and _feedback(store) == []
    again = agent.respond("u1", "where to?", first.conversation_id, when=WHEN)
    assert shown & {i["item_id"] for i in again.items}  # only for that turn: nothing was rejected
