"""The one conversion from a request's time to the person's local clock.

A request's time is an instant (tz-aware; a naive time is taken as UTC). Whatever zone the caller
wrote it in ("2013-02-20T12:30:00+09:00"), the person's local wall-clock time is that instant in
UTC plus *their* offset from UTC (their latest event's): ranking, explanations and the chat all
read it through here, so the offset is applied once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def as_instant(t: datetime) -> datetime:
    """``t`` as a tz-aware UTC instant (a naive time is UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def local_time(t: datetime, utc_offset_min: int) -> datetime:
    """The person's local wall-clock time (naive) at the instant ``t``."""
    return as_instant(t).replace(tzinfo=None) + timedelta(minutes=int(utc_offset_min))


def from_local(local: datetime, utc_offset_min: int) -> datetime:
    """The UTC instant of a local wall-clock time (naive) of a person ``utc_offset_min`` from UTC."""
    return (local - timedelta(minutes=int(utc_offset_min))).replace(tzinfo=UTC)
