"""API keys: random tokens shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import ApiKey, utcnow

KEY_PREFIX = "aml_"


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


def owner_for_key(session: Session, key: str) -> str | None:
    row = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked.is_(False))
    )
    if row is None:
        return None
    row.last_used_at = utcnow()
    return row.owner


def any_key_exists(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).limit(1)) is not None
