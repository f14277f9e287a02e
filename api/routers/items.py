"""The catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.deps import CurrentKey, SessionDep, State
from core.errors import NotFoundError
from core.models import Item

router = APIRouter(tags=["items"])


@router.get("/v1/catalog")
def catalog(state: State) -> dict[str, Any]:
    """What this deployment recommends, in words a page can use (public: no user data)."""
    domain = state.services.domain
    n = domain.nouns
    return {
        "domain": domain.name,
        "item": n.item,
        "items": n.items,
        "event": n.event,
        "events": n.events,
        "kind": n.kind,
        "kinds": n.kinds,
        "arguments": [a.name for a in domain.chat_args()],
        "invitation": domain.invitation,
        "n_kinds": len(state.services.retriever.catalog_kinds()),
    }


@router.get("/v1/items/{item_id}")
def get_item(item_id: str, key: CurrentKey, session: SessionDep) -> dict[str, Any]:
    it = session.get(Item, item_id)
    if it is None:
        raise NotFoundError(f"no item {item_id!r}")
    return {
        "item_id": it.id,
        "name": it.name,
        "category": it.category,
        "lat": it.lat,
        "lon": it.lon,
        "attributes": it.attributes,
    }


@router.get("/v1/items")
def list_items(
    key: CurrentKey,
    session: SessionDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**62, description="Items to skip (SQL integers end at 2^63)."),
    category: str | None = Query(None, max_length=120),
) -> dict[str, Any]:
    stmt = select(Item).order_by(Item.id).limit(limit).offset(offset)
    if category:
        stmt = stmt.where(Item.category == category)
    rows = session.scalars(stmt).all()
    return {
        "items": [{"item_id": i.id, "name": i.name, "category": i.category} for i in rows],
        "offset": offset,
    }
