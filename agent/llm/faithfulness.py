"""The faithfulness checker: does an explanation say only what its cited facts and the item's own
attributes support?

Checked for every explanation, LLM-written or template, before it is served:
- it cites at least one fact, every cited id is evidence for *this* item (a profile fact of the
  version used that concerns it, or one of its own ``item.*`` attributes), and none is unknown;
- it names no other kind of item than the one shown, except kinds its cited facts name;
- every claim is backed: numbers (counts, hours, distances, percentages), weekdays, parts of the
  day or week, and the domain's claim words ("lately", "new to you", "popular"; for places "close
  by", "home", "work"; domains/claims.py) each need a cited fact (or the item's own attribute)
  that states it.

Lexical on purpose: cheap enough to run on every explanation, and strict enough that a wrong day,
an invented count or "it is close by [rhythm.peak_hours]" fails. The verdict and its reasons are
stored in the trace and counted in /metrics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from domains.claims import NEUTRAL_CLAIMS, Claim
from domains.evidence import Evidence, ItemEvidence
from mining.rhythm import DAYS

CITE = re.compile(r"\[([a-z_]+(?:\.[a-z_0-9]+)+)\]")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.:]\d+)?")
NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12", "twenty": "20",
}  # fmt: skip
MAX_SENTENCES = 2  # the prompt asks for one; a second short one is tolerated
MAX_CITED = 3
MAX_CHARS = 320
PARTS = re.compile(
    r"\b(mornings?|middays?|lunch(?:time)?|noon|afternoons?|evenings?|nights?|tonight|late|"
    r"weekends?|weekdays?|daytime|after work)\b",
    re.I,
)
PART_ALIASES = {"lunchtime": "lunch", "tonight": "night", "late": "night"}


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": self.reasons, "cited": self.cited}


NUMBER_WORD_RE = {w: re.compile(rf"\b{w}\b") for w in NUMBER_WORDS}
DAY_RE = {d: re.compile(rf"\b{d}s?\b", re.I) for d in DAYS}


@lru_cache(maxsize=8)
def _kinds_pattern(catalog_kinds: tuple[str, ...]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One pattern for every kind of place in the catalog, longest first, so "coffee shop" is
    judged as itself and not as "shop", and each kind as the catalog spells it. Compiled once per
    catalog (it was a pattern per kind per check: most of a template request's time)."""
    spelled = {k.lower(): k for k in catalog_kinds if len(k) >= 3}
    names = sorted(spelled, key=len, reverse=True)
    if not names:
        return None, spelled
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w])"), spelled


def _part(word: str) -> str:
    w = word.lower().rstrip("s") if word.lower() not in ("weekdays", "weekends") else word.lower()[:-1]
    return PART_ALIASES.get(w, w)


