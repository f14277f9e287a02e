"""API keys with roles. Keys are stored as SHA-256 hashes; the plain key is shown once.

- user: only their own data (profile, recommendations, conversations, feedback)
- support: read any user's profile, traces and conversations
- admin: everything, including ingest and deleting users
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import AuthError, ForbiddenError, InvalidInputError
from core.models import ApiKey, utcnow

ROLES = ("user", "support", "admin")
PREFIX = "ck_"


@dataclass(frozen=True)
class Principal:
    role: str
    user_id: str | None
    key_id: str

    def can_read(self, user_id: str) -> bool:
        return self.role in ("support", "admin") or self.user_id == user_id

    def require_read(self, user_id: str) -> None:
        if not self.can_read(user_id):
            raise ForbiddenError("this key may only access its own user's data")

    def require_act_as(self, user_id: str) -> None:
        """Acting for a user (recommend, chat, feedback): the user themself or an admin."""
        if not (self.role == "admin" or self.user_id == user_id):
            raise ForbiddenError("this key may only act for its own user")

    def require_admin(self) -> None:
        if self.role != "admin":
            raise ForbiddenError("admin key required")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, role: str, user_id: str | None = None) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
    if role == "user" and not user_id:
        raise InvalidInputError("a user key needs --user ID")
    key = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(key_hash=_hash(key), prefix=key[:10], role=role, user_id=user_id if role == "user" else None)
    )
    session.flush()
    return key


def authenticate(
    session: Session, authorization: str | None, bootstrap_admin: str | None = None
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
    key = authorization.split(None, 1)[1].strip()
    if bootstrap_admin and hmac.compare_digest(key, bootstrap_admin):
        return Principal("admin", None, "bootstrap")
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key)))
    if row is None or row.revoked_at is not None:
        raise AuthError("invalid or revoked API key")
    return Principal(row.role, row.user_id, row.id)


def revoke(session: Session, key_id: str) -> None:
    row = session.get(ApiKey, key_id)
    if row is not None:
        row.revoked_at = utcnow()
