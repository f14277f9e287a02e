"""What a chat reply says of one shown item must be true of that item, and the person is "you":
the checks on their own, and a lying scripted model whose reply is regenerated, then replaced."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agent.chat.claims import item_claims
from agent.chat.guard import ReplyRules, check_reply
from core.settings import Settings
from domains.places import PLACES
from retrieval.types import Candidate
from tests.agent.fakes import FakeChatLLM
from tests.agent.test_chat_agent import WHEN, _agent
from tests.agent.test_pipeline import store  # noqa: F401

TOOL = """Places found, best first:
1. Taco Place: 0.7 km away, 12 visits; you often go for Mexican food at this hour.
2. Bagel Shop: 0.2 km away, 3 visits; it is new to you.
3. Art Museum: 1.5 km away; you like museums on weekends.
The search: within 2 km."""


@pytest.mark.parametrize(
    "reply",
    [
        "The Bagel Shop is just 0.2 km away.",
        "2. Bagel Shop is the closest, 0.2 km from you.",
        "1. Taco Place is the one you visit most, with 12 visits.",
        "All of them are within 2 km.",
        "I found three places for you; the first one fits your evening habit.",
    ],
)
def test_true_claims_pass(reply: str) -> None:
    assert item_claims(reply, TOOL, "somewhere to eat", superlatives=PLACES.superlatives) == []


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("The Bagel Shop is 0.7 km away.", "says 0.7 of 2."),  # the distance of another item
        ("1. Taco Place is the closest option.", "the closest"),
        ("The second one, 2. Bagel Shop, is the one you visit most.", "most visited"),
        ("The third place is the nearest, 1.5 km away.", "the closest"),
        ("Taco Place suits them well.", "wrong person"),
        ("It was my last stop before this.", "wrong person"),
        ("I gave the museum 5 stars.", "wrong person"),
    ],
)
def test_false_claims_are_caught(reply: str, problem: str) -> None:
    problems = item_claims(reply, TOOL, "somewhere to eat", superlatives=PLACES.superlatives)
    assert any(problem in p for p in problems), problems


def test_a_sentence_still_being_written_is_not_judged_yet() -> None:
    assert item_claims("The Bagel Shop is 0.7", TOOL, "", partial=True) == []
    assert item_claims("The Bagel Shop is 0.7 km away. And", TOOL, "", partial=True)


def test_the_reply_guard_applies_the_item_claims() -> None:
    rules = ReplyRules(
        TOOL,
        "somewhere to eat",
        3,
        {"Taco Place", "Bagel Shop", "Art Museum"},
        superlatives=PLACES.superlatives,
    )
    assert check_reply("2. Bagel Shop is the closest.", rules) == []
    assert any("closest" in p for p in check_reply("1. Taco Place is the closest.", rules))


def test_a_lying_model_is_regenerated_then_replaced(
    store: sessionmaker[Session],  # noqa: F811
    settings: Settings,
    candidates: list[Candidate],
) -> None:
    """A scripted model that calls the farthest shown place the closest, then speaks of the person
    as "them": both replies fail the claims check; the template answers."""
    llm = FakeChatLLM(
        intents=[{"action": "recommend"}],
        replies=["3. Park is the closest of them all.", "The first place suits them."],
    )
    agent, _ = _agent(store, settings, candidates, llm)
    out = agent.respond("u1", "where to?", when=WHEN)
    assert out.reply_source == "template" and out.reply.startswith("Here are my suggestions")
    assert any("failed the checks twice" in n for n in out.notes)
