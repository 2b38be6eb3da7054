"""API keys: random tokens shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.models import ApiKey, utcnow

KEY_PREFIX = "aml_"
LAST_USED_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, owner: str) -> str:
    """Create a key for ``owner`` and return it; only its hash is stored."""
    owner = owner.strip()
    if not owner or len(owner) > 100:
        raise ValueError("the owner must be 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(owner=owner, key_hash=hash_key(key), prefix=key[:12]))
    session.flush()
    return key


def owner_for_key(factory: sessionmaker[Session], key: str) -> str | None:
    """The owner of a valid key. Its ``last_used_at`` is written at most once a minute, in a
    transaction of its own: a request never holds a write lock on the key for its duration
    (on SQLite that would block the controller's writes during a model download; on PostgreSQL
    every request with the same key would queue on one row)."""
    with session_scope(factory) as s:
        row = s.execute(
            select(ApiKey.id, ApiKey.owner, ApiKey.last_used_at).where(
                ApiKey.key_hash == hash_key(key), ApiKey.revoked.is_(False)
            )
        ).first()
    if row is None:
        return None
    now = utcnow()
    last = row.last_used_at
    if (
        last is None
        or (now - (last if last.tzinfo else last.replace(tzinfo=UTC))) > LAST_USED_EVERY
    ):
        try:
            with session_scope(factory) as s:
                s.execute(
                    update(ApiKey)
                    .where(
                        ApiKey.id == row.id,
                        or_(
                            ApiKey.last_used_at.is_(None),
                            ApiKey.last_used_at < now - LAST_USED_EVERY,
                        ),
                    )
                    .values(last_used_at=now)
                )
        except OperationalError:  # bookkeeping only: a busy database must not refuse the call
            pass
    return str(row.owner)


def any_key_exists(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).limit(1)) is not None
