"""The learned ranker: trained, saved versioned, loaded newest; robust to feature-list changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import columns as C
from core.errors import InvalidInputError
from domains.places import PLACES
from retrieval.rankers import HeuristicRanker, LearnedRanker, load_ranker, newest_model
from retrieval.train_cli_support import train_and_save
from tests.retrieval.conftest import fit, place_ctx, recommend

T = datetime(2012, 6, 4, 16, 0, tzinfo=UTC)
FSET = PLACES.feature_set()
FEATURES = list(FSET.columns)
MODEL_FEATURES = list(FSET.model_columns)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LearnedRanker, Path]:
    from tests.retrieval.conftest import world

    ev, _ = world()
    return train_and_save(ev, tmp_path_factory.mktemp("models"), FSET, weeks=2, max_queries=400)


def test_model_is_versioned_and_loaded_newest(trained: tuple[LearnedRanker, Path]) -> None:
    model, path = trained
    assert path.name == f"ranker-{model.version}.txt" and len(model.version) == 10
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["features"] == list(MODEL_FEATURES) and meta["train_queries"] > 20 and meta["trained_at"]
    assert newest_model(path.parent) == path
    loaded = load_ranker("learned", path.parent, FSET)
    assert isinstance(loaded, LearnedRanker) and loaded.name == f"learned-lgbm@{model.version}"
    x = np.random.default_rng(0).normal(size=(50, len(FEATURES))).astype(np.float32)
    np.testing.assert_allclose(loaded.score(x), model.score(x), rtol=1e-5)


def test_what_next_queries_go_to_their_own_model(trained: tuple[LearnedRanker, Path]) -> None:
    model, path = trained
    assert model.next_model is not None and (path.parent / f"ranker-{model.version}-next.lgb").exists()
    x = np.random.default_rng(1).normal(size=(50, len(FEATURES))).astype(np.float32)
    col = FSET.col["query_time_known"]
    x[:25, col], x[25:, col] = 0.0, 1.0
    got = model.score(x)
    known_only = LearnedRanker(model.booster, model.version, FSET, model.meta)
    np.testing.assert_allclose(got[:25], model.next_model.score(x[:25]))
    np.testing.assert_allclose(got[25:], known_only.score(x[25:]))
    assert not np.allclose(model.next_model.score(x), known_only.score(x))  # two models, not one
    loaded = load_ranker("learned", path.parent, FSET)
    np.testing.assert_allclose(loaded.score(x), got, rtol=1e-5)
    # a pair whose "what next?" half is missing is refused, not served half
    (path.parent / f"ranker-{model.version}-next.lgb").rename(path.parent / "moved.lgb")
    try:
        refused: list[str] = []
        assert isinstance(load_ranker("learned", path.parent, FSET, refused), HeuristicRanker) and refused
    finally:
        (path.parent / "moved.lgb").rename(path.parent / f"ranker-{model.version}-next.lgb")


def test_a_corrupt_newer_model_is_refused_and_the_one_before_serves(
    trained: tuple[LearnedRanker, Path], tmp_path: Path
) -> None:
    model, path = trained
    folder = tmp_path / "models"
    folder.mkdir()
    for src in path.parent.glob(f"ranker-{model.version}*"):  # the model, its "what next?" pair, meta
        (folder / src.name).write_bytes(src.read_bytes())
    half = folder / "ranker-halfwritten.txt"  # a newer file cut off mid-write
    half.write_text(path.read_text()[:300])
    (folder / "ranker-halfwritten.json").write_text(json.dumps({"trained_at": "2099-01-01T00:00:00"}))
    assert newest_model(folder) == half
    refused: list[str] = []
    loaded = load_ranker("learned", folder, FSET, refused)
    assert isinstance(loaded, LearnedRanker) and loaded.version == model.version
    assert len(refused) == 1 and "ranker-halfwritten.txt refused" in refused[0]
    # nothing loadable at all: the heuristic, with every refusal listed
    (folder / path.name).write_text("not a model")
    refused = []
    assert isinstance(load_ranker("learned", folder, FSET, refused), HeuristicRanker) and len(refused) == 2


def test_no_model_degrades_to_heuristic(tmp_path: Path) -> None:
    assert isinstance(load_ranker("learned", tmp_path / "none", FSET), HeuristicRanker)
    with pytest.raises(InvalidInputError):
        load_ranker("magic", tmp_path, FSET)


def test_a_model_with_another_feature_list_still_scores(trained: tuple[LearnedRanker, Path]) -> None:
    """Columns are matched by name; a feature the code no longer computes is NaN, not an error."""
    model, _ = trained
    renamed = LearnedRanker(
        model.booster, model.version, FSET, {**model.meta, "features": ["gone", *MODEL_FEATURES[1:]]}
    )
    x = np.random.default_rng(1).normal(size=(20, len(FEATURES))).astype(np.float32)
    s = renamed.score(x)
    assert s.shape == (20,) and np.isfinite(s).all()
    x2 = x.copy()
    x2[:, 0] = 99.0  # the column that no longer feeds the model
    np.testing.assert_array_equal(renamed.score(x2), s)


def test_a_model_trained_before_a_rename_reads_the_renamed_columns(
    trained: tuple[LearnedRanker, Path],
) -> None:
    """A places model from before the behaviour columns lost their 'poi_' names scores exactly as
    the same model under the new names (not with NaN in those columns)."""
    model, _ = trained
    now = {new: old for old, new in FSET.former_names.items()}
    assert now and set(now) <= set(MODEL_FEATURES)
    old_names = [now.get(f, f) for f in MODEL_FEATURES]
    older = LearnedRanker(model.booster, model.version, FSET, {**model.meta, "features": old_names})
    x = np.random.default_rng(2).normal(size=(30, len(FEATURES))).astype(np.float32)
    np.testing.assert_array_equal(older.score(x), model.score(x))
    x2 = x.copy()
    x2[:, FSET.col["item_hour_share"]] += 5.0
    assert not np.array_equal(older.score(x2), older.score(x))  # the renamed column feeds it


def test_recommender_with_learned_model_and_extra_features(
    small_world: tuple[pd.DataFrame, pd.DataFrame], trained: tuple[LearnedRanker, Path]
) -> None:
    ev, items = small_world
    model, path = trained
    rec = fit(ev[ev[C.TIME] < T], items, ranker="learned", model_path=path)
    assert rec.ranker.name == model.name
    hist = ev[(ev[C.USER] == "u1") & (ev[C.TIME] < T)]
    out = recommend(
        rec,
        hist,
        place_ctx(time=T),
        k=5,
        extra_sources={"embedding": ["p30"]},
        extra_features={"p30": {"emb_sim": 0.7, "something_new": 1.0}},
    )
    assert out.ranker == model.name and len(out.candidates) == 5
    assert "repeat" in out.candidates[0].sources  # routines dominate this world
    assert all(np.isfinite(c.score) for c in out.candidates)
    cold = recommend(rec, ev.iloc[0:0], place_ctx(time=T, lat=40.7, lon=-74.0), k=3)
    assert len(cold.candidates) == 3


def test_training_mixes_known_time_and_where_next_queries() -> None:
    from retrieval.training import build_training_set
    from tests.retrieval.conftest import world

    ev, _ = world()
    ts = build_training_set(ev, FSET, weeks=2, max_queries=200)
    known = ts.x[:, FEATURES.index("query_time_known")]
    assert set(np.unique(known)) == {0.0, 1.0}  # both settings, one model
    assert 0.3 < float(np.mean(known)) < 0.7


def test_a_model_of_another_domain_is_refused(trained: tuple[LearnedRanker, Path]) -> None:
    """A places model read for films would rank on missing values: refused, with the reason."""
    from domains.films import FILMS

    _, path = trained
    with pytest.raises(InvalidInputError, match="ranks places, not films"):
        LearnedRanker.load(path, FILMS.feature_set())
