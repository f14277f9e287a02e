"""The check-in formats of the places domain (shared/datasets/foursquare_nyc):

- ``foursquare``: the check-in CSV of checkins_train.csv (user_id, stan_poi_id, POI_catname,
  latitude, longitude, UTC_time_minute, ...). Times are UTC; the local offset comes from a time
  zone: the setting's, else the data set's own, New York (``DATASET_ZONE``). A zone the
  coordinates contradict (most check-ins more than three hours from the sun's clock there) is
  reported as a warning, not applied silently.
- ``getnext``: the GETNext CSV (NYC_val.csv): UTC_time with seconds and a ``timezone`` offset in
  minutes; the item id is ``stan_poi_id`` when the column is there, else the venue id ``POI_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import columns as C
from core.ingest.formats import CsvFormat
from core.ingest.reading import ATTRS, LINE, Cleaner, blank_to_na, numeric, offsets_for_zone
from core.ingest.report import Rejection

DATASET_ZONE = "America/New_York"  # the Foursquare NYC data set's zone (its README)
SOLAR_TOLERANCE_MIN = 180  # a zone this far from longitude / 15 h is another part of the world


def _utc(minutes: float) -> str:
    m = round(minutes)
    return f"UTC{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"


def zone_mismatch(events: pd.DataFrame, zone: str) -> str | None:
    """A warning when most located check-ins lie where ``zone``'s clock is off by hours: it names
    the zone, its offset at those times, the offset the coordinates suggest and how to set the
    right zone."""
    located = events[events[C.LAT].notna() & events[C.LON].notna()]
    if not len(located):
        return None
    lon = located[C.LON].to_numpy(dtype=float)
    off = located[C.TZ_OFFSET].to_numpy(dtype=float)
    wrong = float(np.mean(np.abs(off - lon / 15 * 60) > SOLAR_TOLERANCE_MIN))
    if wrong <= 0.5:
        return None
    median_lon = float(np.median(lon))
    hours = round(median_lon / 15)  # the whole-hour offset of the sun's clock there
    etc = "Etc/UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"  # POSIX sign
    return (
        f"the time zone {zone} ({_utc(float(np.median(off)))} at these times) was applied to check-ins "
        f"whose coordinates suggest about {_utc(hours * 60)} (median longitude {median_lon:.1f}°): "
        f"{wrong:.0%} of them lie more than {SOLAR_TOLERANCE_MIN // 60} hours off {zone}'s clock, so "
        "their hours of day are wrong. Name the data's zone: `chronotope ingest FILE --zone ZONE` "
        f"(the region's IANA name, or {etc} for a fixed {_utc(hours * 60)}) or "
        "CHRONOTOPE_LOCAL_TIMEZONE=ZONE, into a new store (CHRONOTOPE_DATA_DIR: stored events keep "
        "their offsets); or use a format with per-row offsets (getnext, events)"
    )


class Foursquare(CsvFormat):
    name = "foursquare"
    required = ("user_id", "stan_poi_id", "latitude", "longitude", "UTC_time_minute")
    domain = "places"

    def frame(self, raw: pd.DataFrame, zone: str | None, rejections: list[Rejection]) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                LINE: raw[LINE],
                C.USER: blank_to_na(raw["user_id"]),
                C.ITEM: blank_to_na(raw["stan_poi_id"]),
                C.KIND: "checkin",
                C.LAT: numeric(raw["latitude"]),
                C.LON: numeric(raw["longitude"]),
                C.CATEGORY: blank_to_na(raw["POI_catname"]) if "POI_catname" in raw else None,
                "_time_raw": raw["UTC_time_minute"],
            }
        )
        cl = Cleaner(df, rejections)
        cl.require_id(C.USER, "user_id")
        cl.require_id(C.ITEM, "stan_poi_id")
        cl.coordinates(required=True)
        parsed = pd.to_datetime(
            cl.df["_time_raw"].str.strip(), format="%Y-%m-%d %H:%M", utc=True, errors="coerce"
        )
        cl.times(parsed, "_time_raw")
        df = cl.df
        df[C.TZ_OFFSET] = offsets_for_zone(df[C.TIME], zone or DATASET_ZONE)
        return df.drop(columns=["_time_raw"])

    def parse(self, path, zone):  # type: ignore[no-untyped-def]
        out = super().parse(path, zone)
        warning = zone_mismatch(out.events, zone or DATASET_ZONE)
        if warning:
            out.warnings.append(warning)
        return out


class GetNext(CsvFormat):
    name = "getnext"
    required = ("user_id", "POI_id", "latitude", "longitude", "UTC_time", "timezone")
    domain = "places"

    def frame(self, raw: pd.DataFrame, zone: str | None, rejections: list[Rejection]) -> pd.DataFrame:
        item_col = "stan_poi_id" if "stan_poi_id" in raw else "POI_id"
        trajectories = raw.get("trajectory_id", pd.Series([None] * len(raw)))
        attrs = [
            {"venue_id": v, "trajectory_id": t} for v, t in zip(raw["POI_id"], trajectories, strict=True)
        ]
        df = pd.DataFrame(
            {
                LINE: raw[LINE],
                C.USER: blank_to_na(raw["user_id"]),
                C.ITEM: blank_to_na(raw[item_col]),
                C.KIND: "checkin",
                C.LAT: numeric(raw["latitude"]),
                C.LON: numeric(raw["longitude"]),
                C.CATEGORY: blank_to_na(raw["POI_catname"]) if "POI_catname" in raw else None,
                ATTRS: attrs,
                "_time_raw": raw["UTC_time"],
                "_tz": numeric(raw["timezone"]),
            }
        )
        cl = Cleaner(df, rejections)
        cl.require_id(C.USER, "user_id")
        cl.require_id(C.ITEM, item_col)
        cl.coordinates(required=True)
        parsed = pd.to_datetime(cl.df["_time_raw"].str.strip(), format="ISO8601", utc=True, errors="coerce")
        cl.times(parsed, "_time_raw")
        cl.reject(
            cl.df["_tz"].isna() | (cl.df["_tz"].abs() > 14 * 60), "missing or impossible timezone offset"
        )
        df = cl.df
        df[C.TZ_OFFSET] = df["_tz"].astype(int)
        return df.drop(columns=["_time_raw", "_tz"])


FOURSQUARE = Foursquare()
GETNEXT = GetNext()
