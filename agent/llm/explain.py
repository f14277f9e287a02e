"""Explanations for the places actually shown, written by the LLM from the evidence that links each
place to the person, checked for faithfulness, with the template as the fallback.

For each shown place: gather its evidence (agent/evidence.py: the profile facts that concern it
and its own attributes, with values); the LLM chooses among those facts and phrases one or two
sentences, citing them by id; the faithfulness checker (agent/llm/faithfulness.py) holds the text
against the cited facts; a failing text is regenerated once, told why, else replaced by the
template, which phrases the same evidence. The requests for all shown places go out in parallel
and share the prompt's cached prefix, so vLLM batches them; one deadline bounds the whole stage.
Every verdict and the evidence behind it are kept for the trace.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from agent.evidence import PlaceEvidence, RequestMoment, place_evidence
from agent.labels import anchors
from agent.llm.breaker import CircuitBreaker, CircuitOpenError, breaker_for
from agent.llm.client import make_openai_client
from agent.llm.faithfulness import CITE, Verdict, check_explanation, repair_citations
from core.metrics import EXPLANATIONS, FALLBACKS, LLM_CALLS
from core.settings import Settings
from mining import UserProfile
from prompts.loader import load_prompt
from retrieval.types import Candidate, RequestContext

log = logging.getLogger(__name__)
TEMPLATE_FACTS = 2  # the template phrases the strongest two pieces of evidence
MIN_CALL_S = 0.5  # below this much time left, the template answers without trying the LLM
MAX_SENTENCE_CHARS = 160  # a sentence this long was cut by the limit, not ended by the model
MIN_CLAUSE_CHARS = 30  # what is left of a run-on sentence must still say something
LETTERS = "ABCDEFGH"  # facts are offered by letter: an id costs several tokens to write
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
    evidence: dict[str, Any] = field(default_factory=dict)  # PlaceEvidence.to_dict()


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
    places (a route's start) and the catalog's kinds (for the checker)."""

    moment: RequestMoment
    kind_of_item: Callable[[str], str | None] = lambda _i: None
    catalog_kinds: tuple[str, ...] = ()

    @staticmethod
    def plain(ctx: RequestContext) -> Situation:
        return Situation(RequestMoment(ctx.time, at_request_place=ctx.lat is not None))

    def now_parts(self) -> list[str]:
        local = self.moment.local
        parts = [p for (lo, hi), p in NOW_PARTS if lo <= local.hour < hi]
        parts.append("weekend" if local.weekday() >= 5 else "weekday")
        return parts


def _usable_ids(profile: UserProfile | None) -> set[str]:
    return {f.id for f in (profile.facts if profile else []) if f.sufficient}


def template_text(pe: PlaceEvidence) -> tuple[str, list[str]]:
    """The strongest evidence, phrased as written in the evidence, each sentence citing its id."""
    picked = pe.evidence[:TEMPLATE_FACTS]
    if not picked:
        return "", []
    return " ".join(f"{e.text[:-1]} [{e.id}]." for e in picked), [e.id for e in picked]


def explanation_schema(n_facts: int) -> dict[str, Any]:
    """The answer's JSON schema: one or two of this place's facts by letter, then one sentence."""
    return {
        "type": "object",
        "properties": {
            "facts": {
                "type": "array",
                "items": {"enum": list(LETTERS[:n_facts])},
                "minItems": 1,
                "maxItems": 2,
            },
            "sentence": {"type": "string", "maxLength": MAX_SENTENCE_CHARS},
        },
        "required": ["facts", "sentence"],
        "additionalProperties": False,
    }


ANSWER_FACTS = re.compile(r'"facts"\s*:\s*\[([^\]]*)\]')
ANSWER_SENTENCE = re.compile(r'"sentence"\s*:\s*"((?:[^"\\]|\\.)*)')


