"""HTTP API: contract paths, one error shape, auth boundaries, traces, feedback, deletion."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.models import Event
from tests.api.conftest import Keys, bearer

WHEN = "2012-05-14T16:00:00Z"


def _rec(c: TestClient, key: str, user: str = "u1", **ctx: object) -> dict:
    r = c.post(
        "/v1/recommendations",
        headers=bearer(key),
        json={"user_id": user, "k": 5, "context": {"time": WHEN, **ctx}},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_health_and_openapi(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz").json()
    assert ready["db"]["ok"] and ready["retrieval"]["items"] > 40  # the visited part of the 60-place grid
    assert ready["llm"]["enabled"] is False
    assert any(d.startswith("llm: off") for d in ready["degraded"])  # what is degraded, and why
    paths = c.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/events",
        "/v1/recommendations",
        "/v1/recommendations/{recommendation_id}",
        "/v1/users/{user_id}/profile",
        "/v1/users/{user_id}",
        "/v1/chat",
        "/v1/chat/completions",
    ):
        assert p in paths
    assert c.get("/").status_code == 200 and "Chronotope" in c.get("/").text
    words = c.get("/v1/catalog").json()  # no key needed: the page names things by it
    assert words["domain"] == "places" and words["items"] == "places" and words["arguments"] == ["distance"]


def test_recommendation_and_its_trace(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    out = _rec(c, k.u1)
    assert out["ranker"] == "heuristic" and len(out["items"]) == 5
    assert all(i["sources"] and i["explanation"] for i in out["items"])
    assert out["explanation_source"] == "template"
    trace = c.get(f"/v1/recommendations/{out['recommendation_id']}", headers=bearer(k.support)).json()
    assert trace["items"] == [i["item_id"] for i in out["items"]]
    assert trace["ranker"] == "heuristic" and trace["profile_version"] == 1
    assert trace["candidates"] and {"sources", "feature_score", "features"} <= trace["candidates"][0].keys()
    cited = {f for i in out["items"] for f in i["fact_ids"]}
    assert cited and cited <= {f["id"] for f in trace["facts"]}
    assert "total_ms" in trace["timings"]
    # every item is named for the person, says who explained it and that the checker passed it
    for i in out["items"]:
        assert i["label"].startswith(i["category"] or "Place") and i["item_id"] not in i["label"]
        assert i["explained_by"] == "template" and i["checked"] is True
        e = trace["explanation"]["items"][i["item_id"]]
        assert e["verdict"]["ok"] and {x["id"] for x in e["evidence"]["evidence"]} >= set(i["fact_ids"])
    assert [c["label"] for c in trace["candidates"][:5]] == [i["label"] for i in out["items"]]
    recent = c.get("/v1/users/u1/recommendations", headers=bearer(k.u1)).json()["recommendations"][0]
    assert recent["labels"] == [i["label"] for i in out["items"]]


def test_metrics_count_explanations_and_requests(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    _rec(c, k.u1)
    text = c.get("/metrics").text
    assert 'chronotope_explanations_total{verdict="pass",writer="template"}' in text
    route = 'method="POST",route="/v1/recommendations",status="2xx"'
    assert f"chronotope_http_request_seconds_count{{{route}}}" in text
    assert "chronotope_llm_breaker_state" in text
    ready = c.get("/readyz").json()
    assert ready["llm"]["breaker"] == "closed" and "warm_up" in ready["llm"]
    prof = c.get("/v1/users/u1/profile", headers=bearer(k.u1)).json()
    assert "area A" not in prof["text"] and "text_raw" in prof  # areas named for the person


def test_readiness_says_what_really_serves(
    client_keys: tuple[TestClient, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reachable LLM behind an open breaker serves nothing: /readyz says the fallbacks serve;
    with the breaker closed it says the LLM does (and the rerank only where the policy has it)."""
    from api.routers import health

    c, _ = client_keys
    st = c.app.state.chronotope  # type: ignore[attr-defined]
    monkeypatch.setattr(
        health, "llm_status", lambda _s, timeout_s: {"enabled": True, "reachable": True, "base_url": "x"}
    )
    monkeypatch.setattr(st.chat, "llm_on", True)
    breaker = st.services.llm.breaker
    for _ in range(breaker.failures_to_open):
        breaker.failure()
    try:
        ready = c.get("/readyz").json()
        assert ready["llm"]["breaker"] == "open"
        assert ready["chat"] == {"understanding": "rules", "replies": "template"}
        assert ready["explanations"] == "template"
        assert "circuit breaker open" in " ".join(ready["degraded"])
    finally:
        breaker.success()
    ready = c.get("/readyz").json()
    assert ready["chat"] == {"understanding": "llm", "replies": "llm"}
    assert not any(d.startswith("llm") for d in ready["degraded"])
    if st.pipeline.reranker is None:
        assert ready["ranker_in_use"] == "features (no LLM reranker)"
    else:
        assert ready["ranker_in_use"].startswith(("llm+features", "features (llm.rerank_when=never)"))


