"""Reading and cleaning rows, shared by every ingest format: files as text, CSV rows with their line
numbers, JSON Lines, column cleaning that reports each rejected row with its line and reason, and
the final normalised frame (core.columns names, deterministic event ids, exact duplicates dropped).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from core.errors import InvalidInputError
from core.ingest.report import Rejection

MAX_FIELD_CHARS = 20_000  # one text field; a longer one is a broken line, not a review
MAX_ID_CHARS = 64  # the store's id columns
SNIFF_BYTES = 64 * 1024

# The normalised frame handed to the writer (core.columns names, plus the source line).
LINE = "_line"
ATTRS = "attributes"
NORMALISED = [*C.EVENT_COLUMNS, ATTRS, LINE]


def read_text(path: Path) -> str:
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


def read_csv_rows(text: str) -> tuple[list[str], list[list[str]], list[int], list[Rejection]]:
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


def blank_to_na(s: pd.Series) -> pd.Series:
    s = s.astype("object")
    return s.where(s.notna() & (s.astype(str).str.strip() != ""), None)


def numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(blank_to_na(s), errors="coerce").astype(float)


def event_ids(df: pd.DataFrame) -> pd.Series:
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


def offsets_for_zone(ts: pd.Series, zone: str) -> pd.Series:
    local = ts.dt.tz_convert(zone).dt.tz_localize(None)
    return ((local - ts.dt.tz_localize(None)).dt.total_seconds() // 60).astype(int)


class Cleaner:
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


def finish(
    df: pd.DataFrame, rejections: list[Rejection]
) -> tuple[pd.DataFrame, list[Rejection], list[Rejection]]:
    """Drop exact duplicate events (same id), report them apart, and order the columns."""
    if C.EVENT_ID not in df or df[C.EVENT_ID].isna().all():
        df[C.EVENT_ID] = event_ids(df)
    else:
        missing = df[C.EVENT_ID].isna()
        if missing.any():
            df.loc[missing, C.EVENT_ID] = event_ids(df[missing])
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


def frame_from_rows(header: list[str], rows: list[list[str]], lines: list[int]) -> pd.DataFrame:
    raw = pd.DataFrame(rows, columns=header, dtype="object")
    raw[LINE] = lines
    return raw


def nan_to_none(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float | np.floating) and math.isnan(v):
        return None
    return v
