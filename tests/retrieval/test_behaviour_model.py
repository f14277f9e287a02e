"""The behaviour model: trained by PyTorch, served by numpy and FAISS, saved with its digest and
refused when corrupt; as a candidate source it finds items new to the person, in the neighbourhood
their sequence points to, and bounds what it leaves out."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import columns as C
from core.errors import NotReadyError
from domains import get_domain
from retrieval import behaviour_model as bm
from retrieval.behaviour_source import BEHAV, BehaviourEmbeddingGroup, BehaviourPart, saved_model, train_for
from retrieval.catalog_stats import CatalogStats
from retrieval.query import QueryTime
from retrieval.recommender import Ask, Recommender
from retrieval.sources import rank_score_at
from retrieval.types import RequestContext
from retrieval.user_history import UserHistory

AREAS = 4
PER_AREA = 30


def areas_world(n_users: int = 80, steps: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items in four areas (kind = area); each person keeps to one area and keeps trying its
    places: the next new item is predictable from the sequence (its area), not from counts."""
    rng = np.random.default_rng(seed)
    n = AREAS * PER_AREA
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "name": [f"Item {i}" for i in range(n)],
            "category": [f"Area {i // PER_AREA}" for i in range(n)],
        }
    )
    rows = []
    start = datetime(2020, 1, 6, tzinfo=UTC)
    for u in range(n_users):
        area = u % AREAS
        t = start + timedelta(hours=int(rng.integers(0, 48)))
        for _ in range(steps):
            rows.append((f"u{u}", f"i{area * PER_AREA + int(rng.integers(PER_AREA))}", t))
            t += timedelta(hours=int(rng.integers(2, 20)))
    ev = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME])
    ev[C.TIME] = pd.to_datetime(ev[C.TIME], utc=True)
    ev[C.ITEM_NAME] = ev[C.ITEM].str.replace("i", "Item ")
    ev[C.CATEGORY] = None  # the model must learn the areas from the sequences, not the kinds
    ev[C.LAT] = np.nan
    ev[C.LON] = np.nan
    ev[C.TZ_OFFSET] = 0
    ev[C.KIND] = "event"
    ev[C.EVENT_ID] = [f"e{i}" for i in range(len(ev))]
    ev[C.TEXT] = None
    ev[C.RATING] = np.nan
    return ev[C.EVENT_COLUMNS], items.assign(category=None)


@pytest.fixture(scope="module")
def trained() -> tuple[CatalogStats, pd.DataFrame, BehaviourPart]:
    ev, items = areas_world()
    fset = get_domain("items").feature_set()
    stats = CatalogStats.build(ev, items)
    fset.build_parts(stats, ev, items)
    part = stats.parts[BEHAV]
    assert isinstance(part, BehaviourPart) and part.model is not None
    return stats.warm(), ev, part