def test_filters_through_the_api(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    out = _rec(c, k.u1, exclude_categories=["Coffee Shop"], lat=40.71, lon=-73.99, max_distance_km=1.5)
    assert out["items"] and all(i["category"] != "Coffee Shop" for i in out["items"])


def test_an_empty_list_says_which_filter_emptied_it(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    out = _rec(c, k.u1, lat=10.0, lon=10.0, max_distance_km=0.5)  # nowhere near the catalog
    assert out["items"] == []
    assert any("filter" in n and "left none" in n for n in out["notes"]), out["notes"]
    trace = c.get(f"/v1/recommendations/{out['recommendation_id']}", headers=bearer(k.support)).json()
    assert trace["request"]["emptied_by"]["filter"] == "max_distance_km"


INTERNALS = re.compile(r"\[[a-z_]+\.[a-z_0-9.]+\]|Error\b|Exception|95% CI|MRR|`chronotope")


def test_texts_a_person_reads_carry_no_internals(client_keys: tuple[TestClient, Keys]) -> None:
    """Explanations without their [fact.id] citations (fact_ids keep them), notes without
    exception names, intervals, commands or item ids."""
    c, k = client_keys
    out = _rec(c, k.u1)
    ids = {i["item_id"] for i in out["items"]}
    for i in out["items"]:
        assert i["explanation"] and not INTERNALS.search(i["explanation"]), i["explanation"]
        assert i["fact_ids"]
    for n in out["notes"]:
        assert not INTERNALS.search(n) and not any(i in n.split() for i in ids), n
    chat = c.post("/v1/chat", headers=bearer(k.u1), json={"user_id": "u1", "message": "a park"}).json()
    for text in [chat["reply"], *chat["notes"], *[i["explanation"] or "" for i in chat["items"]]]:
        assert not INTERNALS.search(text), text


def test_auth_boundaries(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    out = _rec(c, k.u1)
    rid = out["recommendation_id"]
    assert c.get("/v1/users/u1/profile").status_code == 401
    assert c.get("/v1/users/u1/profile", headers=bearer("ck_wrong")).status_code == 401
    assert c.get("/v1/users/u2/profile", headers=bearer(k.u1)).status_code == 403
    assert c.get(f"/v1/recommendations/{rid}", headers=bearer(k.u2)).status_code == 403
    assert c.post("/v1/recommendations", headers=bearer(k.u2), json={"user_id": "u1"}).status_code == 403
    assert c.get("/v1/users/u2/profile", headers=bearer(k.support)).status_code == 200
    assert c.get(f"/v1/recommendations/{rid}", headers=bearer(k.support)).status_code == 200
    assert c.post("/v1/events", headers=bearer(k.support), json={"events": []}).status_code == 403
    assert c.delete("/v1/users/u2", headers=bearer(k.support)).status_code == 403
    conv = c.post("/v1/chat", headers=bearer(k.u1), json={"user_id": "u1", "message": "a museum"}).json()
    cid = conv["conversation_id"]
    assert c.get(f"/v1/conversations/{cid}", headers=bearer(k.u2)).status_code == 403
    assert c.get(f"/v1/conversations/{cid}", headers=bearer(k.support)).status_code == 200
    r = c.post(
        "/v1/chat", headers=bearer(k.u2), json={"user_id": "u2", "message": "hi", "conversation_id": cid}
    )
    assert r.status_code == 403
    body = r.json()
    assert set(body["error"]) == {"message", "type", "code"} and body["error"]["code"] == "forbidden"


def test_feedback_is_stored_as_a_linked_event(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    out = _rec(c, k.u1)
    rid, item = out["recommendation_id"], out["items"][1]["item_id"]
    r = c.post(
        f"/v1/recommendations/{rid}/feedback",
        headers=bearer(k.u1),
        json={"kind": "rejected", "item_id": item, "reason": "too far"},
    )
    assert r.status_code == 201
    with c.app.state.chronotope.factory() as s:  # type: ignore[attr-defined]
        ev = s.scalars(select(Event).where(Event.recommendation_id == rid)).one()
        assert ev.kind == "feedback" and ev.item_id == item and ev.text == "too far"
    bad = c.post(
        f"/v1/recommendations/{rid}/feedback",
        headers=bearer(k.u1),
        json={"kind": "rejected", "item_id": "zzz"},
    )
    assert bad.status_code == 404


def test_ingest_events_and_delete_user(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    events = [
        {"user_id": "u9", "item_id": "p0", "timestamp": "2012-05-10T12:00:00Z"},
        {"user_id": "u9", "item_id": "p0", "timestamp": "2012-05-10T12:00:00Z"},
        {"user_id": "u9", "timestamp": "not a time", "item_id": "p4"},
    ]
    r = c.post("/v1/events", headers=bearer(k.admin), json={"events": events})
    assert r.status_code == 200
    assert r.json()["inserted"] == 1 and r.json()["duplicates"] == 1 and r.json()["errors"][0]["index"] == 2
    again = c.post("/v1/events", headers=bearer(k.admin), json={"events": events[:1]}).json()
    assert again["inserted"] == 0 and again["already_present"] == 1
    items = _rec(c, k.admin, user="u9")["items"]  # the retriever saw the new event without a restart:
    assert any(i["item_id"] == "p0" and "repeat" in i["sources"] for i in items)
    assert c.delete("/v1/users/u9", headers=bearer(k.admin)).json() == {"deleted": "u9"}
    assert c.get("/v1/users/u9/profile", headers=bearer(k.admin)).status_code == 404
    with c.app.state.chronotope.factory() as s:  # type: ignore[attr-defined]
        assert s.scalars(select(Event).where(Event.user_id == "u9")).all() == []


def test_bad_input_gets_clear_4xx(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    h = {**bearer(k.u1), "Content-Type": "application/json"}
    r = c.post("/v1/recommendations", headers=h, content=b"{not json")
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"
    r = c.post("/v1/recommendations", headers=h, json={"user_id": "u1", "k": "many"})
    assert r.status_code == 422 and "k" in r.json()["error"]["message"]
    r = c.post("/v1/recommendations", headers=h, json={"user_id": "u1", "context": {"lat": 95}})
    assert r.status_code == 422
    r = c.post("/v1/recommendations", headers=h, json={"user_id": "u1", "context": {"lat": 40.7}})
    assert r.status_code == 400 and "both lat and lon" in r.json()["error"]["message"]
    r = c.post("/v1/events", headers=h, content=b"x" * 3_000_000)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    # the same without a Content-Length header (a chunked upload)
    r = c.post("/v1/events", headers=h, content=(b"x" * 100_000 for _ in range(30)))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = c.post(
        "/v1/events",
        headers={**bearer(k.admin), "Content-Type": "application/json"},
        content=(b for b in [b'{"events": ', b"[]}"]),
    )
    assert r.status_code == 200, r.text  # a small chunked body is replayed intact
    assert c.get("/v1/recommendations/nope", headers=bearer(k.admin)).status_code == 404
    assert c.get("/v1/nothing", headers=bearer(k.admin)).json()["error"]["code"] == "not_found"
    # an unknown user is a clear 404 (the service's cold start stays for the chat's own callers)
    r = c.post("/v1/recommendations", json={"user_id": "stranger", "use_llm": False}, headers=bearer(k.admin))
    assert r.status_code == 404 and "POST /v1/events" in r.json()["error"]["message"]


def test_profile_and_plots(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    p = c.get("/v1/users/u1/profile", headers=bearer(k.u1)).json()
    assert p["text"] and p["facts"] and p["versions"][0]["version"] == 1
    png = c.get(p["plots"][0], headers=bearer(k.u1))
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get("/v1/users/u1/profile/plots/nope.png", headers=bearer(k.u1)).status_code == 404
    recent = c.get("/v1/users/u1/recommendations", headers=bearer(k.support)).json()
    assert isinstance(recent["recommendations"], list)


def test_request_ids(client_keys: tuple[TestClient, Keys]) -> None:
    c, _ = client_keys
    assert c.get("/healthz", headers={"x-request-id": "abc"}).headers["x-request-id"] == "abc"
    assert len(c.get("/healthz").headers["x-request-id"]) == 16
    json.dumps({})  # keep json imported for readability of payload tests


def test_out_of_range_times_are_refused(client_keys: tuple[TestClient, Keys]) -> None:
    """Found by schemathesis: year 9999 overflowed the ranker's nanosecond clock (a 500)."""
    c, k = client_keys
    for t in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"):
        r = c.post(
            "/v1/recommendations", headers=bearer(k.u1), json={"user_id": "u1", "context": {"time": t}}
        )
        assert r.status_code == 422 and "time must be between" in r.json()["error"]["message"]


def test_wrong_method_and_unhandled_errors_keep_the_error_shape(
    client_keys: tuple[TestClient, Keys],
) -> None:
    c, k = client_keys
    r = c.put("/v1/recommendations", headers=bearer(k.admin), json={})
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    # an unexpected exception is logged and answered as a 500 in the same shape, never a traceback
    from types import SimpleNamespace

    from api.app import create_app

    app = create_app(c.app.state.chronotope.settings, state=SimpleNamespace())  # type: ignore[attr-defined,arg-type]

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c2:
        r = c2.get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": {"message": "internal error", "type": "server_error", "code": "internal_error"}
    }
    assert "x-request-id" in {h.lower() for h in r.headers}


def test_structured_json_request_logs(
    client_keys: tuple[TestClient, Keys], capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import logging

    from api.app import JsonFormatter, configure_logging

    c, k = client_keys
    configure_logging()
    try:
        c.get("/healthz", headers={"X-Request-ID": "log-check-1"})
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    finally:
        for name in ("chronotope", "agent", "retrieval"):
            lg = logging.getLogger(name)
            lg.handlers = [h for h in lg.handlers if not isinstance(h.formatter, JsonFormatter)]
            lg.propagate = True
            lg.setLevel(logging.NOTSET)
    req = [x for x in lines if x.get("request_id") == "log-check-1"]
    assert req and req[0]["path"] == "/healthz" and req[0]["status"] == 200 and req[0]["level"] == "INFO"


def test_a_request_without_a_time_asks_where_next(client_keys: tuple[TestClient, Keys]) -> None:
    c, k = client_keys
    r = c.post("/v1/recommendations", headers=bearer(k.u1), json={"user_id": "u1", "k": 3})
    assert r.status_code == 200, r.text
    trace = c.get(f"/v1/recommendations/{r.json()['recommendation_id']}", headers=bearer(k.support)).json()
    assert trace["request"]["context"]["time_known"] is False
    assert trace["candidates"][0]["features"].get("query_time_known", 0) == 0  # zero: not stored
    timed = _rec(c, k.u1)
    trace = c.get(f"/v1/recommendations/{timed['recommendation_id']}", headers=bearer(k.support)).json()
    assert trace["request"]["context"]["time_known"] is True
    assert trace["candidates"][0]["features"]["query_time_known"] == 1
