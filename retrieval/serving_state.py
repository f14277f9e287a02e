"""What a request reads, built once and replaced whole: never patched while requests read it.

A ``ServingState`` holds the catalog statistics and ranker (``Recommender``), every user's
history as a frame and as ready-made catalog indices (``UserHistory``), the item attributes, and
the store's state version it reflects (core.state_changes). New events produce a *new* state
(``with_users``) that the retriever swaps in with one reference assignment, so a request that
started on the old state finishes on it and nothing shared is written per request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core import columns as C
from retrieval.catalog import item_text
from retrieval.recommender import Recommender
from retrieval.user_history import UserHistory, user_histories

EMPTY_EVENTS = pd.DataFrame(columns=C.EVENT_COLUMNS)


def behaviour(events: pd.DataFrame) -> pd.DataFrame:
    """What the user did, without feedback on recommendations: a rejected place is not a visit."""
    if C.KIND not in events or not len(events):
        return events
    return events[events[C.KIND] != "feedback"].reset_index(drop=True)


def embedding_query(profile_text: str | None, hist: pd.DataFrame, request_text: str | None) -> str:
    """What the FAISS source searches with: the profile text, the last three items, the request's
    own words (empty when there is none of the three)."""
    parts = []
    if profile_text:
        parts.append(profile_text)
    if len(hist):
        recent = hist.tail(3)
        names = zip(recent[C.ITEM], recent[C.ITEM_NAME], recent[C.CATEGORY], strict=True)
        parts.append(
            "Recently: "
            + "; ".join(item_text({"item_id": str(i), "name": n, "category": c}) for i, n, c in names)
        )
    if request_text:
        parts.append(request_text)
    return " ".join(parts)


def frames_by_user(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(u): g.reset_index(drop=True) for u, g in events.groupby(C.USER, sort=False)}


@dataclass(frozen=True)
class ItemNames:
    """What naming an item to a person reads (item id -> its own name; item id -> its kind, else
    its name), built with the state instead of a catalog look-up per mention."""

    name: Mapping[str, str]
    kind: Mapping[str, str]

    @classmethod
    def of(cls, catalog: pd.DataFrame) -> ItemNames:
        name: dict[str, str] = {}
        kind: dict[str, str] = {}
        cols = [c for c in ("name", "category") if c in catalog]
        for row in catalog[cols].itertuples():
            n = getattr(row, "name", None)
            c = getattr(row, "category", None)
            n = n if isinstance(n, str) and n.strip() else None
            if n:
                name[str(row.Index)] = n
            if isinstance(c, str) and c.strip():
                kind[str(row.Index)] = c
            elif n:
                kind[str(row.Index)] = n
        return cls(name, kind)

    def plus(self, added: pd.DataFrame) -> ItemNames:
        more = ItemNames.of(added)
        return ItemNames({**self.name, **more.name}, {**self.kind, **more.kind})


@dataclass(frozen=True)
class ServingState:
    version: int  # the last core.state_changes seq folded in
    recommender: Recommender
    histories: Mapping[str, pd.DataFrame]
    user_histories: Mapping[str, UserHistory]
    catalog: pd.DataFrame  # item attributes indexed by item_id (names items for people)
    # user -> (embedding query text, its vector): a request whose query is that text skips MiniLM
    query_vectors: Mapping[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    built_at: float = field(default_factory=time.time)
    # from the catalog when not given; carried (or extended) by with_users and with_history, so a
    # state change costs the new items only and a request never builds it
    names: ItemNames | None = None

    def __post_init__(self) -> None:
        if self.names is None:
            object.__setattr__(self, "names", ItemNames.of(self.catalog))

    def item_names(self) -> ItemNames:
        assert self.names is not None  # set in __post_init__
        return self.names

    @classmethod
    def build(
        cls, events: pd.DataFrame, catalog: pd.DataFrame, recommender: Recommender, version: int
    ) -> ServingState:
        recommender.stats.warm()  # derived lookups built before any request reads them
        return cls(
            version=version,
            recommender=recommender,
            histories=frames_by_user(events),
            user_histories=user_histories(events, recommender.stats),
            catalog=catalog.set_index("item_id", drop=False),
        )

    def history(self, user_id: str) -> pd.DataFrame:
        return self.histories.get(user_id, EMPTY_EVENTS)

    def with_users(self, frames: Mapping[str, pd.DataFrame], version: int) -> ServingState:
        """A new state where each user in ``frames`` has that (whole, behaviour-only) history; an
        empty frame removes the user. Events not in the old history are folded into the shared
        statistics (new items join the catalog), so the same events are never counted twice."""
        fresh = []
        for u, df in frames.items():
            if len(df):
                old = self.histories.get(u)
                seen = set(old[C.EVENT_ID]) if old is not None and C.EVENT_ID in old else set()
                fresh.append(df[~df[C.EVENT_ID].isin(seen)] if seen else df)
        new_events = pd.concat(fresh, ignore_index=True) if fresh else EMPTY_EVENTS
        rec = self.recommender.with_events(new_events) if len(new_events) else self.recommender
        rec.stats.warm()
        histories = dict(self.histories)
        uhs = dict(self.user_histories)
        for u, df in frames.items():
            if len(df):
                histories[u] = df.reset_index(drop=True)
                uhs[u] = UserHistory.from_frame(df, rec.stats)
            else:
                histories.pop(u, None)
                uhs.pop(u, None)
        catalog, names = self.catalog, self.item_names()
        if rec.stats.n > len(catalog):
            frame = rec.item_frame
            added = frame[~frame["item_id"].isin(catalog.index)].set_index("item_id", drop=False)
            catalog, names = pd.concat([catalog, added]), names.plus(added)
        return ServingState(version, rec, histories, uhs, catalog, self.query_vectors, names=names)

    def with_history(self, user_id: str, frame: pd.DataFrame) -> ServingState:
        """This state with one user's history replaced and the shared statistics untouched: for
        evaluation, which serves each query from the history before it."""
        frame = frame.reset_index(drop=True)
        return replace(
            self,
            histories={**self.histories, user_id: frame},
            user_histories={
                **self.user_histories,
                user_id: UserHistory.from_frame(frame, self.recommender.stats),
            },
        )
