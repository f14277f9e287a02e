"""Where places are: the spatial feature group, the ``nearby`` candidate source and the distance filter.

The catalog part (``ItemLocations``) holds each place's coordinates (the median of its check-ins,
else the catalog's) and a KD-tree on the unit sphere; a query's part (``PlaceQuery``) holds the
reference point (the request's location, else the latest located check-in), the person's centroid
and their most visited located places (anchors). Unlocated places count as 50 km away ("far", not
an error), as does everything when no reference is known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from core import columns as C
from domains.places.geo import haversine_km, km_between
from retrieval.catalog_stats import CatalogStats
from retrieval.features import Columns
from retrieval.query import Query, QueryVectors
from retrieval.user_history import UserHistory

FAR_KM = 50.0
NEARBY_KM = 1.0  # a pool place this close to the reference is "nearby" (its provenance)
ANCHORS = 5  # the person's most visited places that "distance from anchors" measures from
GEO = "geo"


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    p, q = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(p) * np.cos(q), np.cos(p) * np.sin(q), np.sin(p)])


@dataclass
class ItemLocations:
    lat: np.ndarray
    lon: np.ndarray
    _tree: tuple[cKDTree, np.ndarray] | None = field(default=None, repr=False)
    _built: bool = field(default=False, repr=False)

    def warm(self) -> None:
        if not self._built:
            located = np.flatnonzero(~(np.isnan(self.lat) | np.isnan(self.lon)))
            if len(located):
                self._tree = (cKDTree(_unit_vectors(self.lat[located], self.lon[located])), located)
            self._built = True

    def nearest(self, lat: float, lon: float, k: int) -> np.ndarray:
        """The ``k`` located places closest to (lat, lon), nearest first (chord length on the unit
        sphere orders places as the great-circle distance does)."""
        self.warm()
        if self._tree is None or k <= 0:
            return np.zeros(0, dtype=np.int64)
        t, located = self._tree
        k = min(k, len(located))
        _, pos = t.query(_unit_vectors(np.array([lat]), np.array([lon]))[0], k=k)
        return located[np.atleast_1d(pos)].astype(np.int64)

    def nearest_of(self, refs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """km from each of ``rows`` to the closest of ``refs`` (an (n, 2) array of lat, lon), in
        one broadcast instead of one pass per reference."""
        d = haversine_km(refs[:, :1], refs[:, 1:], self.lat[rows][None, :], self.lon[rows][None, :])
        return _far_if_unknown(d).min(axis=0)

    def distance(self, ref: tuple[float, float], rows: np.ndarray | None = None) -> np.ndarray:
        """km from ``ref`` to each of ``rows`` (every place when None); FAR_KM for an unknown
        reference or an unlocated place."""
        lat, lon = (self.lat, self.lon) if rows is None else (self.lat[rows], self.lon[rows])
        if np.isnan(ref[0]) or np.isnan(ref[1]):
            return np.full(len(lat), FAR_KM)
        return _far_if_unknown(haversine_km(ref[0], ref[1], lat, lon))

    def distance_to(self, ref: tuple[float, float], i: int) -> float:
        """``distance`` for one place, in plain floats (numpy's per-call overhead would cost more
        than the arithmetic: labels and evidence ask this per shown place)."""
        lat, lon = float(self.lat[i]), float(self.lon[i])
        if any(math.isnan(v) for v in (lat, lon, *ref)):
            return FAR_KM
        return km_between(ref[0], ref[1], lat, lon)


def _far_if_unknown(d: np.ndarray) -> np.ndarray:
    """FAR_KM where a distance is unknown (NaN: an unlocated place or reference)."""
    return np.where(np.isnan(d), FAR_KM, d)


def locations(stats: CatalogStats) -> ItemLocations:
    part = stats.parts.get(GEO)
    if not isinstance(part, ItemLocations):
        raise KeyError("these catalog statistics carry no place locations (not the places domain)")
    return part


@dataclass(frozen=True)
class PlaceQuery:
    ref: tuple[float, float]  # (nan, nan): unknown
    centroid: tuple[float, float] | None
    anchors: np.ndarray | None  # (k, 2) lat/lon of the person's most visited located places
    at_request_place: bool = False


def request_location(args: Mapping[str, Any]) -> tuple[float, float] | None:
    lat, lon = args.get("lat"), args.get("lon")
    return (float(lat), float(lon)) if lat is not None and lon is not None else None


class SpatialGroup:
    name = GEO
    columns = (
        "dist_last_km_log",
        "dist_last_exp",
        "dist_centroid_km_log",
        "covis_x_dist",
        "dist_anchor_km_log",
    )

    def build(self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> ItemLocations:
        ids = pd.Index(stats.item_ids.astype(str))
        h = history.dropna(subset=[C.ITEM])
        coords = h.groupby(h[C.ITEM].astype(str))[[C.LAT, C.LON]].median() if len(h) else None
        lat = (
            np.full(len(ids), np.nan) if coords is None else coords[C.LAT].reindex(ids).to_numpy(dtype=float)
        )
        lon = (
            np.full(len(ids), np.nan) if coords is None else coords[C.LON].reindex(ids).to_numpy(dtype=float)
        )
        lat, lon = lat.copy(), lon.copy()
        if items is not None and len(items) and "lat" in items:
            it = (
                items.assign(item_id=items["item_id"].astype(str))
                .drop_duplicates("item_id")
                .set_index("item_id")
            )
            miss = np.isnan(lat)
            lat[miss] = it["lat"].reindex(ids[miss]).to_numpy(dtype=float)
            lon[miss] = it["lon"].reindex(ids[miss]).to_numpy(dtype=float)
        return ItemLocations(lat, lon)

    def grow(self, part: Any, stats: CatalogStats, events: pd.DataFrame) -> ItemLocations:
        old = part if isinstance(part, ItemLocations) else ItemLocations(np.zeros(0), np.zeros(0))
        k = stats.n - len(old.lat)
        if k <= 0:
            return old
        new_ids = pd.Index(stats.item_ids[len(old.lat) :].astype(str))
        e = events.dropna(subset=[C.ITEM])
        coords = e.groupby(e[C.ITEM].astype(str))[[C.LAT, C.LON]].median().reindex(new_ids)
        return ItemLocations(
            np.concatenate([old.lat, coords[C.LAT].to_numpy(dtype=float)]),
            np.concatenate([old.lon, coords[C.LON].to_numpy(dtype=float)]),
        )

    def query(
        self, stats: CatalogStats, base: QueryVectors, user: UserHistory, args: Mapping[str, Any]
    ) -> PlaceQuery:
        loc = locations(stats)
        where = request_location(args)
        if not base.m:
            ref = where if where is not None else (np.nan, np.nan)
            return PlaceQuery((float(ref[0]), float(ref[1])), None, None, where is not None)
        ui = user.idx[user.idx >= 0]
        counts = base.per_item["count"]
        by_visits = base.items[np.argsort(-counts, kind="stable")]
        by_visits = by_visits[~np.isnan(loc.lat[by_visits])][:ANCHORS]
        anchors = np.column_stack([loc.lat[by_visits], loc.lon[by_visits]]) if len(by_visits) else None
        # the latest check-in's place, or the latest located one before it (an event may name a
        # place nobody has located yet: distances from nowhere would all be NaN)
        last = ui[-1]
        located = ui[~np.isnan(loc.lat[ui])]
        at = last if not np.isnan(loc.lat[last]) or not len(located) else located[-1]
        ref = (loc.lat[at], loc.lon[at]) if where is None else where
        centroid = (float(np.nanmedian(loc.lat[ui])), float(np.nanmedian(loc.lon[ui])))
        return PlaceQuery((float(ref[0]), float(ref[1])), centroid, anchors, where is not None)

    def fill(self, f: np.ndarray, col: Columns, stats: CatalogStats, q: Query, rows: np.ndarray) -> None:
        loc = locations(stats)
        pq: PlaceQuery = q.parts[GEO]
        if q.base.m:
            assert pq.centroid is not None
            f[:, col["dist_centroid_km_log"]] = np.log1p(loc.distance(pq.centroid, rows))
            if pq.anchors is not None:
                f[:, col["dist_anchor_km_log"]] = np.log1p(loc.nearest_of(pq.anchors, rows))
            else:
                f[:, col["dist_anchor_km_log"]] = np.log1p(FAR_KM)
        else:
            f[:, col["dist_centroid_km_log"]] = np.log1p(FAR_KM)
            f[:, col["dist_anchor_km_log"]] = np.log1p(FAR_KM)
        d = loc.distance(pq.ref, rows)
        f[:, col["dist_last_km_log"]] = np.log1p(d)
        f[:, col["dist_last_exp"]] = np.exp(-d / 2)
        f[:, col["covis_x_dist"]] = f[:, col["covis_rank_score"]] * f[:, col["dist_last_exp"]]


@dataclass(frozen=True)
class Nearby:
    """The places nearest the reference point (the request's place, else the latest check-in)."""

    name: str = "nearby"
    covers: tuple[str, ...] = ("dist_last_exp",)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        ref = q.parts[GEO].ref
        if np.isnan(ref[0]) or np.isnan(ref[1]):
            return np.zeros(0, dtype=np.int64)
        return locations(stats).nearest(ref[0], ref[1], depth)

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        d_k = FAR_KM
        ref = q.parts[GEO].ref
        if not (np.isnan(ref[0]) or np.isnan(ref[1])) and len(rows) == depth:
            d_k = min(d_k, float(locations(stats).distance(ref, rows[-1:])[0]))
        return weights.get("dist_last_exp", 0.0) * float(np.exp(-d_k / 2))

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        return f[:, col["dist_last_km_log"]] <= np.log1p(NEARBY_KM)


def has_reference(q: Query) -> bool:
    """Distances mean something: the request gave its place, or the person has a history with a
    located place in it (a history of places nobody located gives no "here": a distance filter
    from nowhere emptied every list)."""
    ref = q.parts[GEO].ref
    located = not (np.isnan(ref[0]) or np.isnan(ref[1]))
    return bool(q.parts[GEO].at_request_place or (q.base.m and located))


def distance_allowed(stats: CatalogStats, q: Query, max_km: float | None) -> np.ndarray:
    """Places within ``max_km`` of the reference; with a reference, unlocated places are left
    out: nobody can say how far they are."""
    loc = locations(stats)
    pq: PlaceQuery = q.parts[GEO]
    ok = np.ones(stats.n, dtype=bool)
    has_ref = has_reference(q)
    if max_km is not None and has_ref:
        ok &= loc.distance(pq.ref) <= max_km
    if has_ref:
        ok &= ~np.isnan(loc.lat)
    return ok


def km_to(stats: CatalogStats, q: Query, i: int) -> float:
    """km from the query's reference to place ``i`` (FAR_KM, "far", when either is unknown)."""
    pq: PlaceQuery = q.parts[GEO]
    return locations(stats).distance_to(pq.ref, i)


# Map cells a place's behaviour vector shares with its neighbours (degrees: about 1 km and 3 km
# in New York's latitudes; any city works, a cell is only a token)
CELLS_DEG = (0.01, 0.03)


def place_tokens(stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> list[list[str]]:
    """A place's kinds and the map cells it lies in: a rarely visited place still gets a vector
    near the places around it and like it."""
    from retrieval.behaviour_source import kind_tokens

    out = kind_tokens(stats, history, items)
    loc: ItemLocations | None = stats.parts.get(GEO)
    if loc is None:
        return out
    for i in np.flatnonzero(np.isfinite(loc.lat) & np.isfinite(loc.lon)):
        out[i] += [f"cell{d}:{int(loc.lat[i] // d)}:{int(loc.lon[i] // d)}" for d in CELLS_DEG]
    return out
