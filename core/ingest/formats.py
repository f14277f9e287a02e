"""Parsing and cleaning of the supported input formats into one normalised events frame.

Formats (guessed from the header when not given):
- ``foursquare``: the check-in CSV of shared/datasets/foursquare_nyc/checkins_train.csv
  (user_id, stan_poi_id, POI_catname, latitude, longitude, UTC_time_minute, ...). Times are UTC;
  the local offset comes from the configured time zone (New York for the NYC data).
- ``getnext``: the GETNext CSV (NYC_val.csv): UTC_time with seconds and a ``timezone`` offset in
  minutes; the item id is ``stan_poi_id`` when the column is there, else the venue id ``POI_id``.
- ``events``: the generic format, CSV or JSON Lines (docs/ingest-format.md).

Every row that cannot be used is reported with its line number and reason; the good rows go on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from core.errors import InvalidInputError, UnknownFormatError
from core.ingest.report import Rejection

FORMATS = ("foursquare", "getnext", "events")
MAX_FIELD_CHARS = 20_000  # one text field; a longer one is a broken line, not a review
MAX_ID_CHARS = 64  # the store's id columns
SNIFF_BYTES = 64 * 1024

FOURSQUARE_REQUIRED = ("user_id", "stan_poi_id", "latitude", "longitude", "UTC_time_minute")
GETNEXT_REQUIRED = ("user_id", "POI_id", "latitude", "longitude", "UTC_time", "timezone")
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

# The normalised frame handed to the writer (core.columns names, plus the source line).
LINE = "_line"
ATTRS = "attributes"
NORMALISED = [*C.EVENT_COLUMNS, ATTRS, LINE]


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a directory, not a file")
    raw = path.read_bytes()
    if not raw.strip():
        raise InvalidInputError(f"{path}: the file is empty")
    if b"\x00" in raw[:SNIFF_BYTES]:
        raise InvalidInputError(f"{path}: looks like a binary file (NUL bytes), not CSV or JSON Lines")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInputError(f"{path}: not UTF-8 text (bad byte at line {line})") from exc


def detect_format(header: Sequence[str]) -> str:
    cols = set(header)
    if set(FOURSQUARE_REQUIRED) <= cols:
        return "foursquare"
    if set(GETNEXT_REQUIRED) <= cols:
        return "getnext"
    if set(EVENTS_REQUIRED) <= cols:
        return "events"
    raise UnknownFormatError(
        "cannot tell the format from the columns "
        f"{sorted(cols)[:12]}; expected one of: foursquare ({', '.join(FOURSQUARE_REQUIRED)}), "
        f"getnext ({', '.join(GETNEXT_REQUIRED)}), events ({', '.join(EVENTS_REQUIRED)}, ...)"
    )


def _read_csv_rows(text: str) -> tuple[list[str], list[list[str]], list[int], list[Rejection]]:
    """Header, well-formed rows, their line numbers, and rejections for malformed ones."""
    csv.field_size_limit(2**31 - 1)  # long fields are rejected below with a reason, not by csv
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InvalidInputError("the file is empty") from None
    except csv.Error as exc:
        raise InvalidInputError(f"line 1: unreadable CSV header ({exc})") from exc
    if len(set(header)) != len(header):
        raise InvalidInputError(f"line 1: duplicate column names in header {header}")
    rows: list[list[str]] = []
    lines: list[int] = []
    rejections: list[Rejection] = []
    width = len(header)
    start = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejections.append(Rejection(reader.line_num, f"malformed CSV ({exc})"))
            start = reader.line_num + 1
            continue
        line = start
        start = reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != width:
            rejections.append(Rejection(line, f"expected {width} fields, found {len(row)}"))
            continue
        longest = max(len(v) for v in row)
        if longest > MAX_FIELD_CHARS:
            rejections.append(
                Rejection(line, f"a field is {longest} characters long (max {MAX_FIELD_CHARS})")
            )
            continue
        rows.append(row)
        lines.append(line)
    return header, rows, lines, rejections


def _blank_to_na(s: pd.Series) -> pd.Series:
    s = s.astype("object")
    return s.where(s.notna() & (s.astype(str).str.strip() != ""), None)


def _numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(_blank_to_na(s), errors="coerce").astype(float)


def _event_ids(df: pd.DataFrame) -> pd.Series:
    """Deterministic id from the natural key, so re-ingesting a file changes nothing."""
    if df.empty:  # every row rejected: string ops on an empty datetime column would misbehave
        return pd.Series([], index=df.index, dtype=object)
    keys = (
        df[C.USER].astype(str)
        + "|"
        + df[C.ITEM].fillna("").astype(str)
        + "|"
        + df[C.KIND].astype(str)
        + "|"
        + df[C.TIME].map(lambda t: t.isoformat())
    )
    return keys.map(lambda k: hashlib.blake2b(k.encode(), digest_size=12).hexdigest())


def _offsets_for_zone(ts: pd.Series, zone: str) -> pd.Series:
    local = ts.dt.tz_convert(zone).dt.tz_localize(None)
    return ((local - ts.dt.tz_localize(None)).dt.total_seconds() // 60).astype(int)


class _Cleaner:
    """Collects rejections while rows are validated column by column (vectorised)."""

    def __init__(self, df: pd.DataFrame, rejections: list[Rejection]) -> None:
        self.df = df
        self.rejections = rejections

    def reject(self, mask: pd.Series, reason: str | pd.Series) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        bad = self.df[mask]
        reasons = reason[mask] if isinstance(reason, pd.Series) else [reason] * len(bad)
        self.rejections.extend(Rejection(int(ln), str(r)) for ln, r in zip(bad[LINE], reasons, strict=True))
        self.df = self.df[~mask]

    def require_id(self, col: str, label: str) -> None:
        s = self.df[col]
        self.reject(s.isna(), f"missing {label}")
        s = self.df[col].astype(str).str.strip()
        self.df[col] = s
        self.reject(s.str.len() > MAX_ID_CHARS, f"{label} longer than {MAX_ID_CHARS} characters")

    def coordinates(self, required: bool) -> None:
        lat, lon = self.df[C.LAT], self.df[C.LON]
        missing = lat.isna() | lon.isna()
        if required:
            self.reject(missing, "missing or unparseable coordinates")
        else:
            # half a coordinate is no place at all
            self.reject(lat.isna() != lon.isna(), "only one of lat/lon given")
        lat, lon = self.df[C.LAT], self.df[C.LON]
        self.reject(
            (lat.abs() > 90) | (lon.abs() > 180), "impossible coordinates (|lat| > 90 or |lon| > 180)"
        )
        lat, lon = self.df[C.LAT], self.df[C.LON]
        self.reject((lat == 0) & (lon == 0), "coordinates (0, 0): a missing value, not a place")

    def times(self, parsed: pd.Series, raw_col: str) -> None:
        self.df[C.TIME] = parsed.reindex(self.df.index)
        self.reject(self.df[C.TIME].isna(), "unparseable time: " + self.df[raw_col].astype(str).str[:40])


def _finish(
    df: pd.DataFrame, rejections: list[Rejection]
) -> tuple[pd.DataFrame, list[Rejection], list[Rejection]]:
    """Drop exact duplicate events (same id), report them apart, and order the columns."""
    if C.EVENT_ID not in df or df[C.EVENT_ID].isna().all():
        df[C.EVENT_ID] = _event_ids(df)
    else:
        missing = df[C.EVENT_ID].isna()
        if missing.any():
            df.loc[missing, C.EVENT_ID] = _event_ids(df[missing])
    dup = df.duplicated(C.EVENT_ID, keep="first")
    duplicates: list[Rejection] = []
    if dup.any():
        first_line = df[~dup].set_index(C.EVENT_ID)[LINE]
        for ln, eid in zip(df.loc[dup, LINE], df.loc[dup, C.EVENT_ID], strict=True):
            duplicates.append(Rejection(int(ln), f"duplicate of line {int(first_line[eid])}"))
        df = df[~dup]
    for col in NORMALISED:
        if col not in df:
            df[col] = None
    rejections.sort(key=lambda r: r.line)
    return df[NORMALISED].reset_index(drop=True), rejections, duplicates


def _parse_foursquare(raw: pd.DataFrame, zone: str, rejections: list[Rejection]) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            LINE: raw[LINE],
            C.USER: _blank_to_na(raw["user_id"]),
            C.ITEM: _blank_to_na(raw["stan_poi_id"]),
            C.KIND: "checkin",
            C.LAT: _numeric(raw["latitude"]),
            C.LON: _numeric(raw["longitude"]),
            C.CATEGORY: _blank_to_na(raw["POI_catname"]) if "POI_catname" in raw else None,
            "_time_raw": raw["UTC_time_minute"],
        }
    )
    cl = _Cleaner(df, rejections)
    cl.require_id(C.USER, "user_id")
    cl.require_id(C.ITEM, "stan_poi_id")
    cl.coordinates(required=True)
    parsed = pd.to_datetime(
        cl.df["_time_raw"].str.strip(), format="%Y-%m-%d %H:%M", utc=True, errors="coerce"
    )
    cl.times(parsed, "_time_raw")
    df = cl.df
    df[C.TZ_OFFSET] = _offsets_for_zone(df[C.TIME], zone)
    return df.drop(columns=["_time_raw"])


def _parse_getnext(raw: pd.DataFrame, rejections: list[Rejection]) -> pd.DataFrame:
    item_col = "stan_poi_id" if "stan_poi_id" in raw else "POI_id"
    attrs = [
        {"venue_id": v, "trajectory_id": t}
        for v, t in zip(raw["POI_id"], raw.get("trajectory_id", pd.Series([None] * len(raw))), strict=True)
    ]
    df = pd.DataFrame(
        {
            LINE: raw[LINE],
            C.USER: _blank_to_na(raw["user_id"]),
            C.ITEM: _blank_to_na(raw[item_col]),
            C.KIND: "checkin",
            C.LAT: _numeric(raw["latitude"]),
            C.LON: _numeric(raw["longitude"]),
            C.CATEGORY: _blank_to_na(raw["POI_catname"]) if "POI_catname" in raw else None,
            ATTRS: attrs,
            "_time_raw": raw["UTC_time"],
            "_tz": _numeric(raw["timezone"]),
        }
    )
    cl = _Cleaner(df, rejections)
    cl.require_id(C.USER, "user_id")
    cl.require_id(C.ITEM, item_col)
    cl.coordinates(required=True)
    parsed = pd.to_datetime(cl.df["_time_raw"].str.strip(), format="ISO8601", utc=True, errors="coerce")
    cl.times(parsed, "_time_raw")
    cl.reject(cl.df["_tz"].isna() | (cl.df["_tz"].abs() > 14 * 60), "missing or impossible timezone offset")
    df = cl.df
    df[C.TZ_OFFSET] = df["_tz"].astype(int)
    return df.drop(columns=["_time_raw", "_tz"])


_OFFSET_RE = r"(?:(Z)|([+-])(\d{2}):?(\d{2}))$"


def _parse_generic_times(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 strings (offset kept for local time; naive means UTC) or epoch seconds."""
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
    return ts, offset


