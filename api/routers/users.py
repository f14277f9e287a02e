"""Profiles, their plots, the user list and deletion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from api.deps import CurrentKey, SessionDep, State
from core.errors import NotFoundError
from core.models import User

router = APIRouter(tags=["profiles"])


@router.get("/v1/users/{user_id}/profile")
def profile(user_id: str, key: CurrentKey, session: SessionDep, state: State) -> dict[str, Any]:
    """The mined profile: ``text`` as the person reads it (areas and items named for them),
    ``text_raw`` and the facts as mined (with the miner's ids, for support staff)."""
    key.require_read(user_id)
    return state.profiles.view(session, user_id)


@router.get("/v1/users/{user_id}/profile/plots/{name}.png")
def plot(user_id: str, name: str, key: CurrentKey, session: SessionDep, state: State) -> Response:
    key.require_read(user_id)
    return Response(state.profiles.plot(session, user_id, name), media_type="image/png")


@router.get("/v1/users", tags=["support"])
def users(key: CurrentKey, session: SessionDep, limit: int = Query(100, ge=1, le=2000)) -> dict[str, Any]:
    if key.role == "user":
        return {"users": [key.user_id]}
    return {"users": list(session.scalars(select(User.id).order_by(User.id).limit(limit)))}


@router.delete("/v1/users/{user_id}", tags=["privacy"])
def delete_user(user_id: str, key: CurrentKey, state: State, session: SessionDep) -> dict[str, Any]:
    """Delete a user and all their data (events, profiles, recommendations, conversations, keys)."""
    from core.models import ApiKey
    from core.state_changes import record_change

    key.require_admin()
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id!r}")
    for k in session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)):
        session.delete(k)
    session.delete(user)
    record_change(session, "user_deleted", [user_id])  # every worker stops serving them
    session.commit()
    state.user_deleted(user_id)
    return {"deleted": user_id}
