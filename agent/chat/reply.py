"""The reply to a turn: written by the LLM from the tool's result and streamed token by token through
the guard, regenerated once if the guard objects, else the template, which says the same things
from the same results. Which one spoke is in ``ReplyOutcome.source``.

Streaming and the guard: text reaches the user only after the guard has checked it (with a short
look-ahead, see agent/chat/guard.py). If a later part of the reply fails the check, the part
already shown cannot be taken back by the guard alone, so the stream emits a ``reset`` event and
then the replacement; the stored reply is the replacement.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.chat.guard import GuardedStream, ReplyRules, Violation
from agent.llm.breaker import CircuitBreaker, CircuitOpenError
from core.metrics import FALLBACKS, LLM_CALLS
from core.settings import Settings
from prompts.loader import load_prompt

log = logging.getLogger(__name__)
MIN_LLM_TIME_S = 1.0  # below this much time left, the template answers without trying the LLM


@dataclass
class ReplyEvent:
    kind: str  # "delta" (text to append) or "reset" (discard what was shown; a replacement follows)
    text: str = ""


@dataclass
class Attempt:
    text: str
    problems: list[str]
    ms: float
    error: str | None = None


@dataclass
class ReplyOutcome:
    text: str
    source: str  # "llm" or "template"
    prompt_version: str | None
    model: str | None
    attempts: list[Attempt] = field(default_factory=list)
    first_token_ms: float | None = None  # from the start of the reply stage
    ms: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    note: str | None = None  # why the template answered

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = None  # the text itself is the stored message
        return d


@dataclass
class ReplyRequest:
    """Everything the writer needs: the material for the prompt, the rules, the fallback."""

    message: str
    results: str  # the tool result as the model sees it
    task: str  # what to write
    rules: ReplyRules
    template: str  # the rules' reply from the same results
    llm_ok: bool = True  # false when this turn already found the LLM down


def _add_usage(total: dict[str, int], usage: Any) -> None:
    if usage is None:
        return
    total["prompt_tokens"] = total.get("prompt_tokens", 0) + int(usage.prompt_tokens or 0)
    total["completion_tokens"] = total.get("completion_tokens", 0) + int(usage.completion_tokens or 0)


class ReplyWriter:
    def __init__(
        self, settings: Settings, client: Any, breaker: CircuitBreaker, *, enabled: bool = True
    ) -> None:
        self.settings = settings
        self.client = client
        self.breaker = breaker
        self.enabled = enabled and settings.llm.enabled
        self.prompt = load_prompt("chat_reply")

    def instruction_text(self, task: str) -> str:
        """The prompt's own wording (template text without its variables) plus the task: what a
        reply must not echo back."""
        fixed = " ".join(re.sub(r"{{.*?}}|{%.*?%}", " ", text) for _, text in self.prompt.templates)
        return f"{fixed} {task}"

    def _tokens(
        self, messages: list[dict[str, str]], timeout_s: float, usage: dict[str, int]
    ) -> Iterable[str]:
        """The model's reply, piece by piece (a generator: closing it aborts the generation)."""
        self.breaker.before_call()
        try:
            stream = self.client.with_options(timeout=timeout_s).chat.completions.create(
                model=self.settings.llm.model_name,
                messages=messages,
                max_tokens=self.settings.chat.reply_max_tokens,
                temperature=0.0,
                stream=True,
                stream_options={"include_usage": True},
            )
        except Exception:
            self.breaker.failure()
            LLM_CALLS.labels("reply", "error").inc()
            raise
        try:
            for chunk in stream:
                _add_usage(usage, getattr(chunk, "usage", None))
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
                if chunk.choices and chunk.choices[0].finish_reason == "length":
                    yield "…"  # cut at max_tokens: say so rather than stop mid-word silently
        except GeneratorExit:  # the guard stopped reading: the server answered, so it is up
            self.breaker.success()
            LLM_CALLS.labels("reply", "ok").inc()
            raise
        except Exception:
            self.breaker.failure()
            LLM_CALLS.labels("reply", "error").inc()
            raise
        finally:
            stream.close()  # the server aborts a generation whose client went away
        self.breaker.success()
        LLM_CALLS.labels("reply", "ok").inc()

    def stream(self, req: ReplyRequest, deadline: float) -> Generator[ReplyEvent, None, ReplyOutcome]:
        """Yields reply events; returns the outcome (``outcome = yield from writer.stream(...)``)."""
        t0 = time.perf_counter()
        out = ReplyOutcome("", "template", self.prompt.id, None)
        shown = False  # has any text reached the user?
        messages = self.prompt.render(message=req.message, results=req.results, task=req.task)
        for _attempt in range(2 if self.enabled and req.llm_ok else 0):
            left = deadline - time.monotonic()
            if left < MIN_LLM_TIME_S:
                out.note = "no time left for the LLM"
                break
            guard = GuardedStream(req.rules)
            a0 = time.perf_counter()
            error: str | None = None
            try:
                for piece in self._tokens(messages, min(self.settings.chat.reply_timeout_s, left), out.usage):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the turn's deadline passed while the reply streamed")
                    text = guard.feed(piece)
                    if text:
                        if out.first_token_ms is None:
                            out.first_token_ms = (time.perf_counter() - t0) * 1000
                        shown = True
                        yield ReplyEvent("delta", text)
                rest = guard.finish()
                if rest:
                    if out.first_token_ms is None:
                        out.first_token_ms = (time.perf_counter() - t0) * 1000
                    yield ReplyEvent("delta", rest)
                out.attempts.append(Attempt(guard.text, [], (time.perf_counter() - a0) * 1000))
                out.text, out.source, out.model = guard.text.strip(), "llm", self.settings.llm.model_name
                out.ms = (time.perf_counter() - t0) * 1000
                return out
            except Violation as v:
                out.attempts.append(Attempt(guard.text, v.problems, (time.perf_counter() - a0) * 1000))
                if v.released or shown:
                    yield ReplyEvent("reset")
                    shown = False
                out.first_token_ms = None
                # The second try is told what went wrong; the template follows if it fails again.
                messages = [
                    *messages,
                    {"role": "assistant", "content": guard.text},
                    {
                        "role": "user",
                        "content": "That reply was rejected ("
                        + "; ".join(v.problems[:2])
                        + "). Write it again, mentioning only the numbered results.",
                    },
                ]
                continue
            except CircuitOpenError as exc:
                error = str(exc)
            except Exception as exc:  # timeout, connection error, server error
                error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("chat reply fell back to the template: %s", error)
            out.attempts.append(Attempt(guard.text, [], (time.perf_counter() - a0) * 1000, error))
            if shown:
                yield ReplyEvent("reset")
                shown = False
            out.note = f"LLM unavailable: {error}"
            break
        else:
            if not self.enabled:
                out.note = "LLM replies disabled"
            elif not req.llm_ok:
                out.note = "LLM unavailable this turn"
            else:
                out.note = "the LLM's replies failed the checks twice"
        if self.enabled:
            FALLBACKS.labels("reply").inc()
        out.first_token_ms = (time.perf_counter() - t0) * 1000
        yield ReplyEvent("delta", req.template)
        out.text, out.source = req.template, "template"
        out.ms = (time.perf_counter() - t0) * 1000
        return out
