"""Read events from the store into the DataFrame that mining and retrieval consume (core.columns)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from core import columns as C
from core.models import Event, Item


def events_frame(session: Session, user_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Events joined with their item's name and category, sorted by user then time.

    ``ts`` is tz-aware UTC. An event without coordinates takes its item's."""
    stmt = (
        select(
            Event.id.label(C.EVENT_ID),
            Event.user_id.label(C.USER),
            Event.item_id.label(C.ITEM),
            Event.kind.label(C.KIND),
            Event.ts.label(C.TIME),
            Event.tz_offset_min.label(C.TZ_OFFSET),
            Event.lat.label(C.LAT),
            Event.lon.label(C.LON),
            Event.text.label(C.TEXT),
            Event.rating.label(C.RATING),
            Item.category.label(C.CATEGORY),
            Item.name.label(C.ITEM_NAME),
            Item.lat.label("_item_lat"),
            Item.lon.label("_item_lon"),
            # only feedback rows' attributes: what the reaction was (the others' stay unread)
            case((Event.kind == "feedback", Event.attributes), else_=None).label("_attrs"),
        )
        .outerjoin(Item, Item.id == Event.item_id)
        .order_by(Event.user_id, Event.ts, Event.id)  # ties broken the same way on every store and run
    )
    if user_ids is not None:
        stmt = stmt.where(Event.user_id.in_(list(user_ids)))
    rows = session.execute(stmt).all()
    df = pd.DataFrame(rows, columns=[*C.EVENT_COLUMNS, "_item_lat", "_item_lon", "_attrs"])
    df[C.FEEDBACK] = [a.get("feedback") if isinstance(a, dict) else None for a in df["_attrs"]]
    df[C.LAT] = df[C.LAT].fillna(df["_item_lat"]).astype(float)
    df[C.LON] = df[C.LON].fillna(df["_item_lon"]).astype(float)
    df = df.drop(columns=["_item_lat", "_item_lon", "_attrs"])
    df[C.TIME] = pd.to_datetime(df[C.TIME], utc=True)
    df[C.TZ_OFFSET] = df[C.TZ_OFFSET].fillna(0).astype(int)
    return df.reset_index(drop=True)


def local_time(df: pd.DataFrame) -> pd.Series:
    """Local wall-clock time of each event (naive), from UTC plus the stored offset."""
    return (df[C.TIME] + pd.to_timedelta(df[C.TZ_OFFSET], unit="m")).dt.tz_localize(None)
