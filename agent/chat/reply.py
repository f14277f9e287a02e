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
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.chat.guard import GuardedStream, ReplyRules, Violation
from agent.llm.gateway import LLMSession, LLMUnavailable
from core.metrics import FALLBACKS
from core.settings import ChatSettings
from domains.base import Domain
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


class ReplyWriter:
    def __init__(
        self, settings: ChatSettings, domain: Domain, model: str | None = None, *, enabled: bool = True
    ) -> None:
        self.settings = settings
        self.domain = domain
        self.model = model
        self.enabled = enabled
        self.prompt = load_prompt("chat_reply")

    def instruction_text(self, task: str) -> str:
        """The prompt's own wording (template text without its variables) plus the task: what a
        reply must not echo back."""
        fixed = " ".join(re.sub(r"{{.*?}}|{%.*?%}", " ", text) for _, text in self.prompt.templates)
        return f"{fixed} {task}"

    def _attempt(
        self,
        session: LLMSession,
        messages: list[dict[str, str]],
        req: ReplyRequest,
        out: ReplyOutcome,
        t0: float,
    ) -> Generator[ReplyEvent, None, GuardedStream]:
        """One streamed reply through the guard; raises Violation or LLMUnavailable."""
        guard = GuardedStream(req.rules)
        timeout = min(self.settings.reply_timeout_s, session.left())
        for piece in session.stream(
            "reply", messages, timeout_s=timeout, max_tokens=self.settings.reply_max_tokens, temperature=0.0
        ):
            if session.left() <= 0:
                raise LLMUnavailable("the turn's deadline passed while the reply streamed")
            text = guard.feed(piece)
            if text:
                if out.first_token_ms is None:
                    out.first_token_ms = (time.perf_counter() - t0) * 1000
                yield ReplyEvent("delta", text)
        rest = guard.finish()
        if rest:
            if out.first_token_ms is None:
                out.first_token_ms = (time.perf_counter() - t0) * 1000
            yield ReplyEvent("delta", rest)
        return guard

    def stream(self, session: LLMSession, req: ReplyRequest) -> Generator[ReplyEvent, None, ReplyOutcome]:
        """Yields reply events; returns the outcome (``outcome = yield from writer.stream(...)``)."""
        t0 = time.perf_counter()
        out = ReplyOutcome("", "template", self.prompt.id, None)
        before = dict(session.usage)
        d = self.domain
        messages = self.prompt.render(
            message=req.message,
            results=req.results,
            task=req.task,
            role=d.reply_role,
            items=d.nouns.items,
            named_by=d.named_by,
            example=d.example_item,
        )
        tries = 2 if self.enabled and req.llm_ok and session.usable else 0
        for _attempt in range(tries):
            if session.left() < MIN_LLM_TIME_S:
                out.note = "no time left for the LLM"
                break
            a0 = time.perf_counter()
            shown_before = out.first_token_ms is not None
            try:
                guard = yield from self._attempt(session, messages, req, out, t0)
                out.attempts.append(Attempt(guard.text, [], (time.perf_counter() - a0) * 1000))
                out.text, out.source, out.model = guard.text.strip(), "llm", self.model
                out.usage = {k: v - before.get(k, 0) for k, v in session.usage.items()}
                out.ms = (time.perf_counter() - t0) * 1000
                return out
            except Violation as v:
                out.attempts.append(Attempt(v.released, v.problems, (time.perf_counter() - a0) * 1000))
                if v.released or out.first_token_ms is not None or shown_before:
                    yield ReplyEvent("reset")
                out.first_token_ms = None
                # The second try is told what went wrong; the template follows if it fails again.
                messages = [
                    *messages,
                    {"role": "assistant", "content": v.text},
                    {
                        "role": "user",
                        "content": "That reply was rejected ("
                        + "; ".join(v.problems[:2])
                        + "). Write it again, mentioning only the numbered results.",
                    },
                ]
                continue
            except LLMUnavailable as exc:
                error = exc.reason
                log.warning("chat reply fell back to the template: %s", error)
            out.attempts.append(Attempt("", [], (time.perf_counter() - a0) * 1000, error))
            if out.first_token_ms is not None:
                yield ReplyEvent("reset")
            out.note = f"LLM unavailable: {error}"
            break
        else:
            if not self.enabled:
                out.note = "LLM replies disabled"
            elif not (req.llm_ok and session.usable):
                out.note = "LLM unavailable this turn"
            else:
                out.note = "the LLM's replies failed the checks twice"
        if self.enabled and session.busy != "LLM disabled":
            FALLBACKS.labels("reply").inc()
        out.first_token_ms = (time.perf_counter() - t0) * 1000
        yield ReplyEvent("delta", req.template)
        out.text, out.source = req.template, "template"
        out.usage = {k: v - before.get(k, 0) for k, v in session.usage.items()}
        out.ms = (time.perf_counter() - t0) * 1000
        return out
