"""Writes a normalised events frame into the store in atomic batches.

Each batch (its users, items and events) is one transaction: a crash leaves whole batches or
nothing of a batch, and re-running the same file completes it without writing anything twice
(event ids are deterministic; inserts skip ids already stored).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.catalog_meta import record_meta
from core.ingest.formats import GENERIC, Formats, Parsed
from core.ingest.reading import ATTRS, nan_to_none
from core.ingest.report import IngestReport
from core.models import Event, Item, User
from core.state_changes import record_change

BATCH_ROWS = 20_000
IN_CHUNK = 5_000  # ids per IN (...) look-up; below SQLite's and PostgreSQL's parameter limits


def _insert(session: Session, table: Any) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ingest supports SQLite and PostgreSQL, not {name}")


def _existing(session: Session, column: Any, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), IN_CHUNK):
        chunk = list(ids[i : i + IN_CHUNK])
        found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def _records(df: pd.DataFrame, cols: Iterable[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = df[list(cols)].astype("object").to_dict("records")  # type: ignore[assignment]
    for rec in out:
        for k, v in rec.items():
            rec[k] = nan_to_none(v)
    return out


def _write_batch(session: Session, df: pd.DataFrame, source: str | None) -> tuple[int, int, int, int]:
    """Returns (events inserted, events already present, users added, items added)."""
    user_ids = df[C.USER].astype(str).unique().tolist()
    known_users = _existing(session, User.id, user_ids)
    new_users = [u for u in user_ids if u not in known_users]
    if new_users:
        session.execute(
            _insert(session, User.__table__).on_conflict_do_nothing(),
            [{"id": u, "attributes": {}} for u in new_users],
        )

    items_added = 0
    with_item = df[df[C.ITEM].notna()]
    if len(with_item):
        first = with_item.groupby(C.ITEM, sort=False).agg(
            name=(C.ITEM_NAME, "first"),
            category=(C.CATEGORY, "first"),
            lat=(C.LAT, "median"),
            lon=(C.LON, "median"),
        )
        item_ids = first.index.astype(str).tolist()
        known = _existing(session, Item.id, item_ids)
        fresh = first[~first.index.isin(list(known))].reset_index(names="id")
        if len(fresh):
            recs = _records(fresh, ["id", "name", "category", "lat", "lon"])
            for r in recs:
                r["attributes"] = {}
            session.execute(_insert(session, Item.__table__).on_conflict_do_nothing(), recs)
            items_added = len(recs)
        # Fill what an earlier file did not know (e.g. a category) without overwriting what it did.
        old = first[first.index.isin(list(known)) & (first["category"].notna() | first["name"].notna())]
        if len(old):
            stored = {
                r.id: r
                for r in session.execute(
                    select(Item.id, Item.name, Item.category).where(Item.id.in_(old.index.tolist()))
                )
            }
            for iid, row in old.iterrows():
                s = stored.get(str(iid))
                if s is None:
                    continue
                upd: dict[Any, Any] = {}
                if s.category is None and row["category"] is not None:
                    upd["category"] = row["category"]
                if s.name is None and row["name"] is not None:
                    upd["name"] = row["name"]
                if upd:
                    session.query(Item).filter(Item.id == str(iid)).update(upd)

    ids = df[C.EVENT_ID].astype(str).tolist()
    present = _existing(session, Event.id, ids)
    new = df[~df[C.EVENT_ID].isin(list(present))]
    if len(new):
        recs = _records(
            new, [C.EVENT_ID, C.USER, C.ITEM, C.KIND, C.TZ_OFFSET, C.LAT, C.LON, C.TEXT, C.RATING]
        )
        times = new[C.TIME].dt.to_pydatetime()
        attrs = new[ATTRS].tolist()
        for rec, t, a in zip(recs, times, attrs, strict=True):
            rec["id"] = rec.pop(C.EVENT_ID)
            rec["ts"] = t
            rec["source"] = source
            rec["attributes"] = a if isinstance(a, dict) else None
        session.execute(_insert(session, Event.__table__).on_conflict_do_nothing(), recs)
        record_change(session, "events", new[C.USER].astype(str).unique())
    return len(new), len(present), len(new_users), items_added


def write_events(
    factory: sessionmaker[Session],
    df: pd.DataFrame,
    *,
    source: str | None = None,
    batch_rows: int = BATCH_ROWS,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[int, int, int, int]:
    """Write a normalised frame (from ``parse_file``/``parse_records``) in atomic batches.

    Returns totals (inserted, already present, users added, items added)."""
    totals = [0, 0, 0, 0]
    for start in range(0, len(df), batch_rows):
        batch = df.iloc[start : start + batch_rows]
        session = factory()
        try:
            counts = _write_batch(session, batch, source)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        if on_batch:
            on_batch(len(batch))
    return totals[0], totals[1], totals[2], totals[3]


def write_items(factory: sessionmaker[Session], items: pd.DataFrame, batch_rows: int = BATCH_ROWS) -> int:
    """Catalog rows (core.ingest.formats.ITEM_COLUMNS) not stored yet; returns how many were added.
    What an earlier load knew of an item is kept."""
    added = 0
    items = items.drop_duplicates("item_id")
    for start in range(0, len(items), batch_rows):
        batch = items.iloc[start : start + batch_rows]
        with factory() as session:
            known = _existing(session, Item.id, batch["item_id"].astype(str).tolist())
            fresh = batch[~batch["item_id"].astype(str).isin(list(known))]
            if len(fresh):
                recs = _records(fresh, ["item_id", "name", "category", "lat", "lon"])
                for r, a in zip(recs, fresh["attributes"], strict=True):
                    r["id"] = str(r.pop("item_id"))
                    r["attributes"] = a if isinstance(a, dict) else {}
                session.execute(_insert(session, Item.__table__).on_conflict_do_nothing(), recs)
                session.commit()
                added += len(recs)
    return added


def ingest_file(
    path: Path,
    factory: sessionmaker[Session],
    *,
    formats: Formats = GENERIC,
    fmt: str | None = None,
    zone: str | None = None,
    batch_rows: int = BATCH_ROWS,
    on_parsed: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> IngestReport:
    """Parse, clean and store a file (or a folder format's folder). Bad rows are reported, good
    rows stored exactly once. Input that cannot be read at all, or whose catalog is of another
    domain than the store's, is refused before anything is written."""
    t0 = time.perf_counter()
    parsed = formats.parse(Path(path), fmt, zone)
    if on_parsed:
        on_parsed(len(parsed.events))
    report = IngestReport(
        path=str(path), format=parsed.format, rows_read=parsed.rows_read, rows_valid=len(parsed.events)
    )
    report.rejections = parsed.rejections
    report.duplicates = parsed.duplicates
    report.warnings = list(parsed.warnings)
    _record_catalog(factory, parsed)
    if parsed.items is not None and len(parsed.items):
        report.items_added += write_items(factory, parsed.items, batch_rows)
    source = f"file:{parsed.format}:{Path(path).name}"[:64]
    ins, present, users, items = write_events(
        factory, parsed.events, source=source, batch_rows=batch_rows, on_batch=on_batch
    )
    report.inserted, report.already_present, report.users_added = ins, present, users
    report.items_added += items
    report.seconds = time.perf_counter() - t0
    return report


def _record_catalog(factory: sessionmaker[Session], parsed: Parsed) -> None:
    """What the data says the catalog is; a conflict with the store refuses the whole file."""
    if not parsed.meta or not (len(parsed.events) or (parsed.items is not None and len(parsed.items))):
        return
    with factory() as session:
        record_meta(session, parsed.meta)
        session.commit()
