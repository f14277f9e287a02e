"""The generic events format (docs/ingest-format.md): CSV or JSON Lines, one event a row.

Naive times are UTC; an ISO offset, a ``tz`` (IANA name) or a ``tz_offset_min`` column sets local
time. ``category`` may name several kinds separated by ``|`` (the first is the item's primary kind).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from core import columns as C
from core.ingest.reading import (
    LINE,
    MAX_FIELD_CHARS,
    MAX_ID_CHARS,
    Cleaner,
    blank_to_na,
    finish,
    numeric,
    offsets_for_zone,
)
from core.ingest.report import Rejection

EVENTS_REQUIRED = ("user_id", "timestamp")
EVENTS_OPTIONAL = (
    "event_id",
    "item_id",
    "kind",
    "lat",
    "lon",
    "text",
    "rating",
    "item_name",
    "category",
    "tz",
    "tz_offset_min",
)
EVENT_COLUMNS_IN = (*EVENTS_REQUIRED, *EVENTS_OPTIONAL)
ZONED = "_zoned"  # parse_events: the row's time carried a zone (an ISO offset, tz or tz_offset_min)


_OFFSET_RE = r"(?:(Z)|([+-])(\d{2}):?(\d{2}))$"


def parse_generic_times(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """ISO 8601 strings (offset kept for local time; naive means UTC) or epoch seconds. Returns
    (UTC times, offsets in minutes, whether the text gave an offset: ``Z``, naive and epoch do not)."""
    s = raw.astype("object").map(
        lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    )
    as_num = pd.to_numeric(s, errors="coerce")
    is_epoch = as_num.notna()
    text = s.where(~is_epoch).astype("object").map(lambda v: v.strip() if isinstance(v, str) else v)
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    epoch = pd.to_datetime(as_num.where(is_epoch), unit="s", utc=True, errors="coerce")
    ts = parsed.where(~is_epoch, epoch)
    m = text.astype("string").str.extract(_OFFSET_RE)
    sign = m[1].map({"+": 1, "-": -1}).astype(float)
    offset = (sign * (m[2].astype(float) * 60 + m[3].astype(float))).fillna(0).astype(int)
    return ts, offset, sign.notna()


def parse_events(raw: pd.DataFrame, rejections: list[Rejection]) -> pd.DataFrame:
    """Naive times are UTC; a ``tz`` (IANA name) or ``tz_offset_min`` column sets local time.
    Column ``ZONED`` says which rows carried a zone (``finish`` drops it)."""

    def col(name: str) -> pd.Series:
        return blank_to_na(raw[name]) if name in raw else pd.Series([None] * len(raw), index=raw.index)

    df = pd.DataFrame(
        {
            LINE: raw[LINE],
            C.EVENT_ID: col("event_id"),
            C.USER: col("user_id"),
            C.ITEM: col("item_id"),
            C.KIND: col("kind").fillna("checkin").astype(str).str.strip().str.lower(),
            C.LAT: numeric(col("lat")),
            C.LON: numeric(col("lon")),
            C.TEXT: col("text"),
            C.RATING: numeric(col("rating")),
            C.ITEM_NAME: col("item_name"),
            C.CATEGORY: col("category"),
            "_time_raw": raw["timestamp"],
            "_tz": col("tz"),
            "_tz_off": numeric(col("tz_offset_min")),
        }
    )
    cl = Cleaner(df, rejections)
    cl.require_id(C.USER, "user_id")
    has_id = cl.df[C.EVENT_ID].notna()
    cl.reject(has_id & (cl.df[C.EVENT_ID].astype(str).str.len() > MAX_ID_CHARS), "event_id too long")
    item = cl.df[C.ITEM]
    cl.reject(item.notna() & (item.astype(str).str.len() > MAX_ID_CHARS), "item_id too long")
    cl.df[C.ITEM] = cl.df[C.ITEM].map(lambda v: str(v).strip() if v is not None else None)
    cl.reject(
        cl.df[C.ITEM].isna()
        & cl.df[C.KIND].isin(["checkin", "view", "click", "purchase", "rating", "review"]),
        "missing item_id",
    )
    cl.coordinates(required=False)
    rating = cl.df[C.RATING]
    cl.reject(rating.notna() & ((rating < 0) | (rating > 10)), "rating outside 0..10")
    ts, offset, has_offset = parse_generic_times(cl.df["_time_raw"])
    cl.times(ts, "_time_raw")
    df = cl.df
    offset = offset.reindex(df.index)
    df[ZONED] = (
        has_offset.reindex(df.index).fillna(False).astype(bool) | df["_tz"].notna() | df["_tz_off"].notna()
    )
    df[C.TZ_OFFSET] = offset.astype(int)
    explicit = df["_tz_off"].notna()
    df.loc[explicit, C.TZ_OFFSET] = df.loc[explicit, "_tz_off"].astype(int)
    zoned = df["_tz"].notna() & ~explicit
    bad_zone = pd.Series("", index=df.index)
    for name, idx in df[zoned].groupby("_tz").groups.items():
        try:
            df.loc[idx, C.TZ_OFFSET] = offsets_for_zone(df.loc[idx, C.TIME], str(name))
        except Exception:  # unknown zone name: reject those rows, keep the rest
            bad_zone[idx] = f"unknown time zone {name!r}"
    cl.df = df
    cl.reject(bad_zone != "", bad_zone)
    df = cl.df
    return df.drop(columns=["_time_raw", "_tz", "_tz_off"])


def parse_records(
    records: Sequence[dict[str, Any]],
) -> tuple[pd.DataFrame, list[Rejection], list[Rejection]]:
    """Generic events given as dicts (the API's batch ingest); ``line`` in rejections is the
    1-based position in ``records``. Returns (normalised frame, rejections, duplicates dropped)."""
    rejections: list[Rejection] = []
    good: list[dict[str, Any]] = []
    positions: list[int] = []
    for i, r in enumerate(records, start=1):
        if not isinstance(r, dict):
            rejections.append(Rejection(i, "not an object"))
            continue
        missing = [k for k in EVENTS_REQUIRED if r.get(k) in (None, "")]
        if missing:
            rejections.append(Rejection(i, f"missing {', '.join(missing)}"))
            continue
        good.append(r)
        positions.append(i)
    raw = records_frame(good, positions)
    df = parse_events(raw, rejections)
    return finish(df, rejections)


def read_jsonl(text: str) -> tuple[pd.DataFrame, list[Rejection]]:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    rejections: list[Rejection] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_FIELD_CHARS * 4:
            rejections.append(Rejection(i, f"line is {len(line)} characters long"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rejections.append(Rejection(i, f"invalid JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            rejections.append(Rejection(i, "not a JSON object"))
            continue
        records.append(obj)
        lines.append(i)
    raw = records_frame(records, lines)
    return raw, rejections


def records_frame(records: Iterable[dict[str, Any]], lines: Sequence[int]) -> pd.DataFrame:
    cols = list(EVENT_COLUMNS_IN)
    raw = pd.DataFrame([{k: r.get(k) for k in cols} for r in records], columns=cols, dtype="object")
    raw[LINE] = list(lines)
    return raw
