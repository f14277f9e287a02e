"""Batch ingest of events."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentKey, State
from api.schemas import EventsIn, EventsOut
from core.ingest import parse_records, write_events

router = APIRouter(tags=["ingest"])


@router.post("/v1/events", response_model=EventsOut)
def ingest_events(body: EventsIn, key: CurrentKey, state: State) -> EventsOut:
    """Batch ingest (admin). Idempotent by event id; each bad event is reported by its position."""
    key.require_admin()
    df, rejections, dups = parse_records(body.events)
    inserted, present, _, _ = write_events(state.factory, df, source="api")
    if inserted:
        state.serve_new_events(df["user_id"].astype(str))
    errs = [{"index": r.line - 1, "reason": r.reason} for r in rejections]
    return EventsOut(inserted=inserted, already_present=present, duplicates=len(dups), errors=errs)
