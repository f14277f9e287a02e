"""The scripted-conversation evaluation: its bank names only real NYC kinds, and its judge counts
unasked feedback, wrong actions, thin lists and claims the served items do not support."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd

from domains.places import PLACES
from evaluation.chat_conversations import (
    Expect,
    _judge,
    load_conversations,
    summarize_conversations,
)
from tests.conftest import DATASETS


def test_the_bank_names_only_kinds_of_the_catalog() -> None:
    kinds = set(
        pd.read_csv(DATASETS / "checkins_train.csv", usecols=["POI_catname"]).POI_catname.dropna().unique()
    )
    convs = load_conversations()
    assert len(convs) >= 12
    named = {k for c in convs for t in c.turns for k in t.accept | t.exclude}
    assert named <= kinds, named - kinds
    assert any(t.feedback == "undone" for c in convs for t in c.turns)


def _world(cats: dict[str, str]) -> Any:
    return SimpleNamespace(categories=cats, services=SimpleNamespace(domain=PLACES))


def _turn(action: str, items: list[tuple[str, str]], reply: str = "Here.", source: str = "template") -> Any:
    return SimpleNamespace(
        action=action,
        items=[{"item_id": i, "label": label, "details": []} for i, label in items],
        reply=reply,
        reply_source=source,
        constraints={},
        notes=[],
        understood_by="llm",
        timings={"total_ms": 10.0},
    )


def test_the_judge_counts_what_was_not_asked_for() -> None:
    cats = {"a": "Pizza Place", "b": "Diner", "c": "Bar"}
    w = _world(cats)
    exp = Expect("no pizza", action="recommend", feedback="none", exclude=frozenset({"Pizza Place"}))
    # the confusion the issue reports: "no pizza" stored a rejection of the first place shown
    bad = _judge(w, "c", 2, exp, _turn("reject", [("b", "Diner")]), ["a", "b"], [], ["a"], 5)
    assert bad.unasked_feedback == 1 and bad.feedback_ok is False and bad.action_ok is False
    good = _judge(w, "c", 2, exp, _turn("recommend", [("b", "Diner")]), ["a", "b"], [], [], 5)
    assert good.unasked_feedback == 0 and good.feedback_ok and good.action_ok
    want = Expect("not that one", action="reject", item=2, feedback=2)
    wrong_item = _judge(w, "c", 3, want, _turn("reject", []), ["a", "b"], [], ["a"], 5)
    assert wrong_item.feedback_ok is False and wrong_item.unasked_feedback == 1
    undo = Expect("actually fine", action="undo", feedback="undone")
    assert _judge(w, "c", 3, undo, _turn("undo", []), ["a"], ["a"], [], 5).feedback_ok


def test_the_judge_checks_full_lists_and_claims() -> None:
    cats = {"a": "Diner", "b": "Diner", "c": "Bar"}
    w = _world(cats)
    exp = Expect("dinner", action="recommend", accept=frozenset({"Diner"}))
    items = [("a", "Diner"), ("b", "Diner"), ("c", "Bar")]
    t = _judge(w, "c", 1, exp, _turn("recommend", items), [], [], [], 3)
    assert t.full and t.understood
    thin = _judge(w, "c", 1, exp, _turn("recommend", items[:1]), [], [], [], 3)
    assert thin.full is False and thin.understood is False
    lying = _turn("recommend", items, reply="It suits them well.", source="llm")
    assert _judge(w, "c", 1, exp, lying, [], [], [], 3).false_claims
    summary = summarize_conversations([t, thin])
    assert (
        summary["kind wishes with a full list"] == 0.5 and summary["unasked feedback stored (must be 0)"] == 0
    )
