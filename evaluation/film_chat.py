"""The chat and the explanations on a films store, as served (``chronotope eval-chat --format
movielens``, ``chronotope eval-explain --format movielens``).

Chat: each wish of evaluation/film_wishes.yaml is said by a person of the store (drawn with the
seed) in a new conversation; the served agent answers (the LLM understands and replies, or the
rules and the template where it cannot). A list *understood* the wish when its top 3 are each of
a wished genre and, where the wish named one, from its decade and led by the film it is like (the
notes say which film was read); a *violation* is a shown film of an excluded genre, from another
decade than the one asked for, or one the person already rated (must be 0). Replies are checked
to name only the films shown.

Explanations: k films for sampled people of the store with the LLM writing the explanations; the
share it wrote (the rest are the template after the faithfulness checker refused the LLM's text),
the checker's verdict on every served text and its reasons for the refused ones, the latency.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import yaml

from agent.assembly import Services
from agent.pipeline import RecommendOptions
from retrieval.types import RequestContext

YEAR = re.compile(r"\((?:18|19|20)\d\d\)")


@dataclass(frozen=True)
class Wish:
    message: str
    split: str
    genres: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    decade: int | None = None
    like: str | None = None


def load_wishes(which: str = "all") -> list[Wish]:
    data = yaml.safe_load((resources.files("evaluation") / "film_wishes.yaml").read_text(encoding="utf-8"))
    out = [
        Wish(
            w["message"],
            w["split"],
            tuple(w.get("genres", ())),
            tuple(w.get("avoid", ())),
            w.get("decade"),
            w.get("like"),
        )
        for w in data["wishes"]
    ]
    return [w for w in out if which in ("all", w.split)]


def names_only_known(reply: str, known: str) -> bool:
    """Every "<title> (<year>)" of ``reply`` ends with words that name a film of ``known``."""
    reply = reply.replace('"', "").replace("“", "").replace("”", "")
    for m in YEAR.finditer(reply):
        before = reply[: m.start()].split()[-6:]
        if not any(f"{' '.join(before[-k:])} {m.group(0)}" in known for k in range(1, len(before) + 1)):
            return False
    return True


def _judge(w: Wish, turn: Any, rated: set[str]) -> dict[str, Any]:
    items = turn.items
    kinds = [set(i.get("kinds") or []) for i in items]
    years = [(i.get("attributes") or {}).get("year") for i in items]
    violations = [i["item_id"] for i, k in zip(items, kinds, strict=True) if k & set(w.avoid)]
    if w.decade is not None:
        violations += [
            i["item_id"] for i, y in zip(items, years, strict=True) if not y or y // 10 * 10 != w.decade
        ]
    violations += [i["item_id"] for i in items if i["item_id"] in rated]
    ok = bool(items)
    if w.genres:
        ok &= len(items) >= 3 and all(k & set(w.genres) for k in kinds[:3])
    if w.like:
        ok &= any(n.lower().startswith(f"like {w.like.lower()}") for n in turn.notes)
    # a film named in the reply carries its year; it must be a shown film, one their explanations
    # cite ("you gave Snatch (2000) 5 stars") or one the notes name
    cited = [str(i.get("explanation") or "") for i in items]
    known = " ".join([*(i["label"] for i in items), *turn.notes, *cited])
    return {
        "message": w.message,
        "split": w.split,
        "understood": bool(ok and not violations),
        "violations": violations,
        "understood_by": turn.understood_by,
        "reply_source": turn.reply_source,
        "names_only_shown": names_only_known(turn.reply, known),
        "reply": turn.reply[:400],
        "shown": [f"{i['label']} [{', '.join(i.get('kinds') or [])}]" for i in items[:5]],
        "args": turn.constraints.get("args"),
    }


def run_chat(
    services: Services,
    users: list[str],
    wishes: list[Wish],
    rated_of: Callable[[str], set[str]],
    when: datetime,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    rows = []
    for w in wishes:
        user = rng.choice(users)
        t0 = time.perf_counter()
        turn = services.chat.respond(user, w.message, when=when)
        row = _judge(w, turn, rated_of(user))
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["user"] = user
        rows.append(row)
        if progress:
            progress(1)
    by_split = {s: _summary([r for r in rows if r["split"] == s]) for s in ("dev", "holdout")}
    return {"overall": _summary(rows), "by_split": by_split, "turns": rows}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n": 0}
    secs = [r["seconds"] for r in rows]
    return {
        "n": len(rows),
        "understood": round(sum(r["understood"] for r in rows) / len(rows), 3),
        "violations": sum(len(r["violations"]) for r in rows),
        "understood_by_llm": round(sum(r["understood_by"] == "llm" for r in rows) / len(rows), 3),
        "reply_by_llm": round(sum(r["reply_source"] == "llm" for r in rows) / len(rows), 3),
        "names_only_shown": round(sum(r["names_only_shown"] for r in rows) / len(rows), 3),
        "turn_s_median": round(statistics.median(secs), 2),
    }


def run_explain(
    services: Services,
    users: list[str],
    k: int,
    when: datetime,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    opts = RecommendOptions(explain=True, use_llm=True, explain_with_llm=True)
    written: Counter[str] = Counter()
    passed = refused = 0
    reasons: Counter[str] = Counter()
    secs: list[float] = []
    examples: list[dict[str, Any]] = []
    fallbacks: Counter[str] = Counter()
    for user in users:
        t0 = time.perf_counter()
        res = services.pipeline.run(user, RequestContext(time=when), k, opts)
        secs.append(time.perf_counter() - t0)
        # why the template served instead of the LLM: the model failed (timeout, open breaker), or
        # the request's session could not use it (queue full, deadline spent before this stage)
        for err in res.explanation.errors if res.explanation else []:
            fallbacks[err.split(": ", 1)[-1][:70]] += 1
        for c in res.items:
            e = res.explanation.items.get(c.item_id) if res.explanation else None
            if e is None:
                continue
            written[e.source] += 1
            passed += bool(e.verdict.get("ok"))
            if e.rejected:
                refused += 1
                reasons.update(r.strip()[:80] for r in str(e.rejected).split("; "))
            if len(examples) < 10:
                examples.append({"film": c.name, "by": e.source, "text": e.text})
        if progress:
            progress(1)
    n = sum(written.values())
    return {
        "people": len(users),
        "explanations": n,
        "llm_written": round(written["llm"] / max(n, 1), 3),
        "served_pass_checker": round(passed / max(n, 1), 3),
        "llm_texts_refused": refused,
        "refusal_reasons": dict(reasons.most_common(8)),
        "llm_failures": dict(fallbacks.most_common(8)),
        "seconds_per_list_median": round(statistics.median(secs), 2) if secs else None,
        "seconds_per_list_max": round(max(secs), 2) if secs else None,
        "examples": examples,
    }
