"""What routes need, as Annotated dependencies (tests swap parts with app.dependency_overrides)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from api.auth import Principal, authenticate
from api.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.chronotope
    return state


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.chronotope.factory() as s:
        yield s


def get_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    # Its own short session, returned to the pool at once: sharing the request-long session kept one
    # connection per request checked out while the service opened another, which deadlocked the
    # pool under concurrent load (found by benchmarks/load_api.py).
    st = request.app.state.chronotope
    boot = st.settings.api.bootstrap_admin_key
    with st.factory() as session:
        return authenticate(session, authorization, boot.get_secret_value() if boot else None)


State = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
CurrentKey = Annotated[Principal, Depends(get_principal)]
