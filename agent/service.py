"""The recommendation service: retrieval → LLM rerank (top-N) → explanations → stored trace.

Every stage degrades instead of failing: no LLM means the feature order and template
explanations, and the response names the ranker that produced it. Everything support staff need
to answer "why" is stored in core.models.Recommendation.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.labels import anchors, place_label, place_relation, readable_profile_text
from agent.llm.admission import LLMAdmission
from agent.llm.explain import Explainer, ExplanationSet, Situation, local_moment, template_explanations
from agent.llm.rerank import LLMReranker, RerankOutcome
from agent.llm.rerank_policy import decide
from agent.trace_writer import TraceWriter
from core.errors import ForbiddenError, NotFoundError, RetryLaterError
from core.experiments import Assignment, ExperimentsConfig
from core.models import Event, Item, Recommendation, User, new_id, utcnow
from mining import UserProfile
from retrieval.feedback import FeedbackRules, FeedbackSignals, Reaction
from retrieval.profile_store import latest_profile, latest_profile_and_version
from retrieval.service import Retriever
from retrieval.types import Candidate, RequestContext

log = logging.getLogger(__name__)
FEEDBACK_KINDS = ("clicked", "accepted", "rejected")
# How long a trace look-up waits for a trace another worker may still hold in its batched writer
# (that writer stores within its interval, 0.1 s by default).
TRACE_WAIT_S = 0.5
TRACE_FLUSH_S = 1.0


@dataclass
class RecommendationResult:
    recommendation_id: str
    user_id: str
    items: list[Candidate]
    ranker: str
    explanation: ExplanationSet | None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    profile_version: int | None = None
    prompt_version: str | None = None
    model: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # item id -> readable label for this person
    where: dict[str, str] = field(default_factory=dict)  # item id -> "0.6 km from your likely work area"
    experiment: dict[str, Any] | None = None  # {"name", "arm", "changes"} when in an experiment


class RecommendationService:
    def __init__(
        self,
        factory: sessionmaker[Session],
        retriever: Retriever,
        reranker: LLMReranker | None,
        explainer: Explainer | None,
        traces: TraceWriter | None = None,
        admission: LLMAdmission | None = None,
        feedback_rules: FeedbackRules | None = None,
        experiments: ExperimentsConfig | None = None,
    ) -> None:
        self.factory = factory
        self.retriever = retriever
        self.reranker = reranker
        self.explainer = explainer
        self.traces = traces  # None: each trace is written inside its request
        llm_part = reranker or explainer
        if admission is None and llm_part is not None:
            llm = llm_part.settings.llm
            admission = LLMAdmission(llm.max_in_flight, llm.max_waiting)
        self.admission = admission  # bounds this process's concurrent LLM work
        self.feedback_rules = feedback_rules or FeedbackRules()
        self.experiments = experiments or ExperimentsConfig()

    def may_call_llm(self, use_llm: bool | None, user_id: str | None = None) -> bool:
        """Whether ``recommend(user_id, ..., use_llm=use_llm)`` may wait on the LLM server."""
        wanted = self.resolve_use_llm(use_llm, self.assignment(user_id) if user_id else None)
        return wanted and (self.reranker is not None or self.explainer is not None)

    def assignment(self, user_id: str) -> Assignment | None:
        return self.experiments.assign(user_id)

    @staticmethod
    def resolve_use_llm(requested: bool | None, arm: Assignment | None) -> bool:
        """The request's own choice, else its experiment arm's, else on."""
        if requested is not None:
            return requested
        if arm is not None and arm.settings.use_llm is not None:
            return arm.settings.use_llm
        return True

    def profile(self, session: Session, user_id: str) -> UserProfile | None:
        return latest_profile(session, user_id)

    def readable_text(self, profile: UserProfile | None) -> str:
        """The profile's text as the person reads it: areas and places named for them, no ids."""
        if profile is None or not profile.text:
            return ""
        return readable_profile_text(profile.text, profile, self.retriever.kind_of)

    def recommend(
        self,
        user_id: str,
        ctx: RequestContext,
        k: int = 10,
        explain: bool = True,
        *,
        use_llm: bool | None = None,
        explain_with_llm: bool | None = None,
        conversation_id: str | None = None,
        trace_extra: dict[str, Any] | None = None,
        unknown_user_is_error: bool = False,
    ) -> RecommendationResult:
        """``use_llm``: rerank with the LLM (None: as the user's experiment arm says, else yes);
        ``explain_with_llm`` (default: ``use_llm``): have it write the explanations too, else the
        template does. ``trace_extra`` joins the stored request (the chat puts its understanding
        and grounding there)."""
        with ExitStack() as llm_slot:  # an LLM slot taken inside is given back however this ends
            return self._recommend(
                user_id, ctx, k, explain, use_llm=use_llm, explain_with_llm=explain_with_llm,
                conversation_id=conversation_id, trace_extra=trace_extra,
                unknown_user_is_error=unknown_user_is_error, llm_slot=llm_slot,
            )  # fmt: skip

    def _recommend(
        self,
        user_id: str,
        ctx: RequestContext,
        k: int,
        explain: bool,
        *,
        use_llm: bool | None,
        explain_with_llm: bool | None,
        conversation_id: str | None,
        trace_extra: dict[str, Any] | None,
        unknown_user_is_error: bool,
        llm_slot: ExitStack,
    ) -> RecommendationResult:
        t0 = time.perf_counter()
        notes: list[str] = []
        arm = self.assignment(user_id)
        requested_llm = use_llm
        use_llm = self.resolve_use_llm(use_llm, arm)
        if explain_with_llm is None and arm is not None:
            explain_with_llm = arm.settings.explain_with_llm
        with self.factory() as s:
            profile, version = latest_profile_and_version(s, user_id)
            known_user = s.get(User, user_id) is not None
            signals = self.reactions(s, user_id, ctx.time) if known_user else None
        if not known_user:
            if unknown_user_is_error:
                raise NotFoundError(f"no user {user_id!r}: post their events first (POST /v1/events)")
            notes.append("unknown user: cold-start recommendations from context and popularity")
        elif profile is None:
            notes.append("no mined profile yet: run `chronotope mine`")
        ctx, signals, hidden = self._apply_reactions(ctx, signals, arm, notes)
        pool_k = max(k, self.reranker.settings.llm.rerank_top_n if self.reranker else k)
        ranked = self.retriever.recommend(
            None,
            user_id,
            ctx,
            pool_k,
            profile,
            ranker=arm.settings.ranker if arm is not None else None,
            feedback=signals if signals is not None and signals.reactions else None,
        )
        t1 = time.perf_counter()
        # One deadline for all of this request's LLM work: the rerank and every explanation share it.
        llm_part = self.reranker or self.explainer
        deadline = time.monotonic() + (llm_part.settings.llm.timeout_s if llm_part is not None else 0.0)
        outcome: RerankOutcome | None = None
        candidates = ranked.candidates
        ranker = ranked.ranker
        if use_llm and llm_part is not None and self.admission is not None:
            busy = llm_slot.enter_context(self.admission.slot(deadline))
            if busy:
                use_llm = False
                explain_with_llm = False
                ranker = f"{ranked.ranker} (llm busy)"
                notes.append(f"{busy}: served the feature ranker's order and template explanations")
        decision = (
            decide(self.reranker.settings.llm.rerank_when, ctx)
            if use_llm and self.reranker is not None and len(candidates) > 1
            else None
        )
        if decision is not None and not decision.use:
            notes.append(f"LLM rerank not used: {decision.why}")
        if decision is not None and decision.use and self.reranker is not None:
            try:
                outcome = self.reranker.rerank(
                    profile, ctx, candidates, base_ranker=ranked.ranker, deadline=deadline
                )
            except Exception as exc:  # the reranker should degrade itself; this catches what it missed
                log.warning("reranker failed: %s", exc)
                outcome = RerankOutcome(
                    candidates, f"{ranked.ranker} (llm unavailable)", None, None, repr(exc)[:200], {}
                )
            # Never show an item that was not among the retrieved candidates, whatever the LLM says.
            known = {c.item_id for c in candidates}
            reranked = [c for c in outcome.candidates if c.item_id in known]
            seen = {c.item_id for c in reranked}
            candidates = reranked + [c for c in candidates if c.item_id not in seen]
            ranker = outcome.ranker
            if outcome.error:
                notes.append(f"LLM unavailable, served the feature ranker's order ({outcome.error})")
        elif self.reranker is None:
            ranker = ranked.ranker
        items = candidates[:k]
        shown = {c.item_id for c in items}
        shifted = {i: why for i, why in ranked.feedback.get("shown", {}).items() if i in shown}
        if shifted:
            notes.append(
                f"{len(shifted)} of these places were moved by earlier feedback (rules: "
                "like places you accepted are raised, like places you rejected are lowered)"
            )
        anchor_list = anchors(profile)
        labels = {c.item_id: place_label(c, anchor_list) for c in items}
        where = {c.item_id: w for c in items if (w := place_relation(c, anchor_list))}
        t2 = time.perf_counter()
        explanation = None
        llm_explains = use_llm if explain_with_llm is None else explain_with_llm
        if explain and items:
            situation = self.situation(user_id, ctx)
            if llm_explains and self.explainer is not None and not (outcome and outcome.error):
                try:
                    explanation = self.explainer.explain(
                        profile, ctx, items, labels=labels, situation=situation, deadline=deadline
                    )
                except Exception as exc:  # degrade to the template built from the same facts
                    log.warning("explainer failed: %s", exc)
                    notes.append("LLM explanation failed; template explanation served")
                    explanation = template_explanations(profile, ctx, items, situation=situation)
            else:
                explanation = template_explanations(profile, ctx, items, situation=situation)
            if explanation.errors:
                notes.append(
                    f"{len(explanation.errors)} explanation(s) fell back to the template "
                    f"(LLM unavailable: {explanation.errors[0]})"
                )
            replaced = [i for i, e in explanation.items.items() if e.rejected]
            if replaced:
                notes.append(
                    f"{len(replaced)} LLM explanation(s) failed the faithfulness check twice; template served"
                )
        llm_slot.close()  # the slot is held from the rerank to the last explanation
        t3 = time.perf_counter()
        timings = {
            **ranked.timings,
            "retrieve_ms": round((t1 - t0) * 1000, 1),
            "rerank_ms": round((t2 - t1) * 1000, 1),
            "explain_ms": round((t3 - t2) * 1000, 1),
            "total_ms": round((t3 - t0) * 1000, 1),
        }
        rec_id = new_id()
        used_fact_ids = sorted(
            {f for e in (explanation.items.values() if explanation else []) for f in e.fact_ids}
        )
        facts = [
            {"id": f.id, "statement": f.statement, "confidence": f.confidence}
            for f in (profile.facts if profile else [])
            if f.id in used_fact_ids
        ]
        # The places' own attributes an explanation cited (item.*), as the person was told them.
        for item_id, e in explanation.items.items() if explanation else []:
            for ev in (e.evidence or {}).get("evidence", []):
                if ev["id"].startswith("item.") and ev["id"] in e.fact_ids:
                    facts.append({"id": ev["id"], "statement": ev["text"], "item_id": item_id})
        record = Recommendation(
            id=rec_id,
            user_id=user_id,
            request={
                "context": ctx.to_dict(),
                "k": k,
                "explain": explain,
                "use_llm": use_llm,
                **({"use_llm_requested": requested_llm} if requested_llm is not None and arm else {}),
                **({"llm_rerank": decision.to_dict()} if decision is not None else {}),
                **(trace_extra or {}),
            },
            profile_version=version,
            facts=facts,
            candidates=[
                {
                    "item_id": c.item_id,
                    "label": labels.get(c.item_id),
                    "sources": c.sources,
                    "feature_score": c.score,
                    "llm_score": c.llm_score,
                    "final_score": c.final_score,
                    # zero-valued features left out: most are zero for most places (a third of a trace)
                    "features": {name: v for name, v in c.features.items() if v},
                }
                for c in candidates
            ],
            items=[c.item_id for c in items],
            ranker=ranker,
            prompt_version=", ".join(
                p
                for p in (
                    outcome.prompt_version if outcome and not outcome.error else None,
                    explanation.prompt_version if explanation else None,
                )
                if p
            )
            or None,
            model=(outcome.model if outcome else None) or (explanation.model if explanation else None),
            explanation=explanation.to_dict() if explanation else None,
            timings={
                **timings,
                "notes": notes,
                "pool_size": ranked.pool_size,
                "pool_sources": ranked.pool_sources,
                "places_scored": ranked.places_scored,
            },
            conversation_id=conversation_id,
            experiment=arm.experiment if arm else None,
            arm=arm.arm if arm else None,
        )
        feedback_trace = self.feedback_trace(signals, hidden, shifted, ranked.feedback)
        if feedback_trace:
            record.request = {**record.request, "feedback": feedback_trace}
        if arm is not None:
            record.request = {**record.request, "experiment": arm.to_dict()}
        if known_user:  # a cold-start request for an unknown id stores no user data
            if self.traces is not None and conversation_id is None:
                self.traces.submit(record)  # written within interval_s, off the request path
            else:  # the chat's turns refer to their recommendation at once: written now
                with self.factory() as s:
                    s.add(record)
                    s.commit()
        return RecommendationResult(
            rec_id,
            user_id,
            items,
            ranker,
            explanation,
            notes,
            timings,
            version,
            record.prompt_version,
            record.model,
            labels,
            where,
            arm.to_dict() if arm else None,
        )

    def _apply_reactions(
        self, ctx: RequestContext, signals: FeedbackSignals | None, arm: Assignment | None, notes: list[str]
    ) -> tuple[RequestContext, FeedbackSignals | None, dict[str, Reaction]]:
        """Rejected places out of the request; the feedback rules as the arm says (hiding stays)."""
        if signals is None:
            return ctx, None, {}
        hidden = {i: r for i, r in signals.hidden().items() if i not in ctx.exclude_items}
        if hidden:
            notes.append(
                "hidden after an earlier rejection: "
                + ", ".join(f"{i} (rejected on {r.at.date().isoformat()})" for i, r in sorted(hidden.items()))
            )
            ctx = replace(ctx, exclude_items=tuple(sorted(set(ctx.exclude_items) | set(hidden))))
        learning = self.feedback_rules.learning
        if arm is not None and arm.settings.feedback_learning is not None:
            learning = arm.settings.feedback_learning
        if signals.rules.learning != learning:
            signals = replace(signals, rules=replace(signals.rules, learning=learning))
        return ctx, signals, hidden

    def reactions(self, session: Session, user_id: str, now: Any) -> FeedbackSignals:
        """This user's reactions to recommendations, as far back as the feedback rules read (one
        indexed look-up of their feedback events, with each place's category)."""
        since = now - self.feedback_rules.memory
        rows = session.execute(
            select(Event.item_id, Event.attributes, Event.ts, Event.recommendation_id, Item.category)
            .outerjoin(Item, Item.id == Event.item_id)
            .where(Event.user_id == user_id, Event.kind == "feedback", Event.ts >= since)
        ).all()
        got = [
            Reaction(str(item), str((attrs or {}).get("feedback")), ts, cat, rec_id)
            for item, attrs, ts, rec_id, cat in rows
            if item and (attrs or {}).get("feedback") in FEEDBACK_KINDS
        ]
        return FeedbackSignals.of(got, now, self.feedback_rules)

    @staticmethod
    def feedback_trace(
        signals: FeedbackSignals | None,
        hidden: dict[str, Reaction],
        shifted: dict[str, str],
        ranked_feedback: dict[str, Any],
    ) -> dict[str, Any]:
        """What support staff read: which places earlier feedback hid or moved, and why."""
        if signals is None or not signals.reactions:
            return {}
        return {
            **signals.summary(),
            "hidden": {
                i: f"place {i} hidden: rejected on {r.at.date().isoformat()}"
                + (f" (recommendation {r.recommendation_id})" if r.recommendation_id else "")
                for i, r in sorted(hidden.items())
            },
            "shifted": shifted,  # shown places the feedback moved
            # places the feedback pushed out of the ranked list (they would have been shown)
            "displaced": ranked_feedback.get("displaced", {}),
            "shifted_in_pool": ranked_feedback.get("shifted_in_pool", 0),
        }

    def situation(self, user_id: str, ctx: RequestContext) -> Situation:
        """The request's local moment, the user's last stop and names for places: what the
        evidence behind an explanation needs besides the profile."""
        r = self.retriever
        last = r.last_stop(user_id, ctx.time)
        moment = local_moment(ctx, self.utc_offset_min(user_id), last, r.kind_of(last) if last else None)
        return Situation(moment, r.kind_of, r.catalog_kinds())

    def utc_offset_min(self, user_id: str) -> int:
        """The user's local offset from UTC, from their latest event (0 when unknown)."""
        return self.retriever.utc_offset_min(user_id)

    def trace(self, session: Session, recommendation_id: str) -> Recommendation:
        rec = session.get(Recommendation, recommendation_id)
        if rec is None and self.traces is not None:
            # Maybe still queued here, or in another worker's writer (stored within its interval).
            # A writer waiting for the store does not finish its flush: wait a second at most.
            self.traces.flush(timeout=TRACE_FLUSH_S)
            deadline = time.monotonic() + TRACE_WAIT_S
            while rec is None:
                session.rollback()  # a fresh snapshot: see what other workers committed since
                rec = session.get(Recommendation, recommendation_id)
                if rec is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        if rec is None and self.traces is not None and self.traces.holds(recommendation_id):
            # served by this worker, its trace waiting for the store (down or full): not a 404
            raise RetryLaterError(
                f"recommendation {recommendation_id} was served but is not stored yet (the store is "
                "unavailable); try again shortly",
                retry_after_s=2,
            )
        if rec is None:
            raise NotFoundError(f"no recommendation {recommendation_id!r}")
        return rec

    def feedback(
        self, recommendation_id: str, user_id: str | None, kind: str, item_id: str | None, reason: str | None
    ) -> str:
        """Store feedback as an event linked to the recommendation (mining and ranking learn from it)."""
        if kind not in FEEDBACK_KINDS:
            raise NotFoundError(f"unknown feedback kind {kind!r}")
        with self.factory() as s:
            rec = self.trace(s, recommendation_id)
            if user_id is not None and rec.user_id != user_id:
                raise ForbiddenError("this recommendation belongs to another user")
            if item_id is not None and item_id not in rec.items:
                raise NotFoundError(f"item {item_id!r} was not part of recommendation {recommendation_id}")
            eid = new_id()
            s.add(
                Event(
                    id=eid,
                    user_id=rec.user_id,
                    item_id=item_id or (rec.items[0] if rec.items else None),
                    kind="feedback",
                    ts=utcnow(),
                    tz_offset_min=0,
                    text=reason,
                    recommendation_id=rec.id,
                    attributes={"feedback": kind},
                )
            )
            s.commit()
        return eid

    def feedback_history(self, session: Session, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The user's reactions, newest first, each with what it does now (hidden until when, or
        counted towards its kind of place) and the recommendation it answered."""
        rows = session.execute(
            select(Event.id, Event.item_id, Event.attributes, Event.ts, Event.text, Event.recommendation_id)
            .add_columns(Item.category, Item.name)
            .outerjoin(Item, Item.id == Event.item_id)
            .where(Event.user_id == user_id, Event.kind == "feedback")
            .order_by(Event.ts.desc(), Event.id.desc())
            .limit(limit)
        ).all()
        now = utcnow()
        hidden = self.reactions(session, user_id, now).hidden()
        rules = self.feedback_rules
        out = []
        for eid, item, attrs, ts, reason, rec_id, category, name in rows:
            kind = (attrs or {}).get("feedback")
            effect = "counted towards its kind of place" if category else "counted for this place"
            if item in hidden and hidden[item].at == ts:
                until = ts + timedelta(days=rules.hide_rejected_days)
                effect = f"hidden from this user until {until.date().isoformat()}"
            elif kind == "rejected" and ts < now - timedelta(days=rules.hide_rejected_days):
                effect = "no longer hidden (older than the hiding window)"
            elif kind == "rejected" and item not in hidden:
                effect = "no longer hidden (accepted or clicked since)"
            out.append(
                {
                    "event_id": eid,
                    "at": ts.isoformat(),
                    "kind": kind,
                    "item_id": item,
                    "category": category,
                    "name": name,
                    "recommendation_id": rec_id,
                    "reason": reason,
                    "effect": effect,
                }
            )
        return out

    def recent(self, session: Session, user_id: str, limit: int = 20) -> list[Recommendation]:
        return list(
            session.scalars(
                select(Recommendation)
                .where(Recommendation.user_id == user_id)
                .order_by(Recommendation.created_at.desc())
                .limit(limit)
            )
        )

    def status(self) -> dict[str, Any]:
        return {"retriever": self.retriever.status(), "llm_enabled": self.reranker is not None}
