"""The authorization matrix, generated from the OpenAPI document: every route × every kind of
caller × the caller's own user or another's. A route added without an entry here fails the test."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from mining.plots import PLOTS
from tests.api.conftest import Keys, bearer

WHEN = "2012-06-04T18:00:00+00:00"
OPEN = {"GET /healthz", "GET /readyz", "GET /v1/catalog"}  # the catalog: its words, no user data
# who may call each route on user u1's data: "any" key, u1 itself ("own"), "support", "admin"
POLICY: dict[str, set[str]] = {
    "POST /v1/events": {"admin"},
    "GET /v1/items/{item_id}": {"any"},
    "GET /v1/items": {"any"},
    "POST /v1/recommendations": {"own", "admin"},
    "GET /v1/recommendations/{recommendation_id}": {"own", "support", "admin"},
    "POST /v1/recommendations/{recommendation_id}/feedback": {"own", "admin"},
    "GET /v1/users/{user_id}/recommendations": {"own", "support", "admin"},
    "GET /v1/users/{user_id}/profile": {"own", "support", "admin"},
    "GET /v1/users/{user_id}/profile/plots/{name}.png": {"own", "support", "admin"},
    "GET /v1/users": {"any"},  # scoped: a user key lists only itself (checked below)
    "DELETE /v1/users/{user_id}": {"admin"},
    "POST /v1/chat": {"own", "admin"},
    "GET /v1/conversations/{conversation_id}": {"own", "support", "admin"},
    "POST /v1/chat/completions": {"own", "admin"},
    "GET /v1/users/{user_id}/feedback": {"own", "support", "admin"},
    "GET /v1/admin/experiments": {"admin"},
    "GET /v1/admin/experiments/report": {"admin"},
}
CALLERS = ("none", "own", "other", "support", "admin")


@pytest.fixture
def world(client_keys: tuple[TestClient, Keys]) -> tuple[TestClient, Keys, dict[str, str]]:
    """u1's recommendation, conversation and a place, to aim the calls at."""
    c, k = client_keys
    rec = c.post(
        "/v1/recommendations", headers=bearer(k.u1), json={"user_id": "u1", "k": 3, "context": {"time": WHEN}}
    ).json()
    conv = c.post(
        "/v1/chat", headers=bearer(k.u1), json={"user_id": "u1", "message": "a bar", "time": WHEN}
    ).json()
    ids = {
        "recommendation_id": rec["recommendation_id"],
        "item_id": rec["items"][0]["item_id"],
        "conversation_id": conv["conversation_id"],
    }
    return c, k, ids


def _request(route: str, ids: dict[str, str]) -> tuple[str, str, dict[str, Any] | None]:
    method, path = route.split(" ", 1)
    path = path.format(user_id="u1", name=next(iter(PLOTS)), **ids)
    body: dict[str, Any] | None = {
        "POST /v1/events": {"events": [{"user_id": "u1", "item_id": ids["item_id"], "timestamp": WHEN}]},
        "POST /v1/recommendations": {"user_id": "u1", "k": 2, "context": {"time": WHEN}},
        "POST /v1/recommendations/{recommendation_id}/feedback": {
            "kind": "clicked",
            "item_id": ids["item_id"],
        },
        "POST /v1/chat": {"user_id": "u1", "message": "somewhere quiet", "time": WHEN},
        "POST /v1/chat/completions": {"user": "u1", "messages": [{"role": "user", "content": "a bar"}]},
    }.get(route)
    return method, path, body


def test_every_route_is_in_the_matrix(world: tuple[TestClient, Keys, dict[str, str]]) -> None:
    c, _, _ = world
    spec = c.get("/openapi.json").json()
    routes = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(POLICY) | OPEN


def test_authorization_matrix(world: tuple[TestClient, Keys, dict[str, str]]) -> None:
    c, k, ids = world
    keys: dict[str, str | None] = {
        "none": None,
        "own": k.u1,
        "other": k.u2,
        "support": k.support,
        "admin": k.admin,
    }
    wrong: list[str] = []
    for route, allowed in POLICY.items():
        for caller in CALLERS:
            if route == "DELETE /v1/users/{user_id}" and caller == "admin":
                continue  # allowed, and it would delete the user the other rows aim at (test_api covers it)
            method, path, body = _request(route, ids)
            key = keys[caller]
            r = c.request(method, path, headers=bearer(key) if key else {}, json=body)
            ok = caller != "none" and ("any" in allowed or caller in allowed)
            refused = 401 if caller == "none" else 403
            passed = r.status_code not in (401, 403) if ok else r.status_code == refused
            if not passed or r.status_code >= 500:
                wrong.append(f"{caller:8} {route}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
    for route in OPEN:  # health and readiness need no key
        assert c.get(route.split(" ", 1)[1]).status_code == 200
    assert c.get("/v1/users", headers=bearer(k.u2)).json()["users"] == ["u2"]  # nobody else's id
