"""The one way every stage calls the LLM: admission, deadline, breaker, retries, metrics, fallback.

A request (a recommendation, a chat turn) opens one ``LLMSession`` with its deadline: the session
takes a slot of this process's bounded LLM queue (agent/llm/admission.py) or says why not
(``busy``), and every call made through it

- starts only while at least ``MIN_CALL_S`` of the deadline is left, and is given the time left;
- is refused at once while the server's circuit breaker is open (one breaker per server, shared
  by every stage), and reports its success or failure to it;
- is retried with exponential backoff while the deadline allows (``retries`` of the settings);
- is counted in ``chronotope_llm_calls_total{stage, outcome}``.

A stage is then a prompt, the request's parameters, a parser and a fallback: ``run`` calls the
stage, and when the LLM is unavailable (busy, down, slow, open circuit) or its answer unusable,
returns the fallback's result with the reason, counted in ``chronotope_llm_fallbacks_total``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tenacity import retry, retry_if_exception_type, stop_after_attempt, stop_any, wait_exponential
from tenacity.stop import stop_base

from agent.llm.admission import LLMAdmission
from agent.llm.breaker import CircuitBreaker, CircuitOpenError
from core.metrics import FALLBACKS, LLM_CALLS

T = TypeVar("T")
MIN_CALL_S = 0.3  # below this much time left, no call or retry is started


class LLMUnavailable(Exception):
    """The LLM could not answer this call: ``down`` when the server failed (timeout, refused, open
    circuit, no time left), not when its answer was merely unusable."""

    def __init__(self, reason: str, *, down: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.down = down


class UnusableAnswer(ValueError):
    """The server answered, but not with something the stage can use (bad JSON, no label)."""


@dataclass
class Outcome(Generic[T]):
    value: T
    source: str  # "llm" or "fallback"
    why: str | None = None  # why the fallback answered
    down: bool = False  # the LLM failed in a way later calls of this request should not wait for again
    ms: float = 0.0


class _StopNear(stop_base):
    """Stop retrying once less than MIN_CALL_S is left before the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: Any) -> bool:
        return self.deadline - time.monotonic() < MIN_CALL_S


