"""Place categories as known at a moment of the dev split, under the dataset's leak rule.

shared/datasets/foursquare_nyc/README.md: categories are filled only for POIs that occur in
NYC_val.csv, so "has a category" marks a POI as a val one. A POI's category counts as known at
time t only if the POI occurs in an NYC_val row before t (any user's). History rows' categories
are therefore never read here.
"""

from __future__ import annotations

import pandas as pd

from core import columns as C


class KnownCategories:
    def __init__(self, test: pd.DataFrame) -> None:
        rows = test.dropna(subset=[C.ITEM, C.CATEGORY]).sort_values(C.TIME, kind="stable")
        first = rows.groupby(C.ITEM, sort=False).first()
        pairs = zip(first[C.TIME], first[C.CATEGORY], strict=True)
        self._first: dict[str, tuple[pd.Timestamp, str]] = {
            str(item): (ts, str(cat)) for item, (ts, cat) in zip(first.index, pairs, strict=True)
        }

    def at(self, item_id: str, ts: pd.Timestamp) -> str | None:
        """The category of ``item_id`` if some val row before ``ts`` names the place, else None."""
        seen = self._first.get(str(item_id))
        return seen[1] if seen is not None and seen[0] < ts else None
