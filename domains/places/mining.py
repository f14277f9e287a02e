"""Where the user is: place clusters (DBSCAN, haversine), home/work anchors, radius of gyration.

The places domain's miners: ``spatial_miner`` clusters the located check-ins, names each event's
area for the time-slot habits that follow it, and states the clusters, anchors and gyration;
``PLACE_SENTENCES`` put home, work and range into the profile text. Cluster centres are kept to
3 decimals (~100 m) in fact values for support staff; statements and profile text name clusters
("area A1"), never a home's coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domains.places.geo import EARTH_KM, haversine_km
from mining.facts import Fact, insufficient
from mining.frame import UserEvents
from mining.plan import MiningContext
from mining.text import usable

EPS_KM = 0.5
MIN_CLUSTER_EVENTS = 3
GRID_DEG = 0.01  # ~1 km cells for the heatmap


@dataclass
class Clusters:
    labels: np.ndarray  # per event with coordinates; -1 = noise
    centers: dict[int, tuple[float, float]]
    sizes: dict[int, int]
    mask: np.ndarray  # which events had coordinates

    def name(self, c: int) -> str:
        return f"area A{c + 1}"


def cluster_places(ev: UserEvents, method: str = "dbscan", k: int = 4) -> Clusters | None:
    mask = ev.has_coords
    if mask.sum() == 0:
        return None
    lat, lon = ev.lat[mask], ev.lon[mask]
    # Cluster distinct places weighted by visits: the same work is O(places), not O(events).
    coords = np.round(np.column_stack([lat, lon]), 5)
    uniq, inverse, counts = np.unique(coords, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    if method == "kmeans":
        from sklearn.cluster import KMeans

        k = max(1, min(k, len(uniq)))
        km = KMeans(n_clusters=k, n_init=4, random_state=0).fit(uniq, sample_weight=counts)
        place_labels = km.labels_
    else:
        from sklearn.cluster import DBSCAN

        db = DBSCAN(
            eps=EPS_KM / EARTH_KM, min_samples=MIN_CLUSTER_EVENTS, metric="haversine", algorithm="ball_tree"
        ).fit(np.radians(uniq), sample_weight=counts)
        place_labels = db.labels_
    labels = place_labels[inverse]
    # Renumber by size so A1 is the biggest area.
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.argsort(-sizes, kind="stable")]
    remap = {int(old): new for new, old in enumerate(order)}
    labels = np.array([remap.get(int(x), -1) for x in labels])
    centers, size_map = {}, {}
    for c in range(len(order)):
        sel = labels == c
        centers[c] = (float(np.median(lat[sel])), float(np.median(lon[sel])))
        size_map[c] = int(sel.sum())
    return Clusters(labels, centers, size_map, mask)


def gyration_km(lat: np.ndarray, lon: np.ndarray) -> float:
    if len(lat) < 2:
        return 0.0
    clat, clon = float(np.mean(lat)), float(np.mean(lon))
    d = haversine_km(lat, lon, clat, clon)
    return float(np.sqrt(np.mean(d**2)))


def spatial_facts(ev: UserEvents, cl: Clusters | None) -> list[Fact]:
    if cl is None:
        return [insufficient("space.clusters", "spatial", "places", ev.n, "no events with coordinates")]
    n = int(cl.mask.sum())
    lat, lon = ev.lat[cl.mask], ev.lon[cl.mask]
    distinct = len(np.unique(np.round(np.column_stack([lat, lon]), 5), axis=0))
    facts: list[Fact] = []
    rg = gyration_km(lat, lon)
    facts.append(
        Fact(
            "space.gyration",
            "spatial",
            f"Moves within a radius of gyration of {rg:.1f} km across {distinct} distinct places.",
            {"radius_of_gyration_km": round(rg, 2), "distinct_places": distinct},
            n,
            min(1.0, n / 20) if distinct > 1 else 0.3,
        )
    )
    if not cl.centers:
        facts.append(
            insufficient(
                "space.clusters",
                "spatial",
                "place clusters",
                n,
                f"no {MIN_CLUSTER_EVENTS}+ events within {EPS_KM} km",
            )
        )
        return facts
    shares = {c: s / n for c, s in cl.sizes.items()}
    top = sorted(shares, key=lambda c: -shares[c])[:4]
    desc = ", ".join(f"{cl.name(c)} {shares[c]:.0%}" for c in top)
    facts.append(
        Fact(
            "space.clusters",
            "spatial",
            f"Activity concentrates in {len(cl.centers)} area(s): {desc}.",
            {
                "clusters": [
                    {
                        "id": cl.name(c),
                        "share": round(shares[c], 3),
                        "events": cl.sizes[c],
                        "center": [round(cl.centers[c][0], 3), round(cl.centers[c][1], 3)],
                    }
                    for c in sorted(cl.centers)
                ],
                "unclustered_share": round(float((cl.labels < 0).mean()), 3),
            },
            n,
            min(1.0, n / 30),
        )
    )
    facts.extend(_anchors(ev, cl))
    # Grid heatmap (top cells) for plots and support staff.
    cells = np.floor(np.column_stack([lat, lon]) / GRID_DEG).astype(int)
    uniq, counts = np.unique(cells, axis=0, return_counts=True)
    top_cells = np.argsort(-counts)[:10]
    facts.append(
        Fact(
            "space.grid",
            "spatial",
            f"The busiest ~1 km cell holds {counts[top_cells[0]] / n:.0%} of located events.",
            {
                "cell_deg": GRID_DEG,
                "cells": [
                    {
                        "lat": round((uniq[i][0] + 0.5) * GRID_DEG, 3),
                        "lon": round((uniq[i][1] + 0.5) * GRID_DEG, 3),
                        "events": int(counts[i]),
                    }
                    for i in top_cells
                ],
            },
            n,
            min(1.0, n / 30),
        )
    )
    return facts


def _anchors(ev: UserEvents, cl: Clusters) -> list[Fact]:
    """Home: where nights and weekend mornings happen. Work: weekday office hours, not home."""
    hour, wd = ev.hour[cl.mask], ev.weekday[cl.mask]
    night = (hour >= 21) | (hour < 7) | ((wd >= 5) & (hour < 11))
    office = (wd < 5) & (hour >= 9) & (hour < 18)
    facts: list[Fact] = []
    home = _best(cl.labels, night)
    if home is not None:
        c, cnt, share = home
        facts.append(
            Fact(
                "space.home",
                "spatial",
                f"Likely home area: {cl.name(c)} ({cnt} night or weekend-morning events, "
                f"{share:.0%} of those).",
                {"cluster": cl.name(c), "evidence_events": cnt, "share_of_night_events": round(share, 3)},
                cnt,
                min(1.0, share * min(1.0, cnt / 10)),
            )
        )
    else:
        facts.append(
            insufficient(
                "space.home", "spatial", "a home area", int(night.sum()), "needs ≥ 3 night events in one area"
            )
        )
    work = _best(cl.labels, office, exclude=home[0] if home else None)
    if work is not None:
        c, cnt, share = work
        facts.append(
            Fact(
                "space.work",
                "spatial",
                f"Likely work/study area: {cl.name(c)} ({cnt} weekday office-hours events, "
                f"{share:.0%} of those).",
                {"cluster": cl.name(c), "evidence_events": cnt, "share_of_office_events": round(share, 3)},
                cnt,
                min(1.0, share * min(1.0, cnt / 10)),
            )
        )
    else:
        facts.append(
            insufficient(
                "space.work",
                "spatial",
                "a work area",
                int(office.sum()),
                "needs ≥ 3 office-hours events in an area other than home",
            )
        )
    return facts


def _best(labels: np.ndarray, sel: np.ndarray, exclude: int | None = None) -> tuple[int, int, float] | None:
    lab = labels[sel & (labels >= 0)]
    if exclude is not None:
        lab = lab[lab != exclude]
    if len(lab) < 3:
        return None
    ids, counts = np.unique(lab, return_counts=True)
    i = int(np.argmax(counts))
    if counts[i] < 3:
        return None
    return int(ids[i]), int(counts[i]), float(counts[i] / max(1, sel.sum()))


def spatial_miner(ev: UserEvents, ctx: MiningContext) -> list[Fact]:
    """Clusters, anchors and gyration; sets ``ctx.areas`` (each event's area, None where none)."""
    cl = cluster_places(ev)
    area = np.full(ev.n, None, dtype=object)
    if cl is not None:
        for i, lab in zip(np.where(cl.mask)[0], cl.labels, strict=True):
            if lab >= 0:
                area[i] = cl.name(int(lab))
    ctx.areas = area
    return spatial_facts(ev, cl)


def _home_work(facts: dict[str, Fact]) -> tuple[str, list[str]] | None:
    home, work = usable(facts, "space.home"), usable(facts, "space.work")
    if home and work:
        return (
            f"Nights are usually in {home.value['cluster']}, "
            f"weekday office hours in {work.value['cluster']}.",
            [home.id, work.id],
        )
    if home:
        return f"Nights and weekend mornings are usually in {home.value['cluster']}.", [home.id]
    return None


def _range(facts: dict[str, Fact]) -> tuple[str, list[str]] | None:
    gyr = usable(facts, "space.gyration")
    if not gyr:
        return None
    return (
        f"Moves within about {gyr.value['radius_of_gyration_km']:.0f} km "
        f"across {gyr.value['distinct_places']} places.",
        [gyr.id],
    )


PLACE_SENTENCES = (_home_work, _range)
# What reviews of venues talk about (the review miner's aspects for this domain).
REVIEW_ASPECTS = {
    "service": {"service", "staff", "waiter", "waitress", "barista", "server", "friendly", "rude"},
    "food": {"food", "dish", "meal", "pizza", "burger", "delicious", "tasty", "bland", "menu"},
    "drinks": {"coffee", "beer", "wine", "cocktail", "drinks", "tea", "latte"},
    "price": {"price", "prices", "cheap", "expensive", "overpriced", "affordable", "value"},
    "atmosphere": {"atmosphere", "vibe", "music", "quiet", "noisy", "loud", "cozy", "cosy", "crowded"},
    "wait": {"wait", "waited", "queue", "line", "slow", "fast", "quick"},
}
