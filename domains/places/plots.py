"""The places domain's plot for support staff: a person's located check-ins with their areas."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from domains.places.mining import cluster_places
from mining.frame import user_events
from mining.plots import png


def _nice_km(span_km: float) -> float:
    """A round scale-bar length, about a fifth of the span shown."""
    target = max(span_km / 5, 0.05)
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100):
        if step >= target:
            return step
    return 100.0


def places_png(events: pd.DataFrame, user_id: str) -> bytes:
    """Clusters coloured, area names marked. Axes are kilometres east and north of the centre of
    the user's activity, with a scale bar: distances read off the picture, absolute coordinates
    stay off it."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    ev, _ = user_events(events, user_id)
    cl = cluster_places(ev)
    fig, ax = plt.subplots(figsize=(5.8, 5.8))
    if cl is None:
        ax.text(0.5, 0.5, "no located events", ha="center", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        lat, lon = ev.lat[cl.mask], ev.lon[cl.mask]
        lat0, lon0 = float(np.median(lat)), float(np.median(lon))
        kx, ky = 111.32 * np.cos(np.radians(lat0)), 110.57

        def xy(la: np.ndarray | float, lo: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
            return (np.asarray(lo) - lon0) * kx, (np.asarray(la) - lat0) * ky

        x, y = xy(lat, lon)
        ax.scatter(x[cl.labels < 0], y[cl.labels < 0], s=8, c="lightgray", label="other")
        for c in sorted(cl.centers)[:8]:
            sel = cl.labels == c
            ax.scatter(x[sel], y[sel], s=14, label=f"{cl.name(c)} ({cl.sizes[c]})")
            cx, cy = xy(cl.centers[c][0], cl.centers[c][1])
            ax.annotate(cl.name(c), (float(cx), float(cy)), fontsize=9, weight="bold")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("km east of the centre of activity")
        ax.set_ylabel("km north")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        span = float(max(np.ptp(x), np.ptp(y), 0.5))
        bar = _nice_km(span)
        ax.add_artist(
            AnchoredSizeBar(
                ax.transData, bar, f"{bar:g} km", "lower right", pad=0.4, frameon=False, size_vertical=0
            )
        )
    ax.set_title(f"User {user_id}: places and areas")
    return png(fig)
