"""The recommendation pipeline: one request, stage by stage.

load the request's user (agent/context.py) → apply their reactions (hidden items, the feedback
rules) → retrieve and rank (retrieval) → take an LLM slot → rerank the top (where the policy
allows) → name the items for the person (the domain) → explain them (LLM, else template) → store
the trace (agent/records.py). Every stage degrades instead of failing: no LLM means the feature
order and template explanations, and the response says which ranker produced it and why.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from agent.context import RequestUser, UserLoader
from agent.explanations import ExplanationSet, Situation, local_moment, template_explanations
from agent.list_notes import empty_note, fill_note, why_not_llm
from agent.llm.explain import Explainer
from agent.llm.gateway import LLMGateway, LLMSession
from agent.llm.rerank import LLMReranker, RerankOutcome
from agent.llm.rerank_policy import decide
from agent.records import Records
from agent.trace_row import Served, trace_row
from core.errors import NotFoundError
from core.experiments import Assignment
from core.models import new_id
from core.settings import LLMSettings
from domains.base import Domain
from retrieval.feedback import FeedbackRules
from retrieval.service import Retriever
from retrieval.types import Candidate, RequestContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecommendOptions:
    explain: bool = True
    use_llm: bool | None = None  # None: as the user's experiment arm says, else yes
    explain_with_llm: bool | None = None  # default: ``use_llm``
    conversation_id: str | None = None  # a chat turn's: the trace is stored at once
    trace_extra: dict[str, Any] | None = None  # joins the stored request (the chat's understanding)
    unknown_user_is_error: bool = False
    session: LLMSession | None = None  # the caller's LLM session (a chat turn's slot and deadline)


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
    where: dict[str, str] = field(default_factory=dict)  # item id -> its relation to the person
    experiment: dict[str, Any] | None = None  # {"name", "arm", "changes"} when in an experiment
    emptied_by: dict[str, Any] | None = None  # which filter left nothing (an empty list says why)
    request_notes: list[str] = field(
        default_factory=list
    )  # the domain's words on the request (also in notes)


# How the notes a person reads speak of the LLM (the details for support name the error)
LLM_UNAVAILABLE = "the language model is unavailable right now"


def resolve_use_llm(requested: bool | None, arm: Assignment | None) -> bool:
    """The request's own choice, else its experiment arm's, else on."""
    if requested is not None:
        return requested
    if arm is not None and arm.settings.use_llm is not None:
        return arm.settings.use_llm
    return True


class RecommendPipeline:
    def __init__(
        self,
        users: UserLoader,
        retriever: Retriever,
        domain: Domain,
        records: Records,
        llm: LLMGateway,
        llm_settings: LLMSettings,
        reranker: LLMReranker | None = None,
        explainer: Explainer | None = None,
    ) -> None:
        self.users = users
        self.retriever = retriever
        self.domain = domain
        self.records = records
        self.llm = llm
        self.settings = llm_settings
        self.reranker = reranker
        self.explainer = explainer

    @property
    def feedback_rules(self) -> FeedbackRules:
        return self.users.rules

    def may_call_llm(self, use_llm: bool | None, user_id: str | None = None) -> bool:
        """Whether a request may wait on the LLM server (the API runs it in a thread then)."""
        arm = self.users.experiments.assign(user_id) if user_id else None
        wanted = resolve_use_llm(use_llm, arm)
        return wanted and self.llm.enabled and (self.reranker is not None or self.explainer is not None)

    def run(
        self,
        user_id: str,
        ctx: RequestContext,
        k: int = 10,
        opts: RecommendOptions = RecommendOptions(),
        user: RequestUser | None = None,
    ) -> RecommendationResult:
        """``user``: the request's user, when the caller (a chat turn) has already loaded it."""
        t0 = time.perf_counter()
        user = user or self.users.load(user_id, ctx.time)
        notes, details = self._check_user(user, opts)
        ctx, hidden = self._apply_reactions(ctx, user, notes)
        arm = user.arm
        pool_k = max(k, self.settings.rerank_top_n if self.reranker else k)
        signals = user.reactions if user.reactions is not None and user.reactions.reactions else None
        ranked = self.retriever.recommend(
            user.person,
            ctx,
            pool_k,
            user.profile,
            ranker=arm.settings.ranker if arm else None,
            feedback=signals,
        )
        if ranked.filled:  # said to the person with the domain's words (also in the reply)
            ranked.notes.append(fill_note(self.domain, ranked))
        notes.extend(ranked.notes)
        s = Served(
            user,
            ctx,
            k,
            ranked,
            ranked.candidates,
            ranked.ranker,
            notes=notes,
            details=details,
            hidden=hidden,
        )
        t1 = time.perf_counter()
        use_llm = resolve_use_llm(opts.use_llm, arm)
        explain_llm = opts.explain_with_llm
        if explain_llm is None and arm is not None:
            explain_llm = arm.settings.explain_with_llm
        deadline = time.monotonic() + self.settings.timeout_s
        cm: AbstractContextManager[LLMSession]
        if opts.session is not None and use_llm:
            deadline, cm = opts.session.deadline, nullcontext(opts.session)
        else:
            cm = self.llm.session(deadline) if use_llm else nullcontext(self.llm.unused(deadline))
        with cm as session:
            if use_llm and session.busy and session.busy != "LLM disabled":
                s.ranker = f"{ranked.ranker} (llm busy)"
                s.notes.append(
                    f"{why_not_llm(session.busy)}: these are ranked by your habits and explained by templates"
                )
                s.details.append(
                    f"{session.busy}: served the feature ranker's order and template explanations"
                )
            use_llm = use_llm and session.usable
            self._rerank(session, s, use_llm)
            t2 = time.perf_counter()
            self._present(s)
            if opts.explain and s.items:
                explain_with = use_llm if explain_llm is None else explain_llm and use_llm
                s.explanation = self._explain(session if explain_with else self.llm.unused(deadline), s)
        t3 = time.perf_counter()
        s.timings = {
            **ranked.timings,
            "retrieve_ms": round((t1 - t0) * 1000, 1),
            "rerank_ms": round((t2 - t1) * 1000, 1),
            "explain_ms": round((t3 - t2) * 1000, 1),
            "total_ms": round((t3 - t0) * 1000, 1),
        }
        return self._record(s, opts, use_llm)

    def _check_user(self, user: RequestUser, opts: RecommendOptions) -> tuple[list[str], list[str]]:
        """The notes for the person, and the details for support, that hold before ranking."""
        notes: list[str] = list(self.retriever.recommender.plan.notes)
        details: list[str] = []
        if not user.known:
            if opts.unknown_user_is_error:
                raise NotFoundError(f"no user {user.user_id!r}: post their events first (POST /v1/events)")
            notes.append("new here: these come from the time of day and what is popular")
            details.append("unknown user: cold-start recommendations from context and popularity")
        elif user.profile is None:
            notes.append(
                f"your habits are not summarised yet: these come from your {self.domain.nouns.events}"
            )
            details.append("no mined profile yet: run `chronotope mine`")
        return notes, details

    def _apply_reactions(
        self, ctx: RequestContext, user: RequestUser, notes: list[str]
    ) -> tuple[RequestContext, dict[str, Any]]:
        """Rejected items out of the request; the feedback rules as the arm says (hiding stays)."""
        signals = user.reactions
        if signals is None:
            return ctx, {}
        hidden = {i: r for i, r in signals.hidden().items() if i not in ctx.exclude_items}
        if hidden:
            notes.append(
                f"{len(hidden)} {self.domain.nouns.item if len(hidden) == 1 else self.domain.nouns.items} "
                "hidden after an earlier rejection"
            )
            ctx = replace(ctx, exclude_items=tuple(sorted(set(ctx.exclude_items) | set(hidden))))
        return ctx, hidden

    def _rerank(self, session: LLMSession, s: Served, use_llm: bool) -> None:
        decision = (
            decide(self.settings.rerank_when or self.domain.rerank_when, s.ctx, self.domain.rerank_evidence)
            if use_llm and self.reranker is not None and len(s.candidates) > 1
            else None
        )
        if decision is not None and not decision.use:
            s.details.append(f"LLM rerank not used: {decision.why}")  # the trace's llm_rerank too
        if decision is not None:
            s.request["llm_rerank"] = decision.to_dict()
        if decision is None or not decision.use or self.reranker is None or not session.usable:
            return
        try:
            outcome = self.reranker.rerank(
                session,
                s.user.profile,
                s.ctx,
                s.candidates,
                base_ranker=s.ranked.ranker,
                utc_offset_min=s.user.utc_offset_min,
            )
        except Exception as exc:  # the reranker degrades itself; this catches what it missed
            log.warning("reranker failed: %s", exc)
            outcome = RerankOutcome(
                s.candidates, f"{s.ranked.ranker} (llm unavailable)", None, None, repr(exc)[:200]
            )
        # Never show an item that was not among the retrieved candidates, whatever the LLM says.
        known = {c.item_id for c in s.candidates}
        reranked = [c for c in outcome.candidates if c.item_id in known]
        seen = {c.item_id for c in reranked}
        s.candidates = reranked + [c for c in s.candidates if c.item_id not in seen]
        s.ranker, s.outcome = outcome.ranker, outcome
        if outcome.error:
            s.notes.append(f"{LLM_UNAVAILABLE}: these are ranked by your habits")
            s.details.append(f"LLM unavailable, served the feature ranker's order ({outcome.error})")

    def _present(self, s: Served) -> None:
        s.items = s.candidates[: s.k]
        view = s.user.view
        s.labels = {c.item_id: self.domain.label(c, view) for c in s.items}
        if not s.items:
            s.notes.append(empty_note(self.domain, s.ranked, s.ctx))

    def _explain(self, session: LLMSession, s: Served) -> ExplanationSet:
        r = self.retriever
        last = s.user.person.last_item
        moment = local_moment(s.ctx, s.user.utc_offset_min, last, r.kind_of(last) if last else None)
        situation = Situation(moment, r.kind_of, r.catalog_kinds(), self.domain, s.user.view)
        if self.explainer is not None and session.usable and not (s.outcome and s.outcome.error):
            try:
                out = self.explainer.explain(
                    session, s.user.profile, s.ctx, s.items, labels=s.labels, situation=situation
                )
            except Exception as exc:  # degrade to the template built from the same facts
                log.warning("explainer failed: %s", exc)
                s.notes.append("the explanations are written by templates (the language model failed)")
                s.details.append(f"explainer failed: {type(exc).__name__}: {exc}"[:300])
                out = template_explanations(s.user.profile, s.ctx, s.items, situation=situation)
        else:
            out = template_explanations(s.user.profile, s.ctx, s.items, situation=situation)
        if out.errors:
            s.notes.append(
                f"{len(out.errors)} explanation(s) fell back to the template (the LLM was unavailable)"
            )
        replaced = [i for i, e in out.items.items() if e.rejected]
        if replaced:
            s.notes.append(
                f"{len(replaced)} LLM explanation(s) failed the faithfulness check; template served"
            )
        return out

    def _record(self, s: Served, opts: RecommendOptions, use_llm: bool) -> RecommendationResult:
        shown = {c.item_id for c in s.items}
        shifted = {i: why for i, why in s.ranked.feedback.get("shown", {}).items() if i in shown}
        if shifted:
            s.notes.append(
                f"{len(shifted)} of these {self.domain.nouns.items} were moved by earlier feedback (rules: "
                f"like {self.domain.nouns.items} you accepted are raised, like ones you rejected are lowered)"
            )
        arm = s.user.arm
        s.request = {
            "context": s.ctx.to_dict(),
            "k": s.k,
            "explain": opts.explain,
            "use_llm": use_llm,
            **s.request,
            **(opts.trace_extra or {}),
        }
        if opts.use_llm is not None and arm:
            s.request["use_llm_requested"] = opts.use_llm
        rec_id = new_id()
        record = trace_row(s, rec_id, opts.conversation_id, shifted)
        if s.user.known:  # a cold-start request for an unknown id stores no user data
            self.records.store(record, at_once=opts.conversation_id is not None)
        view = s.user.view
        return RecommendationResult(
            rec_id,
            s.user.user_id,
            s.items,
            s.ranker,
            s.explanation,
            s.notes,
            s.timings,
            s.user.profile_version,
            record.prompt_version,
            record.model,
            s.labels,
            {c.item_id: w for c in s.items if (w := self.domain.relation(c, view))},
            arm.to_dict() if arm else None,
            s.ranked.emptied_by,
            list(s.ranked.notes),
        )
