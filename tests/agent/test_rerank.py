"""LLM rerank logic: labels and logprobs, position-bias orders, blend, permutation, fallbacks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agent.llm.breaker import CircuitBreaker
from agent.llm.rerank import FALLBACK_RANKER, LLMReranker, label_logprobs, orders
from core.settings import Settings
from domains.places import PLACES
from mining import UserProfile
from retrieval.types import Candidate, RequestContext
from tests.agent.conftest import llm_session
from tests.agent.fakes import FakeClient, logprob_response

candidate_text = PLACES.llm_text


def _settings(**llm: Any) -> Settings:
    return Settings(env="test", llm={"retries": 0, "blend_weight": 1.0, **llm})


def test_label_logprobs_reads_every_label_and_floors_missing() -> None:
    resp = logprob_response(" B", {" B": -0.1, "A": -2.0, "zzz": -0.5})
    lp = label_logprobs(resp, ["A", "B", "C"])
    assert lp["B"] == -0.1 and lp["A"] == -2.0 and lp["C"] == -30.0


def test_orders_cover_positions() -> None:
    o = orders(5, 3)
    assert o[0] == [0, 1, 2, 3, 4] and o[1] == [4, 3, 2, 1, 0] and len(o) == 3
    assert all(sorted(x) == [0, 1, 2, 3, 4] for x in o)


def test_rerank_follows_the_model_and_is_a_permutation(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    def handler(kw: dict[str, Any]) -> Any:
        # The model prefers whichever label shows the Museum candidate.
        text = kw["messages"][-1]["content"]
        label = next(
            line.split(".")[0].strip() for line in text.splitlines() if "Museum" in line and ". " in line
        )
        return logprob_response(label, {label: -0.05, "A": -3.0, "B": -3.5})

    client = FakeClient(handler)
    s = _settings(rerank_orders=2, rerank_top_n=5)
    out = LLMReranker(s.llm, PLACES).rerank(llm_session(client, s), profile, ctx, candidates)
    assert out.error is None and out.ranker.startswith("llm(")
    assert out.candidates[0].category == "Museum"
    assert sorted(c.item_id for c in out.candidates) == sorted(c.item_id for c in candidates)
    assert [c.item_id for c in out.candidates[5:]] == [c.item_id for c in candidates[5:]]  # tail untouched
    assert len(client.calls) == 2  # two candidate orders
    call = client.calls[0]
    assert call["extra_body"] == {"structured_outputs": {"choice": ["A", "B", "C", "D", "E"]}}
    assert call["max_tokens"] == 1 and call["logprobs"] is True
    # fixed part first, candidates last (prefix caching)
    assert call["messages"][-1]["content"].index("Profile:") < call["messages"][-1]["content"].index("A. ")
    assert out.prompt_version == "rerank@3"


def test_rerank_never_invents_items(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    client = FakeClient(lambda kw: logprob_response("Z", {"Z": -0.01, "Q": -0.2}))  # not a label
    s = _settings()
    out = LLMReranker(s.llm, PLACES).rerank(llm_session(client, s), profile, ctx, candidates)
    assert out.ranker == FALLBACK_RANKER and "no label" in (out.error or "")
    assert [c.item_id for c in out.candidates] == [c.item_id for c in candidates]


def test_server_down_falls_back_and_breaker_opens(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    def boom(kw: dict[str, Any]) -> Any:
        raise ConnectionError("connection refused")

    client = FakeClient(boom)
    s = _settings()
    breaker = CircuitBreaker(failures_to_open=2, cooldown_s=60)
    rr = LLMReranker(s.llm, PLACES)
    for _ in range(2):  # each request its own session: one failed call each
        out = rr.rerank(llm_session(client, s, breaker), profile, ctx, candidates)
        assert out.ranker == FALLBACK_RANKER and "connection refused" in (out.error or "")
    calls = len(client.calls)
    out = rr.rerank(llm_session(client, s, breaker), profile, ctx, candidates)
    assert "circuit open" in (out.error or "") and len(client.calls) == calls  # no call while open
    assert [c.item_id for c in out.candidates] == [c.item_id for c in candidates]


def test_breaker_half_opens_after_cooldown() -> None:
    now = [0.0]
    b = CircuitBreaker(failures_to_open=1, cooldown_s=10, clock=lambda: now[0])
    b.failure()
    assert b.state == "open"
    now[0] = 11
    assert b.state == "half-open"
    b.success()
    assert b.state == "closed"


def test_disabled_llm_and_tiny_lists(
    profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    client = FakeClient(lambda kw: pytest.fail("must not call the LLM"))
    s = _settings()
    off = llm_session(client, s, enabled=False)
    out = LLMReranker(s.llm, PLACES).rerank(off, profile, ctx, candidates)
    assert out.ranker == FALLBACK_RANKER and out.error == "LLM disabled"
    out = LLMReranker(s.llm, PLACES).rerank(llm_session(client, s), profile, ctx, candidates[:1])
    assert out.error is None and len(out.candidates) == 1


def test_candidate_text_has_no_raw_coordinates(candidates: list[Candidate]) -> None:
    t = candidate_text(candidates[0])
    assert "40.75" not in t and "73.98" not in t and t.endswith("3 visits, 0.0 km")
    assert candidate_text(replace(candidates[0], features={})).endswith(
        "Midtown Manhattan, new"
    )  # no distance
    assert t.startswith(candidates[0].category or "") and "i0" not in t  # its kind, never its id
    unknown = candidate_text(Candidate(item_id="635", attrs={"lat": 40.75, "lon": -73.98}))
    assert unknown.startswith("unknown kind") and "635" not in unknown


def test_the_prompt_states_the_request_time_on_the_persons_clock(
    profile: UserProfile, candidates: list[Candidate]
) -> None:
    """12:30 written with +09:00 is 03:30 UTC; for a person at -05:00 that is 22:30 the evening
    before. The prompt says so once, not with the offset added twice."""
    from datetime import datetime, timedelta, timezone

    seen: list[str] = []

    def handler(kw: dict[str, Any]) -> Any:
        seen.append(kw["messages"][-1]["content"])
        return logprob_response("A", {"A": -0.1, "B": -1.0})

    s = _settings()
    when = datetime(2013, 2, 20, 12, 30, tzinfo=timezone(timedelta(hours=9)))
    LLMReranker(s.llm, PLACES).rerank(
        llm_session(FakeClient(handler), s),
        profile,
        RequestContext(time=when),
        candidates,
        utc_offset_min=-300,
    )
    assert "Tuesday 22:30" in seen[0]
