"""What routes need, as Annotated dependencies (tests swap parts with app.dependency_overrides)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from api.auth import Principal, authenticate
from api.state import AppState


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain ``def`` dependency in a thread, a hop per request for nothing
    state: AppState = request.app.state.chronotope
    return state


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.chronotope.factory() as s:
        yield s


async def get_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    # Its own short session, returned to the pool at once: sharing the request-long session kept one
    # connection per request checked out while the service opened another, which deadlocked the
    # pool under concurrent load (found by benchmarks/load_api.py). On the event loop, not in a
    # thread: one indexed look-up (none for the bootstrap key) costs less than the thread hop.
    st = request.app.state.chronotope
    boot = st.settings.api.bootstrap_admin_key
    with st.factory() as session:
        principal = authenticate(session, authorization, boot.get_secret_value() if boot else None)
    if st.limiter is not None:
        st.limiter.check(principal.key_id)  # 429 before any work is done
    return principal


State = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
CurrentKey = Annotated[Principal, Depends(get_principal)]
