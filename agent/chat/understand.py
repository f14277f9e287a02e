"""Understanding a turn: the served LLM fills in the TurnIntent form, constrained by its JSON schema;
the rules answer when the LLM cannot (down, slow, circuit open, or output that does not parse).

The call goes through the OpenAI-compatible API with ``response_format={"type": "json_schema"}``,
which vLLM enforces with its structured-output back-end (tests/integration proves it is applied,
since vLLM ignores fields it does not know). Whatever answered, the intent is verified against the
user's words (agent/chat/intent.py) before any tool runs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.chat.intent import TurnIntent, intent_json_schema, verify
from agent.chat.rules import rules_intent
from agent.chat.state import ChatState
from agent.llm.breaker import CircuitBreaker, CircuitOpenError
from core.metrics import FALLBACKS, LLM_CALLS
from core.settings import Settings
from prompts.loader import load_prompt
from retrieval.grounding import KIND_MIN_SIM, CategoryGrounder

log = logging.getLogger(__name__)


@dataclass
class Understanding:
    intent: TurnIntent
    source: str  # "llm" or "rules"
    raw: str | None = None  # what the model wrote
    dropped: list[str] = field(default_factory=list)  # arguments the verification removed
    error: str | None = None  # why the rules answered instead of the LLM
    ms: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    prompt_version: str | None = None
    model: str | None = None
    llm_down: bool = False  # the LLM failed in a way the reply should not wait for again
    offered: list[str] = field(default_factory=list)  # the form's fields this turn's schema offered

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "intent": self.intent.model_dump(exclude_defaults=True) | {"action": self.intent.action},
            "raw": self.raw,
            "dropped": self.dropped,
            "error": self.error,
            "ms": round(self.ms, 1),
            "usage": self.usage,
            "prompt_version": self.prompt_version,
            "model": self.model,
            "offered": self.offered,
        }


def _usage(resp: Any) -> dict[str, int]:
    u = getattr(resp, "usage", None)
    if u is None:
        return {}
    return {"prompt_tokens": int(u.prompt_tokens or 0), "completion_tokens": int(u.completion_tokens or 0)}


class Understander:
    def __init__(
        self,
        settings: Settings,
        client: Any,
        breaker: CircuitBreaker,
        *,
        enabled: bool = True,
        grounder: CategoryGrounder | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.breaker = breaker
        self.enabled = enabled and settings.llm.enabled
        self.prompt = load_prompt("chat_understand")
        self.categories = list(grounder.categories) if grounder else []
        # The few-shot examples name kinds in plain words; with a catalog, each is shown as the
        # catalog category nearest to it, so the examples show answers in the catalog's words.
        self._example_kinds: dict[str, str | None] = {}
        if grounder is not None and len(grounder):
            phrases = sorted({k for m in self._examples() for k in m.get("kinds", [])})
            sims = grounder.similarities(phrases)
            for phrase, row in zip(phrases, sims, strict=True):
                j = int(row.argmax())
                self._example_kinds[phrase] = grounder.categories[j] if row[j] >= KIND_MIN_SIM else None

    def _examples(self) -> list[dict[str, Any]]:
        return [json.loads(text) for role, text in self.prompt.templates if role == "assistant"]

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """The rendered prompt, the catalog's kinds in the instructions and in the examples."""
        msgs = self.prompt.render(kinds=", ".join(self.categories), **variables)
        if not self._example_kinds:
            return msgs
        for m in msgs:
            if m["role"] == "assistant":
                ex = json.loads(m["content"])
                if "kinds" in ex:
                    mapped = [self._example_kinds.get(k) for k in ex["kinds"]]
                    ex["kinds"] = list(dict.fromkeys(k for k in mapped if k))
                m["content"] = json.dumps(ex, separators=(",", ":"), ensure_ascii=False)
        return msgs

    def _ask(
        self, messages: list[dict[str, str]], schema: dict[str, Any], timeout_s: float
    ) -> tuple[TurnIntent, str, dict[str, int]]:
        self.breaker.before_call()
        try:
            resp = self.client.with_options(timeout=timeout_s).chat.completions.create(
                model=self.settings.llm.model_name,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "turn", "schema": schema, "strict": True},
                },
                max_tokens=self.settings.chat.understand_max_tokens,
                temperature=0.0,
            )
        except Exception:
            self.breaker.failure()
            LLM_CALLS.labels("understand", "error").inc()
            raise
        self.breaker.success()
        LLM_CALLS.labels("understand", "ok").inc()
        raw = resp.choices[0].message.content or ""
        return TurnIntent.model_validate(json.loads(raw)), raw, _usage(resp)

    def understand(
        self,
        message: str,
        state: ChatState,
        history: list[dict[str, str]],
        profile_summary: str,
        timeout_s: float,
        busy: str | None = None,
    ) -> Understanding:
        """``busy``: why the LLM may not be asked this turn (the worker's LLM queue is full); the
        rules understand it and the reply is the template's."""
        earlier = "\n".join(m["content"] for m in history if m["role"] == "user")
        t0 = time.perf_counter()
        error: str | None = None
        llm_down = False
        if self.enabled and busy:
            error, llm_down = busy, True
        elif self.enabled and timeout_s > 0.5:
            messages = self.messages(
                profile=profile_summary,
                history=history,
                search=state.summary(),
                shown=[s.label for s in state.shown],
                message=message,
            )
            try:
                schema = intent_json_schema(message, len(state.shown), state)
                intent, raw, usage = self._ask(messages, schema, timeout_s)
                checked = verify(intent, message, earlier, len(state.shown), state)
                return Understanding(
                    checked.intent,
                    "llm",
                    raw,
                    checked.dropped,
                    None,
                    (time.perf_counter() - t0) * 1000,
                    usage,
                    self.prompt.id,
                    self.settings.llm.model_name,
                    offered=list(schema["properties"]),
                )
            except CircuitOpenError as exc:
                error, llm_down = str(exc), True
            except (ValidationError, ValueError) as exc:  # JSON that does not fit the form
                error = f"unusable answer: {type(exc).__name__}: {exc}"[:300]
            except Exception as exc:  # timeout, connection refused, server error
                error, llm_down = f"{type(exc).__name__}: {exc}"[:300], True
                log.warning("chat understanding fell back to rules: %s", error)
        elif not self.enabled:
            error = "llm disabled"
        else:
            error, llm_down = "no time left for the LLM", True
        if self.enabled:
            FALLBACKS.labels("understand").inc()
        checked = verify(rules_intent(message), message, earlier, len(state.shown), state)
        return Understanding(
            checked.intent,
            "rules",
            None,
            checked.dropped,
            error,
            (time.perf_counter() - t0) * 1000,
            llm_down=llm_down,
        )
