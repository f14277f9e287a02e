"""The LLM circuit breaker: a failed probe opens it for longer each time, an open circuit falls back
without queueing, and a successful warm-up closes it."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from agent.llm import warmup
from agent.llm.admission import LLMAdmission
from agent.llm.breaker import CircuitBreaker, breaker_for, reset_breakers
from agent.llm.gateway import LLMGateway
from core.settings import Settings
from tests.agent.fakes import FakeClient


def test_each_failed_probe_doubles_the_cooldown_up_to_the_cap() -> None:
    now = [0.0]
    b = CircuitBreaker(failures_to_open=2, cooldown_s=30, max_cooldown_s=100, clock=lambda: now[0])
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open"
    for cooldown in (30, 60, 100, 100):  # a person writing every half minute probes at most this often
        now[0] += cooldown - 1
        assert b.state == "open"
        now[0] += 1
        assert b.state == "half-open"
        b.before_call()  # this caller is the probe
        with pytest.raises(Exception, match="circuit open"):
            b.before_call()  # everyone else falls back meanwhile
        b.failure()
        assert b.state == "open"
    b_now = now[0]
    now[0] = b_now + 100
    b.before_call()
    b.success()  # the server is back: closed, and the next opening starts from the base cooldown
    assert b.state == "closed"
    b.failure()
    b.failure()
    now[0] += 30
    assert b.state == "half-open"


def test_an_open_circuit_falls_back_without_waiting_for_a_queue_slot() -> None:
    b = CircuitBreaker(failures_to_open=1, cooldown_s=60)
    adm = LLMAdmission(max_in_flight=1, max_waiting=4)
    gw = LLMGateway(FakeClient(lambda kw: pytest.fail("no call")), b, "m", adm)
    with adm.slot(time.monotonic() + 1):  # a hung request holds the only slot
        b.failure()
        t0 = time.monotonic()
        with gw.session(time.monotonic() + 12, wait_until=time.monotonic() + 12) as s:
            assert not s.usable and "circuit open" in (s.busy or "")
        assert time.monotonic() - t0 < 0.5  # not the 12 s a queued turn waited


def test_a_successful_warm_up_closes_the_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_breakers()
    s = Settings(env="test")
    b = breaker_for(s.resolved_llm_base_url)
    for _ in range(b.failures_to_open):
        b.failure()  # requests failed while the server was starting
    assert b.state == "open"
    monkeypatch.setattr(warmup, "healthy", lambda _url: True)
    ok = SimpleNamespace(choices=[], usage=None)
    result = warmup.warm_up(s, FakeClient(lambda kw: ok))
    assert result["warmed"] and b.state == "closed"


def test_a_failed_warm_up_leaves_the_breaker_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_breakers()
    s = Settings(env="test")
    b = breaker_for(s.resolved_llm_base_url)
    for _ in range(b.failures_to_open):
        b.failure()

    def boom(kw: dict[str, Any]) -> Any:
        raise TimeoutError("hung")

    monkeypatch.setattr(warmup, "healthy", lambda _url: True)
    assert not warmup.warm_up(s, FakeClient(boom))["warmed"] and b.state == "open"


def test_a_person_reads_why_the_llm_did_not_serve_in_plain_words() -> None:
    """The gateway's reasons, as the notes word them: a full queue is "busy", an open circuit is
    "unavailable" (it was called busy in recommendation notes), never the raw reason."""
    from agent.list_notes import why_not_llm

    b = CircuitBreaker(failures_to_open=1, cooldown_s=60)
    b.failure()
    gw = LLMGateway(FakeClient(lambda kw: pytest.fail("no call")), b, "m")
    with gw.session(time.monotonic() + 5) as s:
        assert why_not_llm(s.busy or "") == "the language model is unavailable"
    adm = LLMAdmission(max_in_flight=1, max_waiting=0)
    with adm.slot(time.monotonic() + 1), adm.slot(time.monotonic() + 1) as why:
        assert why is not None and why_not_llm(why) == "the language model is busy"
    assert why_not_llm("no time left for the LLM") == "the language model ran out of time"
