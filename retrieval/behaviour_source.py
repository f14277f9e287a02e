"""The behaviour model as a candidate source and two ranking features, for any catalog.

``BehaviourEmbeddingGroup`` is a feature group (retrieval/features.py): its catalog part is a
trained ``BehaviourModel`` with its item vectors in FAISS; each query encodes the person's latest
items and the moment's slot and searches the index for the items they never had (the source's
candidates); it fills ``behav_score`` (the model's score of an item new to the person, 0 for the
rest) and ``behav_rank_score`` (the item's rank among the hits, the stage-1 column the source
bounds). The part is trained from the
history it is given (training pseudo-targets and ``chronotope eval`` train on exactly their own
history, so no target leaks in) unless a saved model is handed in (``adopt``): serving loads the
one ``chronotope index`` or ``rank train`` saved and never trains while it serves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from core.errors import NotReadyError
from core.kinds import split_kinds
from retrieval.behaviour_model import WINDOW, BehaviourModel, Sequences, newest_models, train
from retrieval.catalog_stats import CatalogStats
from retrieval.features import b_slots
from retrieval.index import VectorIndex
from retrieval.query import Query, QueryVectors
from retrieval.sources import PROVENANCE_TOP, rank_score_at
from retrieval.sparse_vector import SparseVector
from retrieval.user_history import UserHistory

log = logging.getLogger(__name__)

BEHAV = "behaviour_embedding"
SEARCH_K = 512  # hits per query: the deepest a source is read by default
BEHAV_STAGE1 = 0.3  # its rank score's stage-1 weight: 1.0 took 0.003 Acc@1 for +0.012 new-place recall (docs)

# (stats, history, items) -> each catalog item's tokens (kinds, and what the domain adds)
Tokens = Callable[[CatalogStats, pd.DataFrame, pd.DataFrame | None], list[list[str]]]


def saved_model(models_dir: Path, domain: str) -> BehaviourModel | str:
    """The newest saved behaviour model of ``domain`` that loads (a corrupt one is refused with a
    log line and the one before it serves), or why none does."""
    refused = []
    for path in newest_models(models_dir, domain):
        try:
            return BehaviourModel.load(path)
        except NotReadyError as exc:
            log.error("%s; trying the one before it", exc.message)
            refused.append(exc.message)
    if refused:
        return "; ".join(refused)
    return f"no behaviour model for {domain} in {models_dir}: build one with `chronotope index`"


def saved_behaviour(fset: Any, models_dir: Path) -> dict[str, BehaviourModel | str]:
    """``FeatureSet.build_parts``'s ``prebuilt`` for serving: the saved model (or why none)."""
    group = fset.group(BEHAV)
    return {BEHAV: saved_model(models_dir / "behaviour", fset.domain)} if group is not None else {}


