"""Explanations: cited fact ids validated against the user's profile; template fallback."""

from __future__ import annotations

from typing import Any

import pytest

from agent.llm.explain import Explainer, template_explanations, validate
from core.settings import Settings
from mining import UserProfile
from retrieval.types import Candidate, RequestContext
from tests.agent.fakes import FakeClient, text_response


def test_validate(profile: UserProfile) -> None:
    text, cited = validate(
        "You go at noon [rhythm.peak_hours]. It is on your route [trans.places]. Extra.", profile
    )
    assert cited == ["rhythm.peak_hours", "trans.places"] and "Extra" not in text
    with pytest.raises(ValueError, match="unknown facts"):
        validate("Near home [space.home].", profile)  # exists but has no data behind it
    with pytest.raises(ValueError, match="unknown facts"):
        validate("Because [made.up].", profile)
    with pytest.raises(ValueError, match="cites no fact"):
        validate("Because it is nice.", profile)


def test_llm_explanations_with_fallback_per_item(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    def handler(kw: dict[str, Any]) -> Any:
        if "Recommended: Place i0," in kw["messages"][-1]["content"]:
            return text_response("You usually go out at noon [rhythm.peak_hours].")
        return text_response("Trust me [invented.fact].")

    ex = Explainer(Settings(env="test"), client=FakeClient(handler)).explain(profile, ctx, candidates[:2])
    cafe, office = ex.items["i0"], ex.items["i1"]
    assert cafe.source == "llm" and cafe.fact_ids == ["rhythm.peak_hours"]
    assert office.source == "template" and "invented.fact" in (office.rejected or "")
    assert set(office.fact_ids) <= profile.fact_ids
    assert ex.source == "mixed" and ex.prompt_version == "explain@1"


def test_llm_down_gives_templates(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    def boom(kw: dict[str, Any]) -> Any:
        raise TimeoutError("slow")

    ex = Explainer(Settings(env="test"), client=FakeClient(boom)).explain(profile, ctx, candidates[:3])
    assert ex.source == "template" and len(ex.errors) == 3
    for e in ex.items.values():
        assert e.text and set(e.fact_ids) <= {f.id for f in profile.facts if f.sufficient}


def test_templates_cite_only_data_backed_facts(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    ex = template_explanations(profile, ctx, candidates)
    for e in ex.items.values():
        assert e.fact_ids and "space.home" not in e.fact_ids  # insufficient facts are never cited
    empty = template_explanations(None, ctx, candidates[:1])
    assert empty.items["i0"].text and empty.items["i0"].fact_ids == []