def test_the_model_learns_where_a_sequence_leads(trained) -> None:  # type: ignore[no-untyped-def]
    stats, ev, part = trained
    fset = get_domain("items").feature_set()
    same_area = []
    for u in ("u0", "u1", "u2", "u3"):
        uh = UserHistory.from_frame(ev[ev[C.USER] == u].head(8), stats)
        q = fset.query(stats, uh, QueryTime(uh.t_h[-1] + 1, 12.0, False, 0, True))
        hits = q.parts[BEHAV].hits
        top = hits.top(10)
        assert not np.isin(top, uh.idx).any()  # new to the person only
        area = int(u[1:]) % AREAS
        ids = stats.item_ids[top].astype(str)
        same_area.append(np.mean([int(i[1:]) // PER_AREA == area for i in ids]))
    # chance is a quarter (measured: 0.7 after six epochs on these 2,400 steps)
    assert np.mean(same_area) >= 0.6, same_area


def test_numpy_serving_computes_what_the_network_trained(trained) -> None:  # type: ignore[no-untyped-def]
    import torch

    from retrieval.behaviour_net import Net

    stats, _, part = trained
    model = part.model
    assert model is not None
    torch.manual_seed(3)
    n = len(model.item_ids)
    net = Net(n, 5, torch.zeros((n + 1, 1), dtype=torch.long), bm.WINDOW, bm.SLOTS, bm.DIM)
    net.eval()
    exported = bm.BehaviourModel(item_ids=model.item_ids, **net.export())
    rows = np.array([3, 7, 1, 9])
    x = torch.from_numpy(np.pad(rows + 1, (bm.WINDOW - len(rows), 0)))[None]
    with torch.no_grad():
        want = net(x, torch.tensor([30]))[0].numpy()
    got = exported.vectors @ exported.encode(rows, 30)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_saved_models_are_checked_and_a_corrupt_one_is_refused(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, part = trained
    assert part.model is not None
    model = replace(part.model, meta={**part.model.meta, "domain": "items"})  # the fixture's stays
    folder = tmp_path / "behaviour"
    older = model.save(folder)
    back = bm.BehaviourModel.load(older)
    np.testing.assert_array_equal(back.vectors, model.vectors)
    assert back.version == older.stem.removeprefix("behaviour-")
    # a newer one whose bytes were damaged after saving
    model.meta["trained_at"] = "9999-01-01T00:00:00+00:00"
    model.vectors = model.vectors * 2
    newer = model.save(folder)
    data = bytearray(newer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newer.write_bytes(bytes(data))
    with pytest.raises(NotReadyError, match="does not match its digest"):
        bm.BehaviourModel.load(newer)
    served = saved_model(folder, "items")
    assert isinstance(served, bm.BehaviourModel) and served.version == back.version  # the one before
    older.unlink()
    why = saved_model(folder, "items")
    assert isinstance(why, str) and "does not match its digest" in why
    assert "chronotope index" in str(saved_model(tmp_path / "none", "items"))


def test_the_source_bounds_what_it_leaves_out(trained) -> None:  # type: ignore[no-untyped-def]
    stats, ev, _ = trained
    plan = get_domain("items").retrieval_plan()
    fset = plan.features
    source = next(s for s in plan.sources if s.name == "behaviour")
    uh = UserHistory.from_frame(ev[ev[C.USER] == "u5"].head(10), stats)
    q = fset.query(stats, uh, QueryTime(uh.t_h[-1] + 1, 9.0, False, 0, False))
    depth = 20
    rows = source.rows(stats, q, depth)
    assert 0 < len(rows) <= depth
    f = fset.every_item(stats, q)
    others = np.setdiff1d(np.arange(stats.n), rows)
    w = fset.stage1["behav_rank_score"]
    bound = source.bound(stats, q, depth, fset.stage1, rows)
    assert bound == pytest.approx(w * rank_score_at(min(depth, len(q.parts[BEHAV].hits.indices))))
    assert (w * f[others, fset.col["behav_rank_score"]] <= bound + 1e-6).all()  # float32 features
    # the model's score is filled for every item it knows, the same whichever rows come with it
    some = np.array([rows[0], others[0]])
    np.testing.assert_allclose(fset.at(stats, q, some), f[some])


def test_serving_loads_the_saved_model_and_says_when_there_is_none(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, ev, _ = trained
    items = areas_world()[1]
    plan = get_domain("items").retrieval_plan()
    models = tmp_path / "models"
    rec = Recommender.fit(ev, items, plan, ranker="heuristic", models_dir=models)
    part = rec.stats.parts[BEHAV]
    assert part.model is None and "chronotope index" in (part.why or "")  # never trained at start
    user = ev[ev[C.USER] == "u2"]
    when = user[C.TIME].max().to_pydatetime() + timedelta(hours=1)
    ask = Ask(RequestContext(time=when, exclude_visited=True), 10, rec.history_of(user))
    assert "behaviour" not in {s for c in rec.recommend(ask).candidates for s in c.sources}
    model, path = train_for(plan.features, ev, items, models)
    assert path.exists() and json.loads(path.with_suffix(".json").read_text())["domain"] == "items"
    rec = Recommender.fit(ev, items, plan, ranker="heuristic", models_dir=models)
    assert rec.stats.parts[BEHAV].model.version == model.version
    out = rec.recommend(ask)
    assert out.pool_sources.get("behaviour", 0) > 0
    assert any("behaviour" in c.sources for c in out.candidates)


def test_a_history_too_short_serves_without_the_model() -> None:
    ev, items = areas_world(n_users=2, steps=3)
    stats = CatalogStats.build(ev, items)
    group = BehaviourEmbeddingGroup()
    part = group.build(stats, ev, items)
    assert part.model is None and "too little history" in (part.why or "")


def test_the_version_names_the_weights_before_and_after_saving(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, part = trained
    model = part.model
    assert model is not None and len(model.version) == 10
    copy = replace(model, meta=dict(model.meta))
    assert copy.save(tmp_path).stem == f"behaviour-{model.version}"  # the same weights, the same name
    changed = replace(model, meta=dict(model.meta), b2=model.b2 + 1)
    assert changed.save(tmp_path).stem != f"behaviour-{model.version}"
