"""Simulated people reacting to their recommendations on a real store (the NYC demo's), through the
recommendation service the API uses: how fast a kind of place they keep rejecting recedes and a
kind they accept climbs, with the feedback rules on and with hiding only; and what reading the
reactions costs a request.

    CHRONOTOPE_DATA_DIR=… .venv/bin/python benchmarks/feedback_loop.py [--users 100] [--rounds 5] [--k 10]

Each simulated person gets a disliked kind (the categorised kind most frequent in their first
list) and a liked kind (another categorised kind in that list, the lowest placed). Every round
they ask for k places at the same moment, reject every shown place of the disliked kind and
accept the first shown place of the liked kind. Their feedback is deleted
between the two settings. Only places with a known category take part (on the NYC data a
minority of the history's places have one). It stores recommendations and deletes every
feedback event of the store when done: run it on a copy of a store, never on one people use.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete

from agent.assembly import Services, build_services
from agent.pipeline import RecommendOptions
from core.db import open_store
from core.models import Event
from core.settings import Settings
from domains import resolve
from retrieval.service import Retriever
from retrieval.types import RequestContext

PLAIN = RecommendOptions(explain=False, use_llm=False)


def _services(s: Settings, factory: Any, retriever: Retriever, learning: bool) -> Services:
    fb = s.feedback.model_copy(update={"learning": learning})
    quiet = s.model_copy(update={"feedback": fb, "llm": s.llm.model_copy(update={"enabled": False})})
    return build_services(quiet, factory, retriever=retriever, traces=False)


def _recommend(sv: Services, u: str, when: Any, k: int) -> Any:
    return sv.pipeline.run(u, RequestContext(time=when), k, PLAIN)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.environ.get("CHRONOTOPE_DATA_DIR"):
        raise SystemExit("set CHRONOTOPE_DATA_DIR to a store with events, profiles and a ranker")
    s = Settings(data_dir=Path(os.environ["CHRONOTOPE_DATA_DIR"]))
    _, factory = open_store(s)
    with factory() as sess:
        domain = resolve(s.domain, sess)
    retriever = Retriever.load(s, factory, domain.retrieval_plan(), load_index=False, grounding=False)
    service = _services(s, factory, retriever, True)
    rng = np.random.default_rng(a.seed)
    people = []
    for u in rng.permutation(list(retriever.histories)):
        hist = retriever.history(u)
        if len(hist) < 5:
            continue
        when = hist["ts"].iloc[-1].to_pydatetime() + timedelta(hours=1)
        first = _recommend(service, u, when, a.k).items
        shown = [c.category for c in first if c.category]
        if len(set(shown)) < 2:
            continue
        disliked = max(sorted(set(shown)), key=shown.count)
        liked = [k for k in shown if k != disliked][-1]
        people.append((u, when, disliked, liked))
        if len(people) >= a.users:
            break
    print(
        f"{len(people)} simulated people, {a.rounds} rounds of {a.k} places, "
        f"ranker {retriever.recommender.ranker.name}"
    )
    results = {}
    for label, learning in (("hiding only", False), ("feedback rules", True)):
        service = _services(s, factory, retriever, learning)
        disliked_share = np.zeros(a.rounds)
        liked_share = np.zeros(a.rounds)
        for u, when, disliked, liked in people:
            for r in range(a.rounds):
                out = _recommend(service, u, when, a.k)
                kinds = [c.category for c in out.items]
                disliked_share[r] += kinds.count(disliked) / a.k
                liked_share[r] += kinds.count(liked) / a.k
                for c in out.items:
                    if c.category == disliked:
                        service.records.feedback(out.recommendation_id, u, "rejected", c.item_id, None)
                first_liked = next((c for c in out.items if c.category == liked), None)
                if first_liked is not None:
                    service.records.feedback(out.recommendation_id, u, "accepted", first_liked.item_id, None)
        results[label] = (disliked_share / len(people), liked_share / len(people))
        with factory() as sess:
            sess.execute(delete(Event).where(Event.kind == "feedback"))
            sess.commit()
    print(f"share of the {a.k} places shown that are of the person's disliked / liked kind")
    print(f"{'round':<8}" + "".join(f"{lab:>28}" for lab in results))
    for r in range(a.rounds):
        cells = "".join(f"{results[lab][0][r]:>19.3f} / {results[lab][1][r]:.3f}" for lab in results)
        print(f"{r + 1:<8}{cells}")
    latency(service, people, a.k)


def latency(service: Services, people: list, k: int) -> None:
    """ms per request (no LLM, no explanations) without reactions and with 20 stored reactions."""

    def timed() -> list[float]:
        out = []
        for u, when, _, _ in people:
            t0 = time.perf_counter()
            _recommend(service, u, when, k)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    timed()  # warm
    base = timed()
    for u, when, _, _ in people:
        out = _recommend(service, u, when, k)
        for c in out.items[:10]:
            service.records.feedback(out.recommendation_id, u, "clicked", c.item_id, None)
            service.records.feedback(out.recommendation_id, u, "rejected", c.item_id, None)
    with_fb = timed()
    with service.factory() as sess:
        sess.execute(delete(Event).where(Event.kind == "feedback"))
        sess.commit()
    q = lambda xs: f"p50 {statistics.median(xs):.1f} ms, p95 {np.percentile(xs, 95):.1f} ms"  # noqa: E731
    print(f"request without reactions: {q(base)}; with 20 reactions: {q(with_fb)}")


if __name__ == "__main__":
    main()
