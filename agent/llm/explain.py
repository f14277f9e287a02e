"""Explanations for the items actually shown, citing the profile facts they rely on.

The LLM writes ≤ 2 sentences per item with fact ids in brackets; every cited id must exist in this
user's profile and be backed by data, otherwise that item gets the template explanation built from
the same facts. Items are explained concurrently (vLLM batches them).
"""

from __future__ import annotations

import logging
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.llm.breaker import CircuitBreaker, CircuitOpenError
from agent.llm.client import make_openai_client
from agent.llm.rerank import candidate_text, describe_context
from core.settings import Settings
from mining import Fact, UserProfile
from prompts.loader import load_prompt
from retrieval.types import Candidate, RequestContext

log = logging.getLogger(__name__)
CITE = re.compile(r"\[([a-z_]+(?:\.[a-z_0-9]+)+)\]")
MAX_FACTS_IN_PROMPT = 12
MAX_SENTENCES = 2


@dataclass
class ItemExplanation:
    text: str
    fact_ids: list[str]
    source: str = "template"  # "llm" or "template"
    rejected: str | None = None  # why an LLM explanation was replaced


@dataclass
class ExplanationSet:
    items: dict[str, ItemExplanation]
    source: str  # "llm", "template" or "mixed"
    model: str | None
    prompt_version: str | None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": {k: asdict(v) for k, v in self.items.items()},
            "source": self.source,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "errors": self.errors,
        }


def _usable(profile: UserProfile | None) -> list[Fact]:
    return [f for f in (profile.facts if profile else []) if f.sufficient]


def signals(c: Candidate) -> str:
    out = []
    names = {
        "repeat": "the user has been there before",
        "markov": "people (and this user) often go there after their last place",
        "nearby": "it is close by",
        "collaborative": "visitors of the user's places also go there",
        "popular": "it is popular",
        "embedding": "it matches the profile and request text",
    }
    for s in c.sources:
        if s in names:
            out.append(names[s])
    visits = c.features.get("user_count_log")
    if visits:
        out.append(f"{round(math.expm1(visits))} earlier visits")
    return "; ".join(out) or "it ranked highly on the user's habits"


def _template_one(profile: UserProfile | None, c: Candidate) -> ItemExplanation:
    facts = {f.id: f for f in _usable(profile)}
    parts: list[str] = []
    cited: list[str] = []

    def cite(fid: str, text: str) -> None:
        if fid in facts and fid not in cited:
            parts.append(f"{text} [{fid}]")
            cited.append(fid)

    visits = c.features.get("user_count_log")
    routes = facts.get("trans.places")
    on_route = routes is not None and any(
        c.item_id in (r.get("from"), r.get("to")) for r in (routes.value or {}).get("top_routes", [])
    )
    if "repeat" in c.sources and visits:
        n = round(math.expm1(visits))
        times = "once" if n == 1 else f"{n} times"
        if on_route:
            cite("trans.places", f"You have been here {times} and it is on one of your regular routes")
        else:
            cite("data.summary", f"You have been here {times} before")
    if "markov" in c.sources:
        cite("trans.next", "It is a common next stop after where you were last")
    if "nearby" in c.sources:
        cite("space.gyration", "It is close by, well within your usual range")
    if c.features.get("user_hour_affinity_share", 0) > 0.3:
        cite("rhythm.peak_hours", "You tend to go at this time of day")
    if not parts:
        cite("rhythm.peak_hours", "It fits when you are usually out")
        cite("data.summary", "It fits your history")
    text = ". ".join(parts[:MAX_SENTENCES]) + "." if parts else "Recommended from your recent activity."
    label = c.category or c.name or f"place {c.item_id}"
    return ItemExplanation(f"{label}: {text}", cited[:3], "template")


def template_explanations(
    profile: UserProfile | None, ctx: RequestContext, items: list[Candidate]
) -> ExplanationSet:
    return ExplanationSet({c.item_id: _template_one(profile, c) for c in items}, "template", None, None)


def validate(text: str, profile: UserProfile | None) -> tuple[str, list[str]]:
    """Keep ≤ 2 sentences; every cited id must be one of this user's data-backed facts."""
    text = " ".join(text.strip().split())
    if not text:
        raise ValueError("empty explanation")
    sentences = re.split(r"(?<=[.!?])\s+", text)
    text = " ".join(sentences[:MAX_SENTENCES])
    cited = list(dict.fromkeys(CITE.findall(text)))
    if not cited:
        raise ValueError("cites no fact")
    valid = {f.id for f in _usable(profile)}
    bad = [c for c in cited if c not in valid]
    if bad:
        raise ValueError(f"cites unknown facts {bad}")
    return text, cited


class Explainer:
    def __init__(self, settings: Settings, client: Any = None, breaker: CircuitBreaker | None = None) -> None:
        self.settings = settings
        self.client = client or make_openai_client(settings)
        self.breaker = breaker or CircuitBreaker()
        self.prompt = load_prompt("explain")

    def _one(self, profile: UserProfile | None, ctx: RequestContext, c: Candidate) -> ItemExplanation:
        facts = sorted(_usable(profile), key=lambda f: -f.confidence)[:MAX_FACTS_IN_PROMPT]
        when, _ = describe_context(ctx)
        messages = self.prompt.render(
            facts=facts, item=candidate_text(c), signals=signals(c), when=when, wish=ctx.text
        )
        self.breaker.before_call()
        try:
            resp = self.client.chat.completions.create(
                model=self.settings.llm.model_name, messages=messages, max_tokens=60, temperature=0.0
            )
        except Exception:
            self.breaker.failure()
            raise
        self.breaker.success()
        raw = resp.choices[0].message.content or ""
        try:
            text, cited = validate(raw, profile)
            return ItemExplanation(text, cited, "llm")
        except ValueError as exc:
            fallback = _template_one(profile, c)
            fallback.rejected = f"{exc}: {raw[:200]}"
            return fallback

    def explain(
        self, profile: UserProfile | None, ctx: RequestContext, items: list[Candidate]
    ) -> ExplanationSet:
        if not items:
            return ExplanationSet({}, "template", None, self.prompt.id)
        if not self.settings.llm.enabled or not _usable(profile):
            out = template_explanations(profile, ctx, items)
            out.prompt_version = self.prompt.id
            return out
        results: dict[str, ItemExplanation] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            futures = {c.item_id: (c, pool.submit(self._one, profile, ctx, c)) for c in items}
            for item_id, (c, fut) in futures.items():
                try:
                    results[item_id] = fut.result()
                except (CircuitOpenError, Exception) as exc:  # degrade per item
                    errors.append(f"{item_id}: {type(exc).__name__}: {exc}"[:200])
                    results[item_id] = _template_one(profile, c)
        sources = {e.source for e in results.values()}
        source = "llm" if sources == {"llm"} else "template" if sources == {"template"} else "mixed"
        return ExplanationSet(results, source, self.settings.llm.model_name, self.prompt.id, errors)
