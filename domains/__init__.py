"""The domains the engine knows, their ingest formats, and which one a store holds.

``resolve`` picks the domain: the setting when it names one, else what ingest recorded in the
store (core.catalog_meta), else places when most items have coordinates, else plain items.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.catalog_meta import CLOCK, DOMAIN, read_meta
from core.errors import InvalidInputError
from core.ingest.formats import EVENTS, Formats
from core.models import Item
from domains.base import Domain

DOMAIN_NAMES = ("places", "films", "items")


def get_domain(name: str) -> Domain:
    if name == "places":
        from domains.places import PLACES

        return PLACES
    if name == "films":
        from domains.films import FILMS

        return FILMS
    if name == "items":
        return Domain()
    raise InvalidInputError(f"unknown domain {name!r}; choose one of {', '.join(DOMAIN_NAMES)}")


def formats() -> Formats:
    """Every ingest format: the generic events, then each domain's data-set formats."""
    from domains.films.formats import MOVIELENS
    from domains.places.formats import FOURSQUARE, GETNEXT

    return Formats([FOURSQUARE, GETNEXT, EVENTS, MOVIELENS])


def stored_domain(session: Session) -> tuple[str | None, str | None]:
    """(domain, clock) as ingest recorded them; the domain guessed from the items when not."""
    meta = read_meta(session)
    name = meta.get(DOMAIN)
    if name is None:
        total = session.scalar(select(func.count()).select_from(Item)) or 0
        located = session.scalar(select(func.count()).select_from(Item).where(Item.lat.is_not(None))) or 0
        name = None if not total else "places" if located * 2 >= total else "items"
    return name, meta.get(CLOCK)


def resolve(setting: str, session: Session | None) -> Domain:
    """The domain to serve: ``setting`` (auto, or a name), checked against the store's."""
    stored, _ = stored_domain(session) if session is not None else (None, None)
    if setting != "auto":
        if stored is not None and stored != setting:
            raise InvalidInputError(
                f"CHRONOTOPE_DOMAIN={setting} but this store holds a {stored} catalog; "
                "unset it or use another store"
            )
        return get_domain(setting)
    return get_domain(stored or "places")


def clock_of(session: Session) -> str:
    """ "UTC" when the data carried no time zone, else "local time"."""
    _, clock = stored_domain(session)
    return "UTC" if clock == "UTC" else "local time"
