"""PNG plots for support staff: the weekly rhythm heatmap and the user's places with clusters."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mining.frame import user_events  # noqa: E402
from mining.rhythm import DAYS  # noqa: E402
from mining.spatial import cluster_places  # noqa: E402

PLOTS = ("rhythm", "places")


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def rhythm_png(events: pd.DataFrame, user_id: str) -> bytes:
    ev, _ = user_events(events, user_id)
    grid = np.zeros((7, 24))
    np.add.at(grid, (ev.weekday, ev.hour), 1)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(7), [d[:3] for d in DAYS])
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("local hour")
    ax.set_title(f"User {user_id}: weekly rhythm ({ev.n} events)")
    fig.colorbar(im, ax=ax, label="events")
    return _png(fig)


def places_png(events: pd.DataFrame, user_id: str) -> bytes:
    """Clusters coloured, anchors marked. Axes are unlabeled on purpose: coordinates stay off the picture."""
    ev, _ = user_events(events, user_id)
    cl = cluster_places(ev)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    if cl is None:
        ax.text(0.5, 0.5, "no located events", ha="center", va="center")
    else:
        lat, lon = ev.lat[cl.mask], ev.lon[cl.mask]
        ax.scatter(lon[cl.labels < 0], lat[cl.labels < 0], s=8, c="lightgray", label="other")
        for c in sorted(cl.centers)[:8]:
            sel = cl.labels == c
            ax.scatter(lon[sel], lat[sel], s=14, label=f"{cl.name(c)} ({cl.sizes[c]})")
            ax.annotate(cl.name(c), (cl.centers[c][1], cl.centers[c][0]), fontsize=9, weight="bold")
        ax.legend(fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"User {user_id}: places and areas")
    return _png(fig)


def render_plot(name: str, events: pd.DataFrame, user_id: str) -> bytes:
    if name == "rhythm":
        return rhythm_png(events, user_id)
    if name == "places":
        return places_png(events, user_id)
    raise ValueError(f"unknown plot {name!r}; choose one of {', '.join(PLOTS)}")
