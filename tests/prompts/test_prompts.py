"""Every prompt file renders; a missing variable is an error, not a blank."""

from __future__ import annotations

import jinja2
import pytest

from prompts.loader import available, load_prompt

VARS = {
    "rerank": {
        "profile_text": "p",
        "when": "Monday 12:00",
        "where": None,
        "wish": None,
        "candidates": [{"label": "A", "text": "x"}, {"label": "B", "text": "y"}],
        "labels": ["A", "B"],
        "item": "place",
    },
    "chat_understand": {
        "kinds": "Bar, Park",
        "profile": "Most active around 19:00.",
        "history": [{"role": "user", "content": "a bar"}, {"role": "assistant", "content": "1. Bar"}],
        "search": 'wants "a bar"',
        "shown": ["Bar", "Pub"],
        "message": "closer",
        "actions": '"recommend" = they want places; "chat" = anything else.',
        "domain_fields": ['distance: "near", "closer", "farther" or "any".'],
        "item": "place",
        "items": "places",
        "had": "been to",
        "kind_word": "kind of place",
        "kinds_word": "kinds of places",
    },
    "chat_reply": {
        "message": "a bar",
        "results": "Results, best first:\n1. Bar",
        "task": "Reply.",
        "role": "places to go in the user's city",
        "items": "places",
        "named_by": "kind",
        "example": "Taco Place",
    },
    "explain": {
        "label": "Bar you have been to 3 times",
        "evidence": [{"id": "item.visits", "text": "You have been here 3 times."}],
        "wish": None,
        "item": "place",
        "items": "places",
        "kinds": "kinds of place",
    },
}


def test_every_prompt_renders() -> None:
    assert set(available()) == set(VARS), "add render variables for the new prompt here"
    for name in available():
        p = load_prompt(name)
        msgs = p.render(**VARS[name])
        assert msgs[0]["role"] == "system" and all(m["content"] for m in msgs)
        assert p.version and p.id == f"{name}@{p.version}"


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError):
        load_prompt("rerank").render(profile_text="p")


def test_chat_examples_are_not_the_evaluation_bank() -> None:
    """The understanding prompt's few-shot examples must not contain the evaluation's requests
    (nor the other way round): the chat evaluation measures understanding, not recall."""
    import re

    from evaluation.chat_bank import load_bank

    prompt = " ".join(text for _, text in load_prompt("chat_understand").templates).lower()
    words = re.findall(r"[a-z']+", prompt)
    n = 5  # five words in a row: a shared phrase, not a shared "I want to go"
    shingles = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    bank = load_bank()
    texts = [w for c in bank.categories.values() for w in c.wishes] + [r.text for r in bank.requests]
    texts += [e.text for e in bank.exclusions]
    for t in texts:
        tw = re.findall(r"[a-z']+", t.lower())
        grams = [" ".join(tw[i : i + n]) for i in range(len(tw) - n + 1)]
        overlap = [g for g in grams if g in shingles]
        assert not overlap, (t, overlap)
        if len(tw) <= 3:
            assert f'"{t.lower()}"' not in prompt, t
