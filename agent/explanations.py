"""Explanations of shown items: their types, the request's situation, and the template that phrases
the evidence when the LLM does not (agent/llm/explain.py is the LLM stage).

The evidence of each item comes from the domain (domains/evidence.py and the domain's own rules);
the template states the strongest two pieces as written, each citing its fact id; every text,
template or LLM, is held to its cited evidence by the faithfulness checker before it is served.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from agent.llm.faithfulness import CITE, Verdict, check_explanation
from core.clock import local_time
from core.metrics import EXPLANATIONS
from domains.base import Domain
from domains.evidence import ItemEvidence, RequestMoment
from mining import UserProfile
from prompts.loader import load_prompt
from retrieval.types import Candidate, RequestContext

log = logging.getLogger(__name__)
TEMPLATE_FACTS = 2  # the template phrases the strongest two pieces of evidence
NOW_PARTS = (  # local hour ranges a request "now" may be called
    ((5, 11), "morning"),
    ((11, 14), "midday"),
    ((11, 14), "lunch"),
    ((12, 17), "afternoon"),
    ((17, 22), "evening"),
    ((20, 24), "night"),
    ((0, 4), "night"),
)


@dataclass
class ItemExplanation:
    text: str
    fact_ids: list[str]
    source: str = "template"  # "llm" or "template"
    rejected: str | None = None  # why the LLM's text was replaced (the checker's reasons)
    verdict: dict[str, Any] = field(default_factory=dict)  # the checker on the served text
    attempts: list[dict[str, Any]] = field(default_factory=list)  # LLM texts and their verdicts
    evidence: dict[str, Any] = field(default_factory=dict)  # ItemEvidence.to_dict()


@dataclass
class ExplanationSet:
    items: dict[str, ItemExplanation]
    source: str  # "llm", "template" or "mixed"
    model: str | None
    prompt_version: str | None
    errors: list[str] = field(default_factory=list)
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            # shallow, not dataclasses.asdict: nothing here is changed after it is built
            "items": {k: {f.name: getattr(v, f.name) for f in fields(v)} for k, v in self.items.items()},
            "source": self.source,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "errors": self.errors,
            "ms": round(self.ms, 1),
        }


@dataclass(frozen=True)
class Situation:
    """What the evidence needs besides the profile: the request's local moment, names for other
    items (a route's start), the catalog's kinds (for the checker), the domain and its
    per-profile view (places: the person's anchors)."""

    moment: RequestMoment
    name_of: Callable[[str], str | None] = lambda _i: None
    catalog_kinds: tuple[str, ...] = ()
    domain: Domain = field(default_factory=Domain)
    person: Any = None

    @staticmethod
    def plain(ctx: RequestContext, domain: Domain | None = None) -> Situation:
        # no person, so no offset: the moment is the instant on the UTC clock (never the caller's
        # own zone, which a "+09:00" in the request would otherwise make it)
        return Situation(RequestMoment(local_time(ctx.time, 0), args=ctx.args), domain=domain or Domain())

    def now_parts(self) -> list[str]:
        local = self.moment.local
        parts = [p for (lo, hi), p in NOW_PARTS if lo <= local.hour < hi]
        parts.append("weekend" if local.weekday() >= 5 else "weekday")
        return parts

    def evidence(self, profile: UserProfile | None, c: Candidate) -> ItemEvidence:
        return self.domain.evidence(profile, c, self.moment, self.name_of, self.person)

    def check(self, text: str, pe: ItemEvidence, ids: Iterable[str]) -> Verdict:
        return check_explanation(
            text, pe, ids, self.catalog_kinds, now_parts=self.now_parts(), claims=self.domain.claims
        )


def usable_ids(profile: UserProfile | None) -> set[str]:
    return {f.id for f in (profile.facts if profile else []) if f.sufficient}


def record(source: str, verdict: Verdict) -> None:
    EXPLANATIONS.labels(source, "pass" if verdict.ok else "fail").inc()


def template_text(pe: ItemEvidence) -> tuple[str, list[str]]:
    """The strongest evidence, phrased as written in the evidence, each sentence citing its id."""
    picked = pe.evidence[:TEMPLATE_FACTS]
    if not picked:
        return "", []
    return " ".join(f"{e.text[:-1]} [{e.id}]." for e in picked), [e.id for e in picked]


def template_one(pe: ItemEvidence, ids: set[str], situation: Situation) -> ItemExplanation:
    text, cited = template_text(pe)
    verdict = situation.check(text, pe, ids)
    record("template", verdict)
    if not verdict.ok and text:  # the template phrases the evidence as written: a bug, say so
        log.error("template explanation failed the checker: %s (%s)", verdict.reasons, text)
    return ItemExplanation(text, cited, "template", None, verdict.to_dict(), [], pe.to_dict())


def template_explanations(
    profile: UserProfile | None,
    ctx: RequestContext,
    items: list[Candidate],
    *,
    situation: Situation | None = None,
    evidence: list[ItemEvidence] | None = None,
) -> ExplanationSet:
    """The rules' explanations: the strongest evidence of each item, as written, checked too."""
    situation = situation or Situation.plain(ctx)
    pes = evidence if evidence is not None else [situation.evidence(profile, c) for c in items]
    ids = usable_ids(profile)
    out = {pe.item_id: template_one(pe, ids, situation) for pe in pes}
    return ExplanationSet(out, "template", None, load_prompt("explain").id)


def reason_text(explanation: Any) -> str:
    """An explanation (or its text) without its fact citations."""
    raw = explanation if isinstance(explanation, str) else getattr(explanation, "text", "")
    return re.sub(r"\s+([.,;])", r"\1", CITE.sub("", raw or "")).strip()


def local_moment(
    ctx: RequestContext, utc_offset_min: int, last_item: str | None, last_kind: str | None
) -> RequestMoment:
    """The request's moment on the person's clock (core.clock: a "+09:00" request is not
    shifted twice)."""
    return RequestMoment(
        local_time(ctx.time, utc_offset_min),
        last_item,
        last_kind,
        args=ctx.args,
    )