def check_explanation(
    text: str,
    place: ItemEvidence,
    profile_fact_ids: Iterable[str],
    catalog_kinds: Iterable[str] = (),
    *,
    now_parts: Iterable[str] = (),
    claims: tuple[Claim, ...] = NEUTRAL_CLAIMS,
) -> Verdict:
    """``profile_fact_ids``: the usable (sufficient) fact ids of the profile version used;
    ``now_parts``: parts of the day/week the request itself is for ("this evening" is true then);
    ``claims``: the domain's claim words (domains/claims.py)."""
    reasons: list[str] = []
    body = " ".join(text.split())
    cited = list(dict.fromkeys(CITE.findall(body)))
    plain = CITE.sub(" ", body)
    if not body:
        return Verdict(False, ["empty"], [])
    evidence = place.by_id()
    used = [evidence[c] for c in cited if c in evidence]
    # The names the cited evidence itself puts in (an item named "Article 5", a kind "24 Hour
    # Diner", a film "Mr. & Mrs. Smith") say nothing about the person: their numbers, days and
    # full stops are not claims or sentence ends.
    for name in sorted({k for e in used for k in e.kinds if len(k) >= 3}, key=len, reverse=True):
        plain = re.sub(re.escape(name), " it ", plain, flags=re.IGNORECASE)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", plain.strip()) if s.strip()]
    if len(sentences) > MAX_SENTENCES or len(body) > MAX_CHARS:
        reasons.append(f"too long ({len(sentences)} sentences, {len(body)} characters)")
    if body.count("[") != body.count("]"):
        reasons.append("cut off inside a citation")
    if not cited:
        reasons.append("cites no fact")
    reasons += _citation_reasons(cited, evidence, set(profile_fact_ids))
    numbers = {n for e in used for n in e.numbers} | set(place.own_numbers)
    days = {d for e in used for d in e.days}
    parts = {p for e in used for p in e.parts}
    now = {_part(p) for p in now_parts}
    kinds = {k.lower() for e in used for k in e.kinds} | set(place.own_kinds)
    kinds |= {place.category.lower()} if place.category else set()
    topics = {t for e in used for t in e.topics} | set(place.own_topics)
    low = plain.lower()
    for n in NUMBER.findall(plain):
        norm = n.lstrip("0") or "0"
        if n not in numbers and norm not in numbers and n.split(":")[0].lstrip("0") not in numbers:
            reasons.append(f"the number {n} is in no cited fact")
    for word, digit in NUMBER_WORDS.items():
        if NUMBER_WORD_RE[word].search(low) and digit not in numbers:
            reasons.append(f"'{word}' is in no cited fact")
    for day in DAYS:
        if DAY_RE[day].search(plain) and day not in days:
            reasons.append(f"{day} is in no cited fact")
    for m in PARTS.finditer(plain):
        p = _part(m.group(1))
        # "this evening" or "tonight" speaks of the request itself; "on weekdays" claims a habit
        about_now = p in now and (
            m.group(1).lower() == "tonight" or re.search(r"\bthis\s+$", plain[: m.start()], re.I)
        )
        if (
            p not in parts
            and not about_now
            and not (p in ("midday", "noon") and "lunch" in parts)
            and not (p == "lunch" and "midday" in parts)
        ):
            reasons.append(f"'{m.group(1)}' is in no cited fact")
    kinds_re, spelled = _kinds_pattern(tuple(catalog_kinds))
    if kinds_re is not None:
        named = dict.fromkeys(m.group(0) for m in kinds_re.finditer(low))
        for kind in sorted(named, key=len, reverse=True):
            if kind not in kinds:
                reasons.append(f"names {spelled[kind]}, which is not this item and in no cited fact")
        low = kinds_re.sub(" ", low)
    for topic, pat in claims:
        claim = pat.search(low)  # kinds of place already judged are cut out ("Home (private)")
        if claim and topic not in topics:
            reasons.append(f"'{claim.group(0)}' is backed by no cited fact")
    return Verdict(not reasons, reasons, cited)


def _citation_reasons(cited: list[str], evidence: dict[str, Evidence], known: set[str]) -> list[str]:
    out = []
    for cid in cited:
        if cid not in evidence:
            why = (
                "not a fact of this profile"
                if not (cid in known or cid.startswith("item."))
                else "does not concern this item"
            )
            out.append(f"cites {cid}: {why}")
    return out


def repair_citations(
    text: str,
    place: ItemEvidence,
    profile_fact_ids: Iterable[str],
    catalog_kinds: Iterable[str] = (),
    *,
    now_parts: Iterable[str] = (),
    claims: tuple[Claim, ...] = NEUTRAL_CLAIMS,
) -> tuple[str, Verdict, list[str]]:
    """Check ``text``; where it fails only for claims that other evidence of the same place
    states, cite that evidence too (the fewest pieces that make it pass, at most MAX_CITED in all)
    and check again. Returns (text served, verdict, ids added). The words stay the writer's; a
    claim no evidence of this place supports still fails."""
    ids, kinds = list(profile_fact_ids), list(catalog_kinds)
    verdict = check_explanation(text, place, ids, kinds, now_parts=now_parts, claims=claims)
    if (
        verdict.ok
        or not verdict.cited
        or any(r.startswith(("cites", "empty", "too long", "cut off")) for r in verdict.reasons)
    ):
        return text, verdict, []
    added: list[str] = []
    current, best = text, verdict
    for e in place.evidence:
        if best.ok or len(best.cited) >= MAX_CITED:
            break
        if e.id in best.cited:
            continue
        trial = re.sub(r"\.$", f" [{e.id}].", current)
        v = check_explanation(trial, place, ids, kinds, now_parts=now_parts, claims=claims)
        if len(v.reasons) < len(best.reasons):
            current, best = trial, v
            added.append(e.id)
    return (current, best, added) if best.ok else (text, verdict, [])
