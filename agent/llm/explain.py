"""Explanations written by the LLM for the items actually shown, checked, with the template as fallback.

For each shown item: its evidence (the domain's: the profile facts that concern it and its own
attributes, with values); the LLM chooses among those facts and phrases one sentence, citing them
by id (the facts are offered by letter, an enum the server's JSON schema enforces); the
faithfulness checker holds the text against the cited facts; a failing text is regenerated once
if the setting asks, told why, else replaced by the template, which phrases the same evidence.
The requests for all shown items go out in parallel through the request's LLM session and share
the prompt's cached prefix, so vLLM batches them; the session's deadline bounds the whole stage.
Every verdict and the evidence behind it are kept for the trace.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.explanations import (
    ExplanationSet,
    ItemExplanation,
    Situation,
    record,
    template_explanations,
    template_one,
    usable_ids,
)
from agent.llm.faithfulness import repair_citations
from agent.llm.gateway import LLMSession, LLMUnavailable
from core.metrics import FALLBACKS
from core.settings import LLMSettings
from domains.evidence import ItemEvidence
from mining import UserProfile
from prompts.loader import load_prompt
from retrieval.types import Candidate, RequestContext

MAX_SENTENCE_CHARS = 160  # a sentence this long was cut by the limit, not ended by the model
MIN_CLAUSE_CHARS = 30  # what is left of a run-on sentence must still say something
LETTERS = "ABCDEFGH"  # facts are offered by letter: an id costs several tokens to write
ANSWER_FACTS = re.compile(r'"facts"\s*:\s*\[([^\]]*)\]')
ANSWER_SENTENCE = re.compile(r'"sentence"\s*:\s*"((?:[^"\\]|\\.)*)')


def explanation_schema(n_facts: int) -> dict[str, Any]:
    """The answer's JSON schema: one or two of this item's facts by letter, then one sentence."""
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


class Explainer:
    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.prompt = load_prompt("explain")

    def _messages(
        self, pe: ItemEvidence, label: str, ctx: RequestContext, situation: Situation
    ) -> list[dict[str, str]]:
        nouns = situation.domain.nouns
        return self.prompt.render(
            label=label,
            evidence=pe.evidence,
            wish=ctx.text,
            item=nouns.item,
            items=nouns.items,
            kinds=nouns.kinds,
        )

    def _ask(self, session: LLMSession, messages: list[dict[str, str]], ids: list[str]) -> tuple[str, str]:
        """One explanation: the model picks facts and writes the sentence; (served text, raw)."""
        resp = session.complete(
            "explain",
            messages,
            retries=0,
            max_tokens=self.settings.explain_max_tokens,
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
        choice = resp.choices[0]
        raw = choice.message.content or ""
        cut = choice.finish_reason == "length"  # mid-sentence: only whole clauses can be kept
        return served_text(raw, ids, raw.rstrip().endswith("}"), cut=cut), raw

    def _one(
        self,
        session: LLMSession,
        profile: UserProfile | None,
        ctx: RequestContext,
        pe: ItemEvidence,
        label: str,
        situation: Situation,
    ) -> ItemExplanation:
        ids = usable_ids(profile)
        parts, kinds, claims = situation.now_parts(), situation.catalog_kinds, situation.domain.claims
        messages = self._messages(pe, label, ctx, situation)
        offered = [e.id for e in pe.evidence]
        attempts: list[dict[str, Any]] = []
        for _ in range(2 if self.settings.explain_regenerate else 1):
            text, raw = self._ask(session, messages, offered)
            text, verdict, added = repair_citations(text, pe, ids, kinds, now_parts=parts, claims=claims)
            attempt = {"text": text, "raw": raw, "verdict": verdict.to_dict()}
            if added:  # said by the model, cited by the checker: the trace says which
                attempt["citations_added_by_checker"] = added
            attempts.append(attempt)
            if verdict.ok:
                record("llm", verdict)
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
        out = template_one(pe, ids, situation)
        FALLBACKS.labels("explain").inc()
        out.rejected = "; ".join(attempts[-1]["verdict"]["reasons"])[:300]
        out.attempts = attempts
        return out

    def explain(
        self,
        session: LLMSession,
        profile: UserProfile | None,
        ctx: RequestContext,
        items: list[Candidate],
        *,
        labels: dict[str, str] | None = None,
        situation: Situation,
    ) -> ExplanationSet:
        """The LLM's explanation of each item, else the template's, within the session's deadline."""
        t0 = time.perf_counter()
        labels = labels or {}
        pes = [situation.evidence(profile, c) for c in items]
        if not items:
            return ExplanationSet({}, "template", None, self.prompt.id)
        if not session.usable:
            return template_explanations(profile, ctx, items, situation=situation, evidence=pes)
        ids = usable_ids(profile)
        results: dict[str, ItemExplanation] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            futures = [
                (
                    pe,
                    pool.submit(
                        self._one, session, profile, ctx, pe, labels.get(c.item_id) or pe.kind, situation
                    ),
                )
                for c, pe in zip(items, pes, strict=True)
                if pe.evidence
            ]
            for pe, fut in futures:
                try:
                    results[pe.item_id] = fut.result()
                except (LLMUnavailable, Exception) as exc:  # degrade per item
                    errors.append(f"{pe.item_id}: {type(exc).__name__}: {exc}"[:200])
                    FALLBACKS.labels("explain").inc()
                    results[pe.item_id] = template_one(pe, ids, situation)
        for pe in pes:
            results.setdefault(pe.item_id, template_one(pe, ids, situation))
        sources = {e.source for e in results.values()}
        source = "llm" if sources == {"llm"} else "template" if sources == {"template"} else "mixed"
        ordered = {c.item_id: results[c.item_id] for c in items}
        return ExplanationSet(
            ordered,
            source,
            self.settings.model_name,
            self.prompt.id,
            errors,
            (time.perf_counter() - t0) * 1000,
        )
