"""What the store's catalog is: its domain and whether its times carry a zone (core.models.CatalogMeta).

Written by ingest (a format knows what it reads: check-ins are places, MovieLens ratings are films)
and read when serving starts, so every worker and job agrees on the domain without a setting.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInputError
from core.models import CatalogMeta

DOMAIN = "domain"
CLOCK = "clock"


def read_meta(session: Session) -> dict[str, str]:
    return dict(session.execute(select(CatalogMeta.key, CatalogMeta.value)).tuples().all())


def record_meta(session: Session, values: dict[str, str]) -> None:
    """Set what is not set yet; a different domain than the stored one is refused (one store holds
    one catalog: mixing films into places would serve neither)."""
    stored = read_meta(session)
    for key, value in values.items():
        if key not in stored:
            session.add(CatalogMeta(key=key, value=value))
        elif key == DOMAIN and stored[key] != value:
            raise InvalidInputError(
                f"this store holds a {stored[key]} catalog; {value} data needs its own "
                "(set CHRONOTOPE_DATA_DIR or CHRONOTOPE_DB_URL to another store)"
            )