def _parse_events(raw: pd.DataFrame, rejections: list[Rejection]) -> pd.DataFrame:
    """Naive times are UTC; a ``tz`` (IANA name) or ``tz_offset_min`` column sets local time."""

    def col(name: str) -> pd.Series:
        return _blank_to_na(raw[name]) if name in raw else pd.Series([None] * len(raw), index=raw.index)

    df = pd.DataFrame(
        {
            LINE: raw[LINE],
            C.EVENT_ID: col("event_id"),
            C.USER: col("user_id"),
            C.ITEM: col("item_id"),
            C.KIND: col("kind").fillna("checkin").astype(str).str.strip().str.lower(),
            C.LAT: _numeric(col("lat")),
            C.LON: _numeric(col("lon")),
            C.TEXT: col("text"),
            C.RATING: _numeric(col("rating")),
            C.ITEM_NAME: col("item_name"),
            C.CATEGORY: col("category"),
            "_time_raw": raw["timestamp"],
            "_tz": col("tz"),
            "_tz_off": _numeric(col("tz_offset_min")),
        }
    )
    cl = _Cleaner(df, rejections)
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
    ts, offset = _parse_generic_times(cl.df["_time_raw"])
    cl.times(ts, "_time_raw")
    df = cl.df
    offset = offset.reindex(df.index)
    df[C.TZ_OFFSET] = offset.astype(int)
    explicit = df["_tz_off"].notna()
    df.loc[explicit, C.TZ_OFFSET] = df.loc[explicit, "_tz_off"].astype(int)
    zoned = df["_tz"].notna() & ~explicit
    bad_zone = pd.Series("", index=df.index)
    for name, idx in df[zoned].groupby("_tz").groups.items():
        try:
            df.loc[idx, C.TZ_OFFSET] = _offsets_for_zone(df.loc[idx, C.TIME], str(name))
        except Exception:  # unknown zone name: reject those rows, keep the rest
            bad_zone[idx] = f"unknown time zone {name!r}"
    cl.df = df
    cl.reject(bad_zone != "", bad_zone)
    df = cl.df
    return df.drop(columns=["_time_raw", "_tz", "_tz_off"])


