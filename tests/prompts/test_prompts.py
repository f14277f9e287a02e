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
    },
    "explain": {
        "facts": [{"id": "a.b", "statement": "s"}],
        "item": "x",
        "signals": "y",
        "when": "w",
        "wish": None,
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
