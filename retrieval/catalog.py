"""The item catalog from the store, as a DataFrame, and the text an item says of itself.

``kinds`` are the item's kinds (a film's genres), split from the stored category ("A|B|C"); the
first is its primary kind (``category`` in responses). What a domain adds to an item's text (a
place's whereabouts, a film's year) is the domain's (``RetrievalPlan.item_text``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.kinds import split_kinds
from core.models import Item

CATALOG_COLUMNS = ["item_id", "name", "category", "lat", "lon", "attributes"]
HIDDEN_ATTRIBUTES = frozenset({"venue_id", "trajectory_id", "kinds"})  # ids and what is said already


def load_catalog(session: Session) -> pd.DataFrame:
    rows = session.execute(
        select(Item.id, Item.name, Item.category, Item.lat, Item.lon, Item.attributes).order_by(Item.id)
    ).all()
    df = pd.DataFrame(rows, columns=CATALOG_COLUMNS)
    df["kinds"] = [split_kinds(c) for c in df["category"]]
    df["category"] = [k[0] if k else None for k in df["kinds"]]
    return df


def item_text(row: Mapping[str, Any], noun: str = "Item") -> str:
    """Name, kinds and plain attributes: "Toy Story (1995) · Adventure, Animation · year: 1995"."""
    name = row.get("name")
    name = name if isinstance(name, str) and name.strip() else None
    parts = [name or f"{noun} {row.get('item_id')}"]
    kinds = row.get("kinds") or split_kinds(row.get("category"))
    if kinds:
        parts.append(", ".join(kinds))
    for k, v in sorted((row.get("attributes") or {}).items()):
        if isinstance(v, str | int | float) and k not in HIDDEN_ATTRIBUTES:
            parts.append(f"{k}: {v}")
    return " · ".join(parts)


def catalog_texts(catalog: pd.DataFrame, text: Callable[[Mapping[str, Any]], str] = item_text) -> list[str]:
    return [text(r) for r in catalog.to_dict("records")]