def _frame_from_rows(header: list[str], rows: list[list[str]], lines: list[int]) -> pd.DataFrame:
    raw = pd.DataFrame(rows, columns=header, dtype="object")
    raw[LINE] = lines
    return raw


def _read_jsonl(text: str) -> tuple[pd.DataFrame, list[Rejection]]:
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
    raw = _records_frame(records, lines)
    return raw, rejections


def _records_frame(records: Iterable[dict[str, Any]], lines: Sequence[int]) -> pd.DataFrame:
    cols = [*EVENTS_REQUIRED, *EVENTS_OPTIONAL]
    raw = pd.DataFrame([{k: r.get(k) for k in cols} for r in records], columns=cols, dtype="object")
    raw[LINE] = list(lines)
    return raw


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
    raw = _records_frame(good, positions)
    df = _parse_events(raw, rejections)
    return _finish(df, rejections)


def parse_file(
    path: Path, fmt: str | None = None, zone: str = "America/New_York"
) -> tuple[pd.DataFrame, list[Rejection], int, list[Rejection], str]:
    """Parse and clean a file. Returns (frame, rejections, rows_read, duplicates dropped, format).

    Raises InvalidInputError for a file that cannot be read at all (empty, binary, wrong columns);
    row-level problems become rejections instead."""
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    text = _read_text(path)
    is_jsonl = path.suffix.lower() in {".jsonl", ".ndjson"} or text.lstrip().startswith("{")
    if is_jsonl:
        if fmt not in (None, "events"):
            raise InvalidInputError(f"{path}: JSON Lines input is only supported for the events format")
        raw, rejections = _read_jsonl(text)
        fmt = "events"
        n_read = len(raw) + len(rejections)
    else:
        header, rows, lines, rejections = _read_csv_rows(text)
        detected = detect_format(header) if fmt is None else fmt
        required = {
            "foursquare": FOURSQUARE_REQUIRED,
            "getnext": GETNEXT_REQUIRED,
            "events": EVENTS_REQUIRED,
        }[detected]
        missing = [c for c in required if c not in header]
        if missing:
            raise InvalidInputError(
                f"{path}: the {detected} format needs columns {', '.join(missing)} (header: {header[:12]})"
            )
        fmt = detected
        raw = _frame_from_rows(header, rows, lines)
        n_read = len(rows) + len(rejections)
    if fmt == "foursquare":
        df = _parse_foursquare(raw, zone, rejections)
    elif fmt == "getnext":
        df = _parse_getnext(raw, rejections)
    else:
        df = _parse_events(raw, rejections)
    df, rejections, duplicates = _finish(df, rejections)
    return df, rejections, n_read, duplicates, fmt


def nan_to_none(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float | np.floating) and math.isnan(v):
        return None
    return v
