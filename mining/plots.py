"""PNG plots for support staff: the weekly rhythm heatmap (a domain adds its own: places' areas)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mining.frame import user_events  # noqa: E402
from mining.rhythm import DAYS  # noqa: E402

PLOTS = ("rhythm",)


def png(fig: plt.Figure) -> bytes:
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
    return png(fig)


def render_plot(name: str, events: pd.DataFrame, user_id: str) -> bytes:
    if name == "rhythm":
        return rhythm_png(events, user_id)
    raise ValueError(f"unknown plot {name!r}; choose one of {', '.join(PLOTS)}")
