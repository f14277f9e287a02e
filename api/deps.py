"""What routes need, as Annotated dependencies (tests swap parts with app.dependency_overrides)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from api.auth import Principal, authenticate


def get_state(request: Request) -> Any:
    return request.app.state.chronotope


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.chronotope.factory() as s:
        yield s


def get_principal(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    st = request.app.state.chronotope
    boot = st.settings.api.bootstrap_admin_key
    return authenticate(session, authorization, boot.get_secret_value() if boot else None)


State = Annotated[Any, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
CurrentKey = Annotated[Principal, Depends(get_principal)]