def served_text(raw: str, ids: list[str], finished: bool, *, cut: bool = False) -> str:
    """The sentence with the chosen facts' ids cited before its final stop: "… [item.visits]."

    ``ids``: the evidence ids in the order they were lettered. Generation stops at the end of the
    first sentence (". "), so the JSON is usually cut there: the facts and the sentence are read
    from what was written. ``finished``: the model closed the JSON itself. A run-on sentence cut
    by a length limit (the string's, or ``cut``: the token cap) keeps its whole clauses, up to its
    last comma. An answer without facts or sentence gives "" (the checker's "empty")."""
    facts, sentence = ANSWER_FACTS.search(raw), ANSWER_SENTENCE.search(raw)
    if facts is None or sentence is None:
        return ""
    try:
        letters = [x.strip().strip('"') for x in facts.group(1).split(",") if x.strip()]
        chosen = [ids[LETTERS.index(x)] for x in letters]
        text = json.loads(f'"{sentence.group(1)}"') if finished else sentence.group(1)
    except (ValueError, IndexError):
        return ""
    text = " ".join(text.split()).rstrip(" .!?")
    if cut or len(text) >= MAX_SENTENCE_CHARS:  # a run-on cut by a limit: keep its whole clauses
        end = text.rfind(", ")
        text = text[:end] if end >= MIN_CLAUSE_CHARS else ""
    if not chosen or not text:
        return ""
    return f"{text} " + " ".join(f"[{i}]" for i in dict.fromkeys(chosen)) + "."


def _record(source: str, verdict: Verdict) -> None:
    EXPLANATIONS.labels(source, "pass" if verdict.ok else "fail").inc()


class Explainer:
    def __init__(self, settings: Settings, client: Any = None, breaker: CircuitBreaker | None = None) -> None:
        self.settings = settings
        self.client = client or make_openai_client(settings)
        self.breaker = breaker or breaker_for(settings.resolved_llm_base_url)
        self.prompt = load_prompt("explain")

    # -- one place -------------------------------------------------------------------------

    def _messages(self, pe: PlaceEvidence, label: str, ctx: RequestContext) -> list[dict[str, str]]:
        return self.prompt.render(label=label, evidence=pe.evidence, wish=ctx.text)

    def _ask(self, messages: list[dict[str, str]], ids: list[str], deadline: float) -> tuple[str, str]:
        """One explanation: the model picks facts (letters of this place's evidence, an enum the
        server's JSON schema enforces) and writes the sentence; returns (served text, raw answer)."""
        left = deadline - time.monotonic()
        if left < MIN_CALL_S:
            raise TimeoutError("no time left for the LLM in this request")
        self.breaker.before_call()
        try:
            resp = self.client.with_options(timeout=left).chat.completions.create(
                model=self.settings.llm.model_name,
                messages=messages,
                max_tokens=self.settings.llm.explain_max_tokens,
                temperature=0.0,
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": "explanation",
                        "schema": explanation_schema(len(ids)),
                        "strict": True,
                    },
                },
                # One sentence is asked for and a small model goes on writing: stop where it ends.
                stop=[". "],
            )
        except Exception:
            self.breaker.failure()
            LLM_CALLS.labels("explain", "error").inc()
            raise
        self.breaker.success()
        LLM_CALLS.labels("explain", "ok").inc()
        choice = resp.choices[0]
        raw = choice.message.content or ""
        cut = choice.finish_reason == "length"  # mid-sentence: only whole clauses can be kept
        return served_text(raw, ids, raw.rstrip().endswith("}"), cut=cut), raw

    def _one(
        self,
        profile: UserProfile | None,
        ctx: RequestContext,
        pe: PlaceEvidence,
        label: str,
        situation: Situation,
        deadline: float,
    ) -> ItemExplanation:
        ids = _usable_ids(profile)
        parts = situation.now_parts()

        def check(text: str) -> tuple[str, Verdict, list[str]]:
            return repair_citations(text, pe, ids, situation.catalog_kinds, now_parts=parts)

        messages = self._messages(pe, label, ctx)
        ids_offered = [e.id for e in pe.evidence]
        attempts: list[dict[str, Any]] = []
        for _ in range(2 if self.settings.llm.explain_regenerate else 1):
            text, raw = self._ask(messages, ids_offered, deadline)
            text, verdict, added = check(text)
            attempt = {"text": text, "raw": raw, "verdict": verdict.to_dict()}
            if added:  # said by the model, cited by the checker: the trace says which
                attempt["citations_added_by_checker"] = added
            attempts.append(attempt)
            if verdict.ok:
                _record("llm", verdict)
                return ItemExplanation(
                    text, verdict.cited, "llm", None, verdict.to_dict(), attempts, pe.to_dict()
                )
            messages = [
                *messages,
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": "That explanation was rejected: "
                    + "; ".join(verdict.reasons[:3])
                    + ". Write it again: say only what the facts you choose say.",
                },
            ]
        out = self._template(pe, ids, situation)
        FALLBACKS.labels("explain").inc()
        out.rejected = "; ".join(attempts[-1]["verdict"]["reasons"])[:300]
        out.attempts = attempts
        return out

    def _template(self, pe: PlaceEvidence, ids: set[str], situation: Situation) -> ItemExplanation:
        text, cited = template_text(pe)
        verdict = check_explanation(text, pe, ids, situation.catalog_kinds, now_parts=situation.now_parts())
        _record("template", verdict)
        if not verdict.ok:  # the template phrases the evidence as written: this is a bug, say so
            log.error("template explanation failed the checker: %s (%s)", verdict.reasons, text)
        return ItemExplanation(text, cited, "template", None, verdict.to_dict(), [], pe.to_dict())

    # -- all shown places ------------------------------------------------------------------

    def evidence(
        self, profile: UserProfile | None, items: Iterable[Candidate], situation: Situation
    ) -> list[PlaceEvidence]:
        anchor_list = anchors(profile)
        return [
            place_evidence(profile, c, situation.moment, situation.kind_of_item, anchor_list) for c in items
        ]

    def explain(
        self,
        profile: UserProfile | None,
        ctx: RequestContext,
        items: list[Candidate],
        *,
        labels: dict[str, str] | None = None,
        situation: Situation | None = None,
        deadline: float | None = None,
    ) -> ExplanationSet:
        """``deadline`` (time.monotonic): the whole stage ends by then, regenerations included."""
        t0 = time.perf_counter()
        situation = situation or Situation.plain(ctx)
        deadline = deadline or time.monotonic() + self.settings.llm.timeout_s
        labels = labels or {}
        pes = self.evidence(profile, items, situation)
        ids = _usable_ids(profile)
        if not items:
            return ExplanationSet({}, "template", None, self.prompt.id)
        if not self.settings.llm.enabled:
            return template_explanations(profile, ctx, items, situation=situation, evidence=pes)
        results: dict[str, ItemExplanation] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            futures = [
                (
                    pe,
                    pool.submit(
                        self._one, profile, ctx, pe, labels.get(c.item_id) or pe.kind, situation, deadline
                    ),
                )
                for c, pe in zip(items, pes, strict=True)
                if pe.evidence
            ]
            for pe, fut in futures:
                try:
                    results[pe.item_id] = fut.result()
                except (CircuitOpenError, Exception) as exc:  # degrade per item
                    errors.append(f"{pe.item_id}: {type(exc).__name__}: {exc}"[:200])
                    FALLBACKS.labels("explain").inc()
                    results[pe.item_id] = self._template(pe, ids, situation)
        for pe in pes:
            results.setdefault(pe.item_id, self._template(pe, ids, situation))
        sources = {e.source for e in results.values()}
        source = "llm" if sources == {"llm"} else "template" if sources == {"template"} else "mixed"
        ordered = {c.item_id: results[c.item_id] for c in items}
        return ExplanationSet(
            ordered,
            source,
            self.settings.llm.model_name,
            self.prompt.id,
            errors,
            (time.perf_counter() - t0) * 1000,
        )


