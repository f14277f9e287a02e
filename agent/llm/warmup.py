"""Warm the LLM server once it is healthy, so the first user does not pay for a cold start.

A freshly started vLLM server compiles and allocates on its first requests, and the first
structured-output request compiles a grammar: the first chat turn or explanation then ran past its
timeout and opened the breaker. ``warm_up`` sends the requests each stage makes, once, in the
background after the server reports healthy: a short free-text completion (explanations and chat
replies), a JSON-schema completion (the chat's understanding) and a one-token scoring call with
logprobs (the rerank).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from agent.chat.intent import intent_json_schema
from agent.llm.breaker import breaker_for
from agent.llm.client import make_openai_client
from agent.llm.server import healthy
from core.settings import Settings

log = logging.getLogger(__name__)


def warm_up(
    settings: Settings,
    client: Any = None,
    *,
    wait_s: float = 900.0,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Wait (up to ``wait_s``, or until ``stop`` is set) for the server to be healthy, then send one
    request per kind; returns what happened, with timings (also logged)."""
    base = settings.resolved_llm_base_url
    stop = stop or threading.Event()
    t0 = time.monotonic()
    while not healthy(base):
        if time.monotonic() - t0 > wait_s or stop.wait(2.0):
            return {"warmed": False, "reason": f"no healthy LLM server at {base} yet"}
    client = client or make_openai_client(settings, timeout_s=300)
    model = settings.llm.model_name
    steps: dict[str, float] = {}
    requests = {
        "text": {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4},
        "json_schema": {
            "messages": [{"role": "user", "content": 'Message: "somewhere for lunch". Fill in the form.'}],
            "max_tokens": 24,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "turn", "schema": intent_json_schema(), "strict": True},
            },
        },
        "score": {
            "messages": [{"role": "user", "content": "Answer A or B."}],
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": 5,
        },
    }
    try:
        for name, kw in requests.items():
            s0 = time.perf_counter()
            client.chat.completions.create(model=model, temperature=0.0, **kw)
            steps[name] = round(time.perf_counter() - s0, 2)
    except Exception as exc:  # a warm-up that fails changes nothing: the stages degrade as usual
        log.warning("LLM warm-up failed after %s: %s", steps, exc)
        return {"warmed": False, "reason": f"{type(exc).__name__}: {exc}"[:300], "seconds": steps}
    # The server answered every kind of request: whatever failed before it was up (the breaker
    # opened while it started) is over, so the circuit closes rather than waiting for a probe.
    breaker_for(base).success()
    log.info("LLM warmed up in %.1f s: %s", sum(steps.values()), steps)
    return {"warmed": True, "seconds": steps}


def warm_up_in_background(settings: Settings, stop: threading.Event, on_done: Any = None) -> threading.Thread:
    """Start ``warm_up`` in a daemon thread (the API answers meanwhile, with its fallbacks);
    setting ``stop`` ends its wait for the server (the app's shutdown does)."""

    def run() -> None:
        result = warm_up(settings, stop=stop)
        if on_done is not None:
            on_done(result)

    t = threading.Thread(target=run, name="llm-warm-up", daemon=True)
    t.start()
    return t
