"""Ingest formats: what each reads, how it is recognised, and the one ``parse_file`` over them.

``events`` (the generic format, CSV or JSON Lines) lives here; a domain package adds the formats
of its data sets (``domains/places``: foursquare, getnext; ``domains/films``: movielens) and the
command line passes the whole registry (``domains.formats()``). A format turns a file (or a folder)
into the normalised events frame, optional catalog rows (items known before anyone used them) and
what the data says about the catalog (its domain; whether times carry the person's zone).

Every row that cannot be used is reported with its line number and reason; the good rows go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from core import columns as C
from core.errors import InvalidInputError, UnknownFormatError
from core.ingest.events_format import EVENTS_REQUIRED, ZONED, parse_events, read_jsonl
from core.ingest.reading import finish, frame_from_rows, read_csv_rows, read_text
from core.ingest.report import Rejection

ITEM_COLUMNS = ["item_id", "name", "category", "lat", "lon", "attributes"]


@dataclass
class Parsed:
    events: pd.DataFrame  # normalised (core.ingest.reading.NORMALISED)
    rejections: list[Rejection]
    rows_read: int
    duplicates: list[Rejection]
    format: str
    items: pd.DataFrame | None = None  # catalog rows (ITEM_COLUMNS) beyond those events name
    meta: dict[str, str] = field(default_factory=dict)  # core.catalog_meta: domain, clock
    warnings: list[str] = field(default_factory=list)  # the data contradicts an assumption


class Format(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def required(self) -> tuple[str, ...]:
        """Header columns that identify a CSV format (empty: a folder format)."""
        ...

    def parse(self, path: Path, zone: str | None) -> Parsed: ...


class CsvFormat:
    """A format read from one CSV file: the rows become a raw frame (all text, with ``_line``),
    ``frame`` cleans them into events."""

    name = "csv"
    required: tuple[str, ...] = ()
    domain: str | None = None
    clock = "local"

    def frame(self, raw: pd.DataFrame, zone: str | None, rejections: list[Rejection]) -> pd.DataFrame:
        raise NotImplementedError

    def meta(self, events: pd.DataFrame) -> dict[str, str]:
        out = {"clock": self.clock}
        if self.domain:
            out["domain"] = self.domain
        return out

    def read_raw(self, path: Path) -> tuple[pd.DataFrame, list[Rejection], int]:
        """The raw rows (all text, with ``_line``), the malformed lines' rejections, rows read."""
        text = read_text(path)
        header, rows, lines, rejections = read_csv_rows(text)
        missing = [c for c in self.required if c not in header]
        if missing:
            raise InvalidInputError(
                f"{path}: the {self.name} format needs columns {', '.join(missing)} (header: {header[:12]})"
            )
        raw = frame_from_rows(header, rows, lines)
        return raw, rejections, len(rows) + len(rejections)  # malformed lines count as read

    def parse(self, path: Path, zone: str | None) -> Parsed:
        raw, rejections, n_read = self.read_raw(path)
        df = self.frame(raw, zone, rejections)
        df, rejections, duplicates = finish(df, rejections)
        return Parsed(df, rejections, n_read, duplicates, self.name, meta=self.meta(df))


class EventsFormat(CsvFormat):
    name = "events"
    required = EVENTS_REQUIRED

    def frame(self, raw: pd.DataFrame, zone: str | None, rejections: list[Rejection]) -> pd.DataFrame:
        return parse_events(raw, rejections)

    def meta(self, events: pd.DataFrame) -> dict[str, str]:
        # Located events are places; anything else is a catalog of items (a domain package may
        # know better: its own formats say so)
        located = events[C.LAT].notna().mean() if len(events) else 0.0
        return {"domain": "places" if located >= 0.5 else "items"}

    def read_raw(self, path: Path) -> tuple[pd.DataFrame, list[Rejection], int]:
        text = read_text(path)
        if path.suffix.lower() in {".jsonl", ".ndjson"} or text.lstrip().startswith("{"):
            raw, rejections = read_jsonl(text)
            return raw, rejections, len(raw) + len(rejections)
        return super().read_raw(path)

    def parse(self, path: Path, zone: str | None) -> Parsed:
        """The store's clock is UTC when no row's time carried a zone (profiles then word hours as
        UTC, not local time); rows without one among rows with one are a warning."""
        raw, rejections, n_read = self.read_raw(path)
        df = parse_events(raw, rejections)
        zoned = df[ZONED]
        df, rejections, duplicates = finish(df, rejections)
        meta = self.meta(df)
        warnings: list[str] = []
        if len(zoned):
            meta["clock"] = "local" if zoned.any() else "UTC"
        if zoned.any() and not zoned.all():
            warnings.append(
                f"{int((~zoned).sum()):,} of {len(zoned):,} rows give no time zone (no offset in the "
                "timestamp, no tz or tz_offset_min): their hours are taken as UTC, yet profiles word "
                "this store's hours as local time"
            )
        return Parsed(df, rejections, n_read, duplicates, self.name, meta=meta, warnings=warnings)


EVENTS = EventsFormat()


class Formats:
    """The formats a command line knows, in the order a header is matched against them."""

    def __init__(self, formats: Sequence[Format]) -> None:
        self.formats = list(formats)
        self.by_name = {f.name: f for f in self.formats}

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.formats]

    def detect(self, header: Sequence[str]) -> Format:
        cols = set(header)
        for f in self.formats:
            if f.required and set(f.required) <= cols:
                return f
        raise UnknownFormatError(
            f"cannot tell the format from the columns {sorted(cols)[:12]}; expected one of: "
            + ", ".join(f"{f.name} ({', '.join(f.required)})" for f in self.formats if f.required)
            + ". A folder format (e.g. movielens) is named with --format."
        )

    def get(self, name: str) -> Format:
        if name not in self.by_name:
            raise InvalidInputError(f"unknown format {name!r}; choose one of {', '.join(self.names)}")
        return self.by_name[name]

    def parse(self, path: Path, fmt: str | None = None, zone: str | None = None) -> Parsed:
        """Parse and clean a file (or a folder, for a folder format). Raises InvalidInputError
        for input that cannot be read at all (empty, binary, wrong columns, missing files);
        row-level problems become rejections instead."""
        path = Path(path)
        if fmt is not None:
            return self.get(fmt).parse(path, zone)
        if path.is_dir():
            raise InvalidInputError(
                f"{path} is a folder: name its format with --format ({', '.join(self.names)})"
            )
        text = read_text(path)
        if path.suffix.lower() in {".jsonl", ".ndjson"} or text.lstrip().startswith("{"):
            return EVENTS.parse(path, zone)
        header, _, _, _ = read_csv_rows(text.split("\n", 1)[0] + "\n")
        return self.detect(header).parse(path, zone)


GENERIC = Formats([EVENTS])