def template_explanations(
    profile: UserProfile | None,
    ctx: RequestContext,
    items: list[Candidate],
    *,
    situation: Situation | None = None,
    evidence: list[PlaceEvidence] | None = None,
) -> ExplanationSet:
    """The rules' explanations: the strongest evidence of each place, as written, checked too."""
    situation = situation or Situation.plain(ctx)
    if evidence is None:
        anchor_list = anchors(profile)
        evidence = [
            place_evidence(profile, c, situation.moment, situation.kind_of_item, anchor_list) for c in items
        ]
    ids = _usable_ids(profile)
    out: dict[str, ItemExplanation] = {}
    for pe in evidence:
        text, cited = template_text(pe)
        verdict = check_explanation(text, pe, ids, situation.catalog_kinds, now_parts=situation.now_parts())
        _record("template", verdict)
        out[pe.item_id] = ItemExplanation(text, cited, "template", None, verdict.to_dict(), [], pe.to_dict())
    return ExplanationSet(out, "template", None, load_prompt("explain").id)


def reason_text(explanation: Any) -> str:
    """An explanation (or its text) without its fact citations."""
    raw = explanation if isinstance(explanation, str) else getattr(explanation, "text", "")
    return re.sub(r"\s+([.,;])", r"\1", CITE.sub("", raw or "")).strip()


def local_moment(
    ctx: RequestContext, utc_offset_min: int, last_item: str | None, last_kind: str | None
) -> RequestMoment:
    return RequestMoment(
        ctx.time + timedelta(minutes=utc_offset_min),
        last_item,
        last_kind,
        at_request_place=ctx.lat is not None,
    )