def train_for(
    fset: Any,
    history: pd.DataFrame,
    items: pd.DataFrame | None,
    models_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> tuple[BehaviourModel, Path]:
    """Train the behaviour model on ``history`` (every other feature part built first: tokens may
    read them) and save it under ``models_dir/behaviour`` (what serving loads)."""
    group = fset.group(BEHAV)
    if not isinstance(group, BehaviourEmbeddingGroup):
        raise ValueError(f"the {fset.domain} features have no behaviour model")
    stats = CatalogStats.build(history, items)
    fset.build_parts(stats, history, items, {BEHAV: "trained below"})  # the others, which tokens read
    model = group.train(stats, history, items, progress)
    return model, model.save(models_dir / "behaviour")


def behaviour_status(stats: CatalogStats) -> dict[str, Any]:
    """What ``/readyz`` says of the behaviour model: its version, or why none serves."""
    part = stats.parts.get(BEHAV)
    if not isinstance(part, BehaviourPart):
        return {}
    if part.model is None:
        return {"behaviour_model": None, "behaviour_error": part.why or "no behaviour model"}
    m = part.model
    return {
        "behaviour_model": {
            "version": m.version,
            "items": len(m.item_ids),
            "trained_at": m.meta.get("trained_at"),
        },
        "behaviour_error": None,
    }


def kind_tokens(stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> list[list[str]]:
    """Each item's kinds: from its latest event, else from the catalog frame (an evaluation's
    catalog frame is its test file: it must not change what the history says of an item)."""
    kinds: dict[str, tuple[str, ...]] = {}
    if items is not None and len(items):
        col = "kinds" if "kinds" in items else "category" if "category" in items else None
        if col:
            kinds.update(zip(items["item_id"].astype(str), map(split_kinds, items[col]), strict=True))
    if C.CATEGORY in history and len(history):
        latest = history.dropna(subset=[C.CATEGORY]).drop_duplicates(C.ITEM, keep="last")
        kinds.update(zip(latest[C.ITEM].astype(str), map(split_kinds, latest[C.CATEGORY]), strict=True))
    return [[f"kind:{k}" for k in kinds.get(str(i), ())] for i in stats.item_ids]


@dataclass(frozen=True)
class BehaviourPart:
    """The model as one catalog sees it (None: no model serves, and ``why`` says why)."""

    model: BehaviourModel | None
    row_of: np.ndarray  # catalog index -> model row (-1: an item the model does not know)
    catalog_of: np.ndarray  # model row -> catalog index (-1: not in this catalog)
    index: VectorIndex | None
    why: str | None = None

    @classmethod
    def of(cls, model: BehaviourModel | None, stats: CatalogStats, why: str | None = None) -> BehaviourPart:
        if model is None:
            return cls(None, np.full(stats.n, -1), np.zeros(0, dtype=np.int64), None, why)
        catalog_of = stats.index_of(model.item_ids)
        row_of = np.full(stats.n, -1, dtype=np.int64)
        ok = catalog_of >= 0
        row_of[catalog_of[ok]] = np.flatnonzero(ok)
        index = VectorIndex.build(
            [str(i) for i in model.item_ids], model.vectors, kind="flat", model=model.version
        )
        return cls(model, row_of, catalog_of.astype(np.int64), index, why)

    def grown(self, stats: CatalogStats) -> BehaviourPart:
        """For a catalog with new items at its end: they have no vector until the next training."""
        more = stats.n - len(self.row_of)
        row_of = np.concatenate([self.row_of, np.full(more, -1, dtype=np.int64)]) if more > 0 else self.row_of
        return BehaviourPart(self.model, row_of, self.catalog_of, self.index, self.why)


@dataclass(frozen=True)
class BehaviourQuery:
    vector: np.ndarray | None  # (DIM + 1,), None without a model
    hits: SparseVector  # catalog index -> SEARCH_K - rank, items the person never had


def sequences(stats: CatalogStats, history: pd.DataFrame) -> Sequences:
    items, hours = [], []
    h = history.dropna(subset=[C.ITEM]).sort_values([C.USER, C.TIME], kind="stable")
    for _, g in h.groupby(C.USER, sort=False):
        uh = UserHistory.from_frame(g, stats)
        ok = uh.idx >= 0
        items.append(uh.idx[ok].astype(np.int64))
        hours.append(uh.hour[ok].astype(np.int64) % 24)
    return Sequences(items, hours)


def slot_of(hour: float, known: bool) -> int:
    return int(hour) % 24 + (0 if known else 24)


class BehaviourEmbeddingGroup:
    name = BEHAV
    columns = ("behav_score", "behav_rank_score")

    def __init__(self, tokens: Tokens = kind_tokens, domain: str = "") -> None:
        self.tokens = tokens
        self.domain = domain

    def train(
        self,
        stats: CatalogStats,
        history: pd.DataFrame,
        items: pd.DataFrame | None,
        progress: Callable[[str], None] | None = None,
    ) -> BehaviourModel:
        """A model trained on ``history`` (raises ValueError when it is too short). It knows the
        items the history holds, nothing of the rest of the catalog (an evaluation's test-only
        items must not shape it)."""
        keep = np.flatnonzero(stats.known)
        row = np.full(stats.n, -1, dtype=np.int64)
        row[keep] = np.arange(len(keep))
        seq = sequences(stats, history)
        tokens = self.tokens(stats, history, items)
        return train(
            Sequences([row[s] for s in seq.items], seq.hours),
            stats.item_ids[keep],
            [tokens[i] for i in keep],
            progress=progress,
            meta={"domain": self.domain, "history_rows": int(len(history))},
        )

    def build(self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> BehaviourPart:
        # a history too short to learn from serves without it
        return self.adopt(self.trained_or_why(stats, history, items), stats)

    def trained_or_why(
        self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None
    ) -> BehaviourModel | str:
        """What ``adopt`` takes: a model trained on ``history``, or why there is none."""
        try:
            return self.train(stats, history, items)
        except ValueError as exc:
            return str(exc)

    def adopt(self, given: BehaviourModel | str, stats: CatalogStats) -> BehaviourPart:
        """A saved model, or why there is none (the source is then off and the status says why)."""
        if isinstance(given, str):
            return BehaviourPart.of(None, stats, given)
        return BehaviourPart.of(given, stats)

    def grow(self, part: Any, stats: CatalogStats, events: pd.DataFrame) -> Any:
        return part.grown(stats) if isinstance(part, BehaviourPart) else part

    def query(
        self, stats: CatalogStats, base: QueryVectors, user: UserHistory, args: Mapping[str, Any]
    ) -> BehaviourQuery:
        part: BehaviourPart | None = stats.parts.get(BEHAV)
        if part is None or part.model is None or part.index is None:
            return BehaviourQuery(None, SparseVector.empty(stats.n))
        latest = user.idx[user.idx >= 0][-WINDOW:]
        vec = part.model.encode(part.row_of[latest], slot_of(base.when.hour, base.when.known))
        pos, _ = part.index.search_positions(vec, SEARCH_K + len(base.items))
        found = part.catalog_of[pos]
        keep = (found >= 0) & ~b_slots(base, found)[1]  # new to the person: the counts find the rest
        found = found[keep][:SEARCH_K]
        order = np.argsort(found, kind="stable")
        values = (len(found) - np.arange(len(found), dtype=np.float64))[order]
        return BehaviourQuery(vec, SparseVector(stats.n, found[order], values))

    def fill(
        self, f: np.ndarray, col: Mapping[str, int], stats: CatalogStats, q: Query, rows: np.ndarray
    ) -> None:
        bq: BehaviourQuery = q.parts[BEHAV]
        part: BehaviourPart = stats.parts[BEHAV]
        if bq.vector is None:
            return
        r = part.row_of[rows]
        # the model ranks what the person never had (its softmax masked the rest): its score of
        # an item they had means nothing, and the ranker must not split on it
        known = (r >= 0) & ~b_slots(q.base, rows)[1]
        if part.model is not None:  # row by row (not BLAS), so a value does not depend on the rows beside it
            f[known, col["behav_score"]] = (part.model.vectors[r[known]] * bq.vector).sum(axis=1)
        if len(bq.hits.indices):
            f[:, col["behav_rank_score"]] = bq.hits.rank_score(rows)


@dataclass(frozen=True)
class BehaviourSource:
    """The items the behaviour model ranks first for the person's latest items and the moment,
    among those they never had (FAISS inner product over the model's item vectors)."""

    name: str = "behaviour"
    covers: tuple[str, ...] = ("behav_rank_score",)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        hits = q.parts[BEHAV].hits
        # never past the hits: ``top`` would pad with items the model did not return
        return hits.top(min(depth, len(hits.indices))) if len(hits.indices) else _none()

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        hits = len(q.parts[BEHAV].hits.indices)
        return weights.get("behav_rank_score", 0.0) * rank_score_at(min(depth, hits)) if hits else 0.0

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        hits = q.parts[BEHAV].hits
        return (
            np.isin(pool, hits.top(PROVENANCE_TOP)) if len(hits.indices) else np.zeros(len(pool), dtype=bool)
        )


def _none() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)
