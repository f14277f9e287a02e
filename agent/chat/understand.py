"""Understanding a turn: the served LLM fills in the TurnIntent form, constrained by its JSON schema;
the rules answer when the LLM cannot (busy, down, slow, circuit open, or output that does not parse).

The call goes through the turn's LLM session (agent/llm/gateway.py) with
``response_format={"type": "json_schema"}``, which vLLM enforces with its structured-output back-end
(tests/integration proves it is applied, since vLLM ignores fields it does not know). The form's
actions are the tool registry's; its extra fields the domain's. Whatever answered, the intent is
verified against the user's words (agent/chat/intent.py) before any tool runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.chat.intent import TurnIntent, intent_json_schema, parse_answer, verify
from agent.chat.rules import rules_intent
from agent.chat.state import ChatState
from agent.chat.tools import Registry
from agent.llm.gateway import LLMSession, UnusableAnswer
from core.settings import ChatSettings
from domains.base import Domain
from prompts.loader import load_prompt
from retrieval.grounding import KIND_MIN_SIM, CategoryGrounder


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


class Understander:
    def __init__(
        self,
        settings: ChatSettings,
        domain: Domain,
        tools: Registry,
        *,
        model: str | None = None,
        grounder: CategoryGrounder | None = None,
    ) -> None:
        self.settings = settings
        self.domain = domain
        self.tools = tools
        self.model = model
        self.prompt = load_prompt("chat_understand")
        self.kinds = list(grounder.categories) if grounder else []
        # The few-shot examples name kinds in plain words; with a catalog, each is shown as the
        # catalog kind nearest to it, so the examples show answers in the catalog's words.
        self._example_kinds: dict[str, str | None] = {}
        if grounder is not None and len(grounder):
            phrases = sorted({k for m in self._examples() for k in m.get("kinds", [])})
            sims = grounder.similarities(phrases)
            for phrase, row in zip(phrases, sims, strict=True):
                j = int(row.argmax())
                self._example_kinds[phrase] = grounder.categories[j] if row[j] >= KIND_MIN_SIM else None

    def _examples(self) -> list[dict[str, Any]]:
        return [json.loads(m["content"]) for m in self.domain.chat_examples() if m["role"] == "assistant"]

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """The rendered prompt: the instructions (the registry's actions, the domain's fields and
        kinds) first, then the domain's few-shot examples, then this turn: vLLM's prefix cache
        serves everything before the turn."""
        nouns = self.domain.nouns
        system, turn = self.prompt.render(
            kinds=", ".join(self.kinds),
            actions=self.tools.action_lines(nouns),
            domain_fields=[a.prompt for a in self.domain.chat_args()],
            item=nouns.item,
            items=nouns.items,
            had=nouns.had,
            kind_word=nouns.kind,
            kinds_word=nouns.kinds,
            **variables,
        )
        return [system, *self._mapped_examples(), turn]

    def _mapped_examples(self) -> list[dict[str, str]]:
        out = []
        for m in self.domain.chat_examples():
            if m["role"] == "assistant" and self._example_kinds:
                ex = json.loads(m["content"])
                if "kinds" in ex:
                    mapped = [self._example_kinds.get(k) for k in ex["kinds"]]
                    ex["kinds"] = list(dict.fromkeys(k for k in mapped if k))
                m = {
                    "role": "assistant",
                    "content": json.dumps(ex, separators=(",", ":"), ensure_ascii=False),
                }
            out.append(m)
        return out

    def _ask(
        self, session: LLMSession, messages: list[dict[str, str]], schema: dict[str, Any], timeout_s: float
    ) -> tuple[TurnIntent, str]:
        resp = session.complete(
            "understand",
            messages,
            timeout_s=timeout_s,
            retries=0,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "turn", "schema": schema, "strict": True},
            },
            max_tokens=self.settings.understand_max_tokens,
            temperature=0.0,
        )
        raw = resp.choices[0].message.content or ""
        try:
            return parse_answer(json.loads(raw), self.domain.chat_args(), self.tools.names), raw
        except (ValueError, TypeError) as exc:  # JSON that does not fit the form
            raise UnusableAnswer(f"{type(exc).__name__}: {exc}") from exc

    def understand(
        self,
        session: LLMSession,
        message: str,
        state: ChatState,
        history: list[dict[str, str]],
        profile_summary: str,
    ) -> Understanding:
        """The LLM's reading of the turn, else the rules' (the session says why it may not ask)."""
        earlier = "\n".join(m["content"] for m in history if m["role"] == "user")
        t0 = time.perf_counter()
        args = self.domain.chat_args()
        n_shown = len(state.shown)
        schema = intent_json_schema(message, n_shown, state, self.tools.names, args)
        if session.busy == "LLM disabled":
            return self._by_rules(message, earlier, state, "llm disabled", False, t0)
        messages = self.messages(
            profile=profile_summary,
            history=history,
            search=state.summary(args=self.domain.describe_args(state.args)),
            shown=[s.label for s in state.shown],
            message=message,
        )
        before = dict(session.usage)
        got = session.run(
            "understand",
            lambda s: self._ask(s, messages, schema, min(self.settings.understand_timeout_s, s.left())),
            lambda why: None,
        )
        if got.value is None:
            return self._by_rules(message, earlier, state, got.why, got.down or session.busy is not None, t0)
        intent, raw = got.value
        checked = verify(intent, message, earlier, n_shown, state, args)
        takes_back = "undo" in self.tools.names and self.tools.get("undo").cue(message)
        if state.written and checked.intent.action != "undo" and takes_back:
            # their own words take back what this conversation stored: the model read it as
            # another wish ("actually, that one was fine" became a recommendation)
            checked.dropped.append(f"action {checked.intent.action!r}: the message takes back a rejection")
            checked.intent.action = "undo"
        usage = {k: v - before.get(k, 0) for k, v in session.usage.items()}
        ms = (time.perf_counter() - t0) * 1000
        return Understanding(
            checked.intent, "llm", raw, checked.dropped, None, ms, usage, self.prompt.id, self.model,
            offered=list(schema["properties"]),
        )  # fmt: skip

    def _by_rules(
        self, message: str, earlier: str, state: ChatState, why: str | None, down: bool, t0: float
    ) -> Understanding:
        intent = rules_intent(message, self.tools, self.domain.chat_args())
        checked = verify(intent, message, earlier, len(state.shown), state, self.domain.chat_args())
        ms = (time.perf_counter() - t0) * 1000
        return Understanding(checked.intent, "rules", None, checked.dropped, why, ms, llm_down=down)

    @property
    def actions(self) -> Sequence[str]:
        return self.tools.names
