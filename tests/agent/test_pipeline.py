"""The recommendation pipeline: stage composition, degradation at each stage and the stored trace.

The retriever, reranker and explainer are small fakes here (their real versions have their own
tests, and tests/api + tests/integration run the pipeline over the real retriever); this file tests
the logic around them: order, fallbacks, the never-a-new-item guard and what is stored.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.context import UserLoader
from agent.explanations import ExplanationSet, ItemExplanation
from agent.llm.admission import LLMAdmission
from agent.llm.breaker import CircuitBreaker
from agent.llm.gateway import LLMGateway
from agent.llm.rerank import RerankOutcome
from agent.pipeline import RecommendOptions, RecommendPipeline
from agent.records import Records
from core.errors import ForbiddenError, NotFoundError
from core.experiments import ExperimentsConfig
from core.models import Event, Item, Recommendation, User
from core.settings import Settings
from domains.places import PLACES
from mining import UserProfile
from retrieval.feedback import FeedbackRules
from retrieval.profile_store import save_profile
from retrieval.service import PersonView
from retrieval.types import Candidate, RankedList, RequestContext


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """These tests exercise the rerank path, so it is on for every request here (off by default:
    test_the_llm_rerank_is_off_by_default_and_each_setting_says_why)."""
    s = Settings(env="test", llm={"rerank_when": "always"})
    s.ensure_dirs()
    return s


class FakeRetriever:
    def __init__(self, candidates: list[Candidate]) -> None:
        self.candidates = candidates
        self.calls: list[tuple[str, int]] = []
        self.contexts: list[RequestContext] = []
        self.people: list[str] = []
        self.recommender = SimpleNamespace(plan=SimpleNamespace(notes=()))

    def person(self, user_id: str, before: Any) -> PersonView:
        self.people.append(user_id)
        last = self.candidates[0].item_id if self.candidates else None
        return PersonView(user_id, pd.DataFrame(), None, -240, last)

    def recommend(
        self, person: PersonView, ctx: RequestContext, k: int = 10, profile: Any = None, **kw: Any
    ) -> RankedList:
        self.kwargs = kw
        self.calls.append((person.user_id, k))
        self.contexts.append(ctx)
        return RankedList([replace(c) for c in self.candidates[:k]], "heuristic", len(self.candidates))

    def status(self) -> dict[str, Any]:
        return {"items": len(self.candidates)}

    def kind_of(self, item_id: str) -> str | None:
        return next((c.category for c in self.candidates if c.item_id == item_id), None)

    def catalog_kinds(self) -> tuple[str, ...]:
        return tuple(sorted({c.category for c in self.candidates if c.category}))


class ReverseReranker:
    """Reverses the order; optionally slips in an item it was never given, or fails."""

    def __init__(self, settings: Settings, *, intruder: bool = False, fail: str | None = None) -> None:
        self.settings = settings
        self.intruder = intruder
        self.fail = fail

    def rerank(
        self, session: Any, profile: Any, ctx: RequestContext, ranked: list[Candidate], **_kw: Any
    ) -> RerankOutcome:
        if self.fail == "raise":
            raise RuntimeError("connection refused")
        if self.fail == "outcome":
            return RerankOutcome(ranked, "heuristic (llm unavailable)", None, None, "timeout")
        out = list(reversed(ranked))
        for n, c in enumerate(out):
            c.llm_score = float(-n)
        if self.intruder:
            out.insert(0, Candidate(item_id="made-up", name="Invented Bar"))
        return RerankOutcome(out, "llm(test-model)+heuristic", "test-model", "rerank@v1")


class FakeExplainer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def explain(
        self, session: Any, profile: Any, ctx: RequestContext, items: list[Candidate], **_kw: Any
    ) -> ExplanationSet:
        if self.fail:
            raise RuntimeError("LLM went away mid-request")
        return ExplanationSet(
            {
                c.item_id: ItemExplanation(f"LLM says {c.item_id}", ["rhythm.peak_hours"], "llm")
                for c in items
            },
            "llm",
            "test-model",
            "explain@v1",
        )


@pytest.fixture
def store(
    sqlite_session_factory: sessionmaker[Session], profile: UserProfile, candidates: list[Candidate]
) -> sessionmaker[Session]:
    with sqlite_session_factory() as s:
        s.add(User(id="u1"))
        s.add(User(id="u2"))
        s.add_all(Item(id=c.item_id, name=f"Place {c.item_id}", category=c.category) for c in candidates)
        s.flush()
        save_profile(s, profile)
        s.commit()
    return sqlite_session_factory


def _service(
    store: sessionmaker[Session],
    candidates: list[Candidate],
    reranker: Any = None,
    explainer: Any = None,
    *,
    admission: LLMAdmission | None = None,
    experiments: ExperimentsConfig | None = None,
    retriever: FakeRetriever | None = None,
) -> RecommendPipeline:
    """The pipeline over the fakes; the LLM gateway is on (its client is never called: the fake
    stages answer) when a reranker or explainer is given."""
    retriever = retriever or FakeRetriever(candidates)
    settings = reranker.settings if reranker is not None else Settings(env="test")
    rules = FeedbackRules()
    users = UserLoader(store, retriever, PLACES, rules, experiments or ExperimentsConfig())  # type: ignore[arg-type]
    llm = LLMGateway(
        object(), CircuitBreaker(), "test-model", admission, 0, enabled=bool(reranker or explainer)
    )
    return RecommendPipeline(
        users,
        retriever,
        PLACES,
        Records(store, None, rules),
        llm,
        settings.llm,
        reranker,
        explainer,  # type: ignore[arg-type]
    )


def _run(svc: RecommendPipeline, user: str, ctx: RequestContext, k: int, **kw: Any) -> Any:
    return svc.run(user, ctx, k, RecommendOptions(**kw))


def test_llm_order_is_served_and_the_trace_is_stored(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    svc = _service(store, candidates, ReverseReranker(settings), FakeExplainer())
    res = _run(svc, "u1", ctx, 3)
    pool = candidates[: max(3, settings.llm.rerank_top_n)]
    assert [c.item_id for c in res.items] == [c.item_id for c in reversed(pool)][:3]
    assert res.ranker == "llm(test-model)+heuristic" and res.notes == []
    assert res.explanation is not None and res.explanation.source == "llm"
    with store() as s:
        rec = s.get(Recommendation, res.recommendation_id)
        assert rec is not None
        assert rec.items == [c.item_id for c in res.items]
        assert rec.profile_version == 1 and rec.model == "test-model"
        assert rec.prompt_version == "rerank@v1, explain@v1"
        assert [f["id"] for f in rec.facts] == ["rhythm.peak_hours"]  # only the facts cited
        assert {c["item_id"] for c in rec.candidates} == {c.item_id for c in pool}
        assert all(c["llm_score"] is not None and c["sources"] for c in rec.candidates)
        assert {"retrieve_ms", "rerank_ms", "explain_ms", "total_ms"} <= set(rec.timings or {})


def test_an_item_the_llm_invents_is_never_shown(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    svc = _service(store, candidates, ReverseReranker(settings, intruder=True), FakeExplainer())
    res = _run(svc, "u1", ctx, 5)
    shown = [c.item_id for c in res.items]
    assert "made-up" not in shown and len(shown) == 5
    assert set(shown) <= {c.item_id for c in candidates}


@pytest.mark.parametrize("fail", ["raise", "outcome"])
def test_reranker_failure_degrades_to_the_feature_order(
    store: sessionmaker[Session],
    settings: Settings,
    candidates: list[Candidate],
    ctx: RequestContext,
    fail: str,
) -> None:
    svc = _service(store, candidates, ReverseReranker(settings, fail=fail), FakeExplainer())
    res = _run(svc, "u1", ctx, 4)
    assert [c.item_id for c in res.items] == [c.item_id for c in candidates[:4]]
    assert "llm unavailable" in res.ranker
    assert any("language model is unavailable" in n for n in res.notes)
    # the explainer is not even tried once the LLM is known down: template explanations instead
    assert res.explanation is not None and res.explanation.source == "template"


def test_explainer_failure_degrades_to_templates(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    svc = _service(store, candidates, ReverseReranker(settings), FakeExplainer(fail=True))
    res = _run(svc, "u1", ctx, 3)
    assert res.explanation is not None and res.explanation.source == "template"
    assert set(res.explanation.items) == {c.item_id for c in res.items}
    assert any("template" in n for n in res.notes)


def test_no_llm_no_explain_and_unknown_users(
    store: sessionmaker[Session], candidates: list[Candidate], ctx: RequestContext
) -> None:
    svc = _service(store, candidates)
    res = _run(svc, "u1", ctx, 3, explain=False)
    assert res.ranker == "heuristic" and res.explanation is None
    cold = _run(svc, "nobody", ctx, 3)
    assert cold.items and any("new here" in n for n in cold.notes)
    with store() as s:
        stored = set(s.scalars(select(Recommendation.user_id)))
    assert stored == {"u1"}  # a cold-start request for an unknown id stores nothing


def test_feedback_is_a_linked_event_and_checked(
    store: sessionmaker[Session], candidates: list[Candidate], ctx: RequestContext
) -> None:
    svc = _service(store, candidates)
    res = _run(svc, "u1", ctx, 3)
    item = res.items[1].item_id
    eid = svc.records.feedback(res.recommendation_id, "u1", "rejected", item, "too far")
    with store() as s:
        ev = s.get(Event, eid)
        assert ev is not None and ev.kind == "feedback" and ev.recommendation_id == res.recommendation_id
        assert ev.item_id == item and ev.text == "too far" and ev.attributes == {"feedback": "rejected"}
    with pytest.raises(ForbiddenError):
        svc.records.feedback(res.recommendation_id, "u2", "clicked", item, None)
    with pytest.raises(NotFoundError):
        svc.records.feedback(res.recommendation_id, "u1", "clicked", "not-shown", None)
    with pytest.raises(NotFoundError):
        svc.records.feedback("no-such-id", "u1", "clicked", None, None)


class SlowReranker(ReverseReranker):
    """Holds the LLM for a while, like a CPU server working through a queue."""

    def __init__(self, settings: Settings, seconds: float) -> None:
        super().__init__(settings)
        self.seconds = seconds

    def rerank(
        self, session: Any, profile: Any, ctx: RequestContext, ranked: list[Candidate], **kw: Any
    ) -> RerankOutcome:
        import time

        time.sleep(self.seconds)
        return super().rerank(session, profile, ctx, ranked, **kw)


def test_under_load_llm_work_queues_then_sheds_at_once(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from agent.llm.admission import LLMAdmission

    admission = LLMAdmission(max_in_flight=1, max_waiting=1)
    svc = _service(store, candidates, SlowReranker(settings, 0.6), FakeExplainer(), admission=admission)

    def one(_: int) -> tuple[float, Any]:
        t = time.perf_counter()
        res = _run(svc, "u1", ctx, 3)
        return time.perf_counter() - t, res

    with ThreadPoolExecutor(max_workers=5) as pool:
        out = list(pool.map(one, range(5)))
    served = [r for _, r in out if r.ranker.startswith("llm")]
    shed = [(dt, r) for dt, r in out if "llm busy" in r.ranker]
    assert len(served) == 2  # one at work, one waiting for it
    assert len(shed) == 3 and all(dt < 0.5 for dt, _ in shed)  # refused at once, not timed out
    for _, r in shed:
        assert any(n.startswith("the language model is busy") for n in r.notes)
        assert r.explanation is not None and r.explanation.source == "template"
        assert [c.item_id for c in r.items] == [c.item_id for c in candidates[:3]]
    assert admission.status()["in_flight"] == 0  # all slots back


def test_an_experiment_arm_decides_what_the_request_leaves_open(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    """The arm sets the ranker, the LLM and feedback learning; a request that states use_llm keeps it."""

    def config(salt: str) -> ExperimentsConfig:
        arm_list = [
            {"name": "plain", "weight": 0.5, "settings": {"use_llm": False, "ranker": "heuristic"}},
            {"name": "llm", "weight": 0.5, "settings": {"use_llm": True, "feedback_learning": False}},
        ]
        return ExperimentsConfig.model_validate(
            {"experiments": [{"name": "e", "salt": salt, "arms": arm_list}]}
        )

    # a salt that puts u1 and u2 in different arms, so both are checked
    arms = next(
        cfg
        for cfg in (config(f"s{i}") for i in range(100))
        if len({a.arm for u in ("u1", "u2") if (a := cfg.assign(u)) is not None}) == 2
    )
    retriever = FakeRetriever(candidates)
    reranker: Any = ReverseReranker(settings)
    svc = _service(store, candidates, reranker, FakeExplainer(), experiments=arms, retriever=retriever)
    for user in ("u1", "u2"):
        arm = arms.assign(user)
        assert arm is not None
        res = _run(svc, user, ctx, 3)
        assert res.experiment == {"name": "e", "arm": arm.arm, "changes": arm.settings.changes()}
        if arm.arm == "plain":
            assert res.ranker == "heuristic" and retriever.kwargs["ranker"] == "heuristic"
            assert not svc.may_call_llm(None, user) and svc.may_call_llm(True, user)
        else:
            assert res.ranker.startswith("llm(") and retriever.kwargs["ranker"] is None
            assert svc.may_call_llm(None, user) and not svc.may_call_llm(False, user)
        stated = _run(svc, user, ctx, 3, use_llm=arm.arm == "plain")  # the request's own choice
        assert stated.ranker.startswith("llm(") == (arm.arm == "plain")
        with store() as s:
            rec = s.get(Recommendation, stated.recommendation_id)
            assert rec is not None and (rec.experiment, rec.arm) == ("e", arm.arm)
            assert rec.request["use_llm_requested"] == (arm.arm == "plain")


def _when(settings: Settings, when: str | None) -> Settings:
    return settings.model_copy(update={"llm": settings.llm.model_copy(update={"rerank_when": when})})


def test_the_llm_rerank_is_off_by_default_and_each_setting_says_why(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    from dataclasses import replace as dc_replace

    from domains.places import PLACES

    # unset: the domain's default, decided by its dev split's intervals
    assert Settings(env="test").llm.rerank_when is None and PLACES.rerank_when == "never"
    no_text = dc_replace(ctx, text=None)

    def served(when: str | None, c: RequestContext) -> tuple[Any, Recommendation]:
        svc = _service(store, candidates, ReverseReranker(_when(settings, when)), FakeExplainer())
        res = _run(svc, "u1", c, 3)
        with store() as s:
            rec = s.get(Recommendation, res.recommendation_id)
            assert rec is not None
            return res, rec

    off, rec = served(None, ctx)
    assert [c.item_id for c in off.items] == [c.item_id for c in candidates[:3]]  # the feature order
    assert not off.ranker.startswith("llm(")
    # the intervals are for support (the trace), not in the notes a person reads
    assert not any("CI" in n or "rerank" in n for n in off.notes)
    details = rec.timings["details"]
    assert any(n.startswith("LLM rerank not used: llm.rerank_when=never: on 300 NYC") for n in details)
    assert off.explanation is not None and off.explanation.source == "llm"  # the LLM still explains
    assert rec.request["llm_rerank"]["used"] is False and "95% CI" in rec.request["llm_rerank"]["why"]
    worded, rec = served("with_text", ctx)
    assert worded.ranker.startswith("llm(") and rec.request["llm_rerank"]["used"] is True
    plain, rec = served("with_text", no_text)
    assert not plain.ranker.startswith("llm(")
    assert rec.request["llm_rerank"] == {
        "used": False,
        "why": "llm.rerank_when=with_text and the request carries no text",
    }
    assert served("always", no_text)[0].ranker.startswith("llm(")


def test_a_request_reads_its_user_once(
    store: sessionmaker[Session], settings: Settings, candidates: list[Candidate], ctx: RequestContext
) -> None:
    """The per-request context: history, offset and latest item come from one read of the serving
    state, the profile and reactions from one store session, however many stages use them."""
    retriever = FakeRetriever(candidates)
    svc = _service(store, candidates, ReverseReranker(settings), FakeExplainer(), retriever=retriever)
    _run(svc, "u1", ctx, 3)
    assert retriever.people == ["u1"] and len(retriever.calls) == 1
