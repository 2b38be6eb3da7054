"""API keys: random tokens shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Executable, and_, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, load_only, sessionmaker

from api.db import session_scope
from api.models import ApiKey, Job, utcnow
from api.repositories import ApiKeyRepository

KEY_PREFIX = "aml_"
LAST_USED_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(session: Session, owner: str) -> tuple[ApiKey, str]:
    """Create a key for ``owner``: its row and the key itself, which is never stored (only its
    hash is) and so can be shown only this once."""
    owner = owner.strip()
    if not owner or len(owner) > 100:
        raise ValueError("the owner must be 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(owner=owner, key_hash=hash_key(key), prefix=key[:12])
    session.add(row)
    session.flush()
    return row, key


def create_api_key(session: Session, owner: str) -> str:
    """Create a key for ``owner`` and return it; only its hash is stored."""
    return new_api_key(session, owner)[1]


def matches(stored_hash: str, key: str) -> bool:
    """Whether ``key`` is the key whose hash is ``stored_hash``, compared in constant time.

    Keys are looked up by their sha256 hash first (an indexed equality in the database, whose
    timing may depend on how many leading characters match). That does not leak the key: the
    key itself is never compared, only the hash of what the client sent, so timing could at
    most reveal leading characters of a stored *hash* — and even a whole hash is useless, since
    a request must present a string whose sha256 it is (sha256 is preimage resistant; the key
    holds 256 random bits). The final decision is made here, never by ``==`` on a secret.
    """
    return hmac.compare_digest(stored_hash.encode(), hash_key(key).encode())


def find_key(session: Session, key: str) -> ApiKey | None:
    """The valid (not revoked) key row for ``key``, or None."""
    row = ApiKeyRepository(session).find_active(hash_key(key))
    return row if row is not None and matches(row.key_hash, key) else None


@dataclass(frozen=True)
class KeyUse:
    """A valid key's owner, and what :func:`note_use` needs to record its use."""

    key_id: int
    owner: str
    last_used_at: datetime | None


# The statements every request runs, built once with their values bound at execution:
# building an ORM statement and its cache key cost more CPU than running it (0.42 of 0.77 ms
# for the key-and-job lookup on PostgreSQL)
_KEY_COLUMNS = (ApiKey.id, ApiKey.owner, ApiKey.key_hash, ApiKey.last_used_at)
_VALID_KEY = (ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked.is_(False))
_KEY = select(*_KEY_COLUMNS).where(*_VALID_KEY)


def _key_and_job(whole: bool) -> Executable:
    q = (
        select(*_KEY_COLUMNS, Job)
        .select_from(ApiKey)
        .outerjoin(Job, and_(Job.id == bindparam("job_id"), Job.owner == ApiKey.owner))
        .where(*_VALID_KEY)
    )
    return q if whole else q.options(load_only(Job.id, Job.state, raiseload=True))


_KEY_AND_JOB = {whole: _key_and_job(whole) for whole in (False, True)}


def key_in_session(session: Session, key: str) -> KeyUse | None:
    """The valid (not revoked) key ``key`` as seen by ``session``'s transaction, or None. Read
    on every request, never cached: a revoked key is refused from the next request on."""
    row = session.execute(_KEY, {"key_hash": hash_key(key)}).first()
    if row is None or not matches(row.key_hash, key):
        return None
    return KeyUse(int(row.id), str(row.owner), row.last_used_at)


def key_and_job_in_session(
    session: Session, key: str, job_id: str, whole: bool = False
) -> tuple[KeyUse | None, Job | None]:
    """The valid key ``key`` and, in the same statement, the job ``job_id`` if its owner is
    the key's (None otherwise: no such job, or another owner's). The job is loaded whole with
    ``whole``, else its id and state only. One round trip where :func:`key_in_session` and a
    job lookup take two: the job-scoped reads a dashboard polls (a job, its iterations,
    candidates and events) start with both, and on a busy core each statement's own cost
    (SQLAlchemy's compile cache, the driver, the GIL) is a good part of a read's."""
    row = session.execute(
        _KEY_AND_JOB[whole], {"key_hash": hash_key(key), "job_id": job_id}
    ).first()
    if row is None or not matches(row.key_hash, key):
        return None, None
    return KeyUse(int(row.id), str(row.owner), row.last_used_at), row.Job


def note_use(factory: sessionmaker[Session], use: KeyUse) -> None:
    """Write the key's ``last_used_at``, at most once a minute, in a transaction of its own: a
    request never holds a write lock on the key for its duration (on SQLite that would block
    the controller's writes during a model download; on PostgreSQL every request with the same
    key would queue on one row)."""
    now = utcnow()
    last = use.last_used_at
    if last is not None and (now - (last if last.tzinfo else last.replace(tzinfo=UTC))) <= (
        LAST_USED_EVERY
    ):
        return
    try:
        with session_scope(factory) as s:
            s.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == use.key_id,
                    or_(
                        ApiKey.last_used_at.is_(None),
                        ApiKey.last_used_at < now - LAST_USED_EVERY,
                    ),
                )
                .values(last_used_at=now)
            )
    except OperationalError:  # bookkeeping only: a busy database must not refuse the call
        pass


def owner_for_key(factory: sessionmaker[Session], key: str) -> str | None:
    """The owner of a valid key (its lookup in a transaction of its own), its use noted."""
    with session_scope(factory) as s:
        use = key_in_session(s, key)
    if use is None:
        return None
    note_use(factory, use)
    return use.owner


def any_key_exists(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).limit(1)) is not None
