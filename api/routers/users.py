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
    """The mined profile: ``text`` as the person reads it (areas and places named for them),
    ``text_raw`` and the facts as mined (with the miner's area and place ids, for support staff)."""
    from retrieval.profile_store import latest_profile, profile_versions

    key.require_read(user_id)
    p = latest_profile(session, user_id)
    if p is None:
        if session.get(User, user_id) is None:
            raise NotFoundError(f"no user {user_id!r}")
        raise NotFoundError(f"no profile for user {user_id!r} yet: run `chronotope mine`")
    return {
        **p.to_dict(),
        "text": state.service.readable_text(p),
        "text_raw": p.text,
        "versions": profile_versions(session, user_id),
        "plots": [f"/v1/users/{user_id}/profile/plots/{n}.png" for n in ("rhythm", "places")],
    }


@router.get("/v1/users/{user_id}/profile/plots/{name}.png")
def plot(user_id: str, name: str, key: CurrentKey, session: SessionDep) -> Response:
    from core.events_frame import events_frame
    from mining.plots import PLOTS, render_plot

    key.require_read(user_id)
    if name not in PLOTS:
        raise NotFoundError(f"no plot {name!r}; have {', '.join(PLOTS)}")
    df = events_frame(session, [user_id])
    if df.empty:
        raise NotFoundError(f"no events for user {user_id!r}")
    return Response(render_plot(name, df, user_id), media_type="image/png")


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
