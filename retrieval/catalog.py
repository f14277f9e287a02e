"""The item catalog from the store, as a DataFrame, and the texts items are embedded with."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Item
from retrieval.item_text import item_text

CATALOG_COLUMNS = ["item_id", "name", "category", "lat", "lon", "attributes"]


def load_catalog(session: Session) -> pd.DataFrame:
    rows = session.execute(
        select(Item.id, Item.name, Item.category, Item.lat, Item.lon, Item.attributes).order_by(Item.id)
    ).all()
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)


def catalog_texts(catalog: pd.DataFrame) -> list[str]:
    return [
        item_text(str(r.item_id), r.name, r.category, r.lat, r.lon, r.attributes)
        for r in catalog.itertuples(index=False)
    ]
