"""Per-key rate limits: 429 with Retry-After past the burst, per key, health never limited."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_key
from api.rate_limit import RateLimiter
from core.db import open_store
from core.errors import RateLimitedError
from core.settings import Settings
from tests.api.conftest import bearer, seed


def test_a_key_past_its_burst_gets_429_with_retry_after(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHRONOTOPE_LLM__ENABLED", "false")
    monkeypatch.setenv("CHRONOTOPE_RETRIEVAL__RANKER", "heuristic")
    monkeypatch.setenv("CHRONOTOPE_API__RATE_LIMIT_PER_S", "0.2")
    monkeypatch.setenv("CHRONOTOPE_API__RATE_LIMIT_BURST", "3")
    settings = Settings(env="test")
    _, factory = open_store(settings)
    seed(factory, settings.data_dir)
    with factory() as s:
        u1, u2 = create_key(s, "user", "u1"), create_key(s, "user", "u2")
        s.commit()
    with TestClient(create_app(settings, use_llm=False)) as c:
        codes = [c.get("/v1/users/u1/profile", headers=bearer(u1)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/users/u1/profile", headers=bearer(u1))
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 5  # one token every 5 s
        assert c.get("/v1/users/u2/profile", headers=bearer(u2)).status_code == 200  # another key
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_the_bucket_refills_and_zero_means_no_limit() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 2.0, clock=lambda: now[0])
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(RateLimitedError) as exc:
        limiter.check("k")
    assert exc.value.retry_after_s == pytest.approx(0.5)
    now[0] = 0.5  # one token back
    limiter.check("k")
    unlimited = RateLimiter(0, 1)
    for _ in range(1000):
        unlimited.check("k")