@dataclass
class LLMSession:
    """One request's access to the LLM (see the module docstring)."""

    gateway: LLMGateway
    deadline: float
    busy: str | None = None  # why this request may not use the LLM (queue full, disabled)
    down: str | None = None  # set once a call found the server down: later stages skip it
    usage: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def usable(self) -> bool:
        return self.busy is None and self.down is None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def _check(self) -> None:
        if self.busy is not None:
            raise LLMUnavailable(self.busy)
        if self.down is not None:
            raise LLMUnavailable(f"LLM unavailable this request ({self.down})")
        if self.left() < MIN_CALL_S:
            raise LLMUnavailable("no time left for the LLM in this request")

    def complete(
        self,
        stage: str,
        messages: list[dict[str, str]],
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        **params: Any,
    ) -> Any:
        """One chat completion (``params`` as the OpenAI API takes them), retried while time allows."""
        self._check()
        g = self.gateway
        try:
            g.breaker.before_call()
        except CircuitOpenError as exc:
            self.down = str(exc)
            raise LLMUnavailable(str(exc)) from exc
        attempts = (g.retries if retries is None else retries) + 1

        @retry(
            stop=stop_any(stop_after_attempt(attempts), _StopNear(self.deadline)),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        )
        def call() -> Any:
            left = self.left() if timeout_s is None else min(timeout_s, self.left())
            if left < MIN_CALL_S:
                raise TimeoutError("the request's LLM deadline has passed")
            return g.client.with_options(timeout=left).chat.completions.create(
                model=g.model, messages=messages, **params
            )

        try:
            resp = call()
        except Exception as exc:
            g.breaker.failure()
            LLM_CALLS.labels(stage, "error").inc()
            self.down = f"{type(exc).__name__}: {exc}"[:200]
            raise LLMUnavailable(self.down) from exc
        g.breaker.success()
        LLM_CALLS.labels(stage, "ok").inc()
        with self._lock:  # explanations call from several threads
            _add_usage(self.usage, getattr(resp, "usage", None))
        return resp

    def stream(
        self, stage: str, messages: list[dict[str, str]], *, timeout_s: float | None = None, **params: Any
    ) -> Iterator[str]:
        """The answer's text piece by piece; closing the generator aborts the generation (the
        server stops work nobody waits for). A cut at max_tokens ends with "…"."""
        self._check()
        g = self.gateway
        try:
            g.breaker.before_call()
        except CircuitOpenError as exc:
            self.down = str(exc)
            raise LLMUnavailable(str(exc)) from exc
        left = self.left() if timeout_s is None else min(timeout_s, self.left())
        try:
            chunks = g.client.with_options(timeout=left).chat.completions.create(
                model=g.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
        except Exception as exc:
            g.breaker.failure()
            LLM_CALLS.labels(stage, "error").inc()
            self.down = f"{type(exc).__name__}: {exc}"[:200]
            raise LLMUnavailable(self.down) from exc
        try:
            for chunk in chunks:
                _add_usage(self.usage, getattr(chunk, "usage", None))
                choice = chunk.choices[0] if chunk.choices else None
                if choice is not None and choice.delta.content:
                    yield choice.delta.content
                if choice is not None and choice.finish_reason == "length":
                    yield "…"  # cut at max_tokens: say so rather than stop mid-word silently
        except GeneratorExit:  # the reader stopped: the server answered, so it is up
            g.breaker.success()
            LLM_CALLS.labels(stage, "ok").inc()
            raise
        except Exception as exc:
            g.breaker.failure()
            LLM_CALLS.labels(stage, "error").inc()
            self.down = f"{type(exc).__name__}: {exc}"[:200]
            raise LLMUnavailable(self.down) from exc
        finally:
            chunks.close()  # the server aborts a generation whose client went away
        g.breaker.success()
        LLM_CALLS.labels(stage, "ok").inc()

    def run(self, stage: str, ask: Callable[[LLMSession], T], fallback: Callable[[str], T]) -> Outcome[T]:
        """The stage's answer from the LLM (``ask``), else ``fallback(why)``."""
        t0 = time.perf_counter()
        try:
            value = ask(self)
            return Outcome(value, "llm", ms=(time.perf_counter() - t0) * 1000)
        except LLMUnavailable as exc:
            why, down = exc.reason, exc.down
        except (UnusableAnswer, ValueError) as exc:  # the server answered, but not usably
            why, down = f"unusable answer: {type(exc).__name__}: {exc}"[:300], False
        if self.gateway.enabled:
            FALLBACKS.labels(stage).inc()
        return Outcome(fallback(why), "fallback", why, down, (time.perf_counter() - t0) * 1000)


def _add_usage(total: dict[str, int], usage: Any) -> None:
    if usage is None:
        return
    total["prompt_tokens"] = total.get("prompt_tokens", 0) + int(usage.prompt_tokens or 0)
    total["completion_tokens"] = total.get("completion_tokens", 0) + int(usage.completion_tokens or 0)


@dataclass
class LLMGateway:
    """The LLM of this process: one client, one breaker per server, one bounded queue."""

    client: Any
    breaker: CircuitBreaker
    model: str
    admission: LLMAdmission | None = None
    retries: int = 1
    enabled: bool = True

    @contextmanager
    def session(self, deadline: float, *, wait_until: float | None = None) -> Iterator[LLMSession]:
        """A request's session; its queue slot (if any) is held until the block ends. ``wait_until``:
        wait for a slot no longer than this (default: the deadline)."""
        if not self.enabled or self.client is None:
            yield LLMSession(self, deadline, busy="LLM disabled")
            return
        if self.breaker.state == "open":  # fall back now, not after waiting for a slot
            yield LLMSession(self, deadline, busy="LLM circuit open after repeated failures")
            return
        if self.admission is None:
            yield LLMSession(self, deadline)
            return
        with self.admission.slot(wait_until or deadline) as busy:
            yield LLMSession(self, deadline, busy=busy)

    def unused(self, deadline: float = 0.0, why: str = "LLM not used") -> LLMSession:
        """A session that never calls the LLM (the request asked for none)."""
        return LLMSession(self, deadline, busy=why)
