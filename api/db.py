"""Engine and sessions. SQLite gets WAL, a busy timeout and foreign keys so the API can read
while the controller writes without "database is locked"."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# the read pool of a PostgreSQL engine (make_read_engine): the reads in flight are bounded
# before they reach it (max_reads_in_flight per process), so this is rarely all in use
READ_POOL_SIZE = 5
READ_POOL_OVERFLOW = 15

T = TypeVar("T")


def _json_loads(text: str | bytes) -> Any:
    """JSON columns as the standard library reads them, decoded by orjson (several times
    faster: decoding the jobs' specs was ~7% of a read's CPU). ``json.dumps`` writes NaN and
    Infinity, which orjson refuses: such a value falls back to ``json.loads``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, pool_timeout_s: float = 30.0) -> Engine:
    """``pool_timeout_s``: how long a session waits for a pooled connection when all are in
    use (the API answers 503 then)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_timeout=pool_timeout_s,
            json_deserializer=_json_loads,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=pool_timeout_s,
        json_deserializer=_json_loads,
    )


def make_read_engine(engine: Engine, pool_timeout_s: float = 30.0) -> Engine:
    """The engine of the polled reads (``api.deps.read_in_one_step``).

    SQLite: ``engine`` itself (a read's transaction there is one snapshot of the database).
    PostgreSQL: a pool of its own, in autocommit and without the pre-ping, which saves three
    of a read's five round trips to the server (the ping, BEGIN and COMMIT). What a read sees
    does not change: at PostgreSQL's default isolation (READ COMMITTED) each statement of a
    transaction sees its own snapshot anyway. Without the ping a pooled connection that the
    server closed (it restarted) is found by the read itself: ``retry_on_disconnect`` runs such
    a read again, once, on a fresh connection (the pool drops every connection older than the
    failure). The writes keep ``engine``, with its ping: a write is never the one to find a
    dead connection, so a restart of the server costs a running job nothing.
    """
    if engine.dialect.name != "postgresql":
        return engine
    return create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=READ_POOL_SIZE,
        max_overflow=READ_POOL_OVERFLOW,
        pool_timeout=pool_timeout_s,
        json_deserializer=_json_loads,
    )


def retry_on_disconnect(read: Callable[[], T]) -> T:
    """``read()``, run once more when it failed on a connection the database had closed
    (``DBAPIError.connection_invalidated``). Only for work that writes nothing: a write that
    failed so may or may not have committed."""
    try:
        return read()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning(
            "a read found its pooled connection closed by the database (did it restart?); "
            "reading again on a new connection"
        )
        return read()


def make_session_factory(
    engine: Engine, info: dict[str, Any] | None = None
) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``info`` is copied into every session's ``Session.info`` (the
    app puts its per-owner quota limits there, see ``api.services.quotas``)."""
    return sessionmaker(engine, expire_on_commit=False, info=info)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A short transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _on_outcome(
    session: Session,
    on_commit: Callable[[], None] | None,
    on_rollback: Callable[[], None] | None,
) -> None:
    """Run one of two actions when the session's current transaction ends, whichever way."""
    done = False

    def committed(_session: Session) -> None:
        nonlocal done
        if not done:
            done = True
            if on_commit is not None:
                on_commit()

    def rolled_back(_session: Session) -> None:
        nonlocal done
        if not done:
            done = True
            if on_rollback is not None:
                on_rollback()

    event.listen(session, "after_commit", committed)
    event.listen(session, "after_rollback", rolled_back)


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once this session's transaction has committed (never if it rolls back).

    Files that a deleted row owned are removed this way: a failed commit keeps the row and its
    files together instead of leaving a row whose files are gone.
    """
    _on_outcome(session, action, None)


def after_rollback(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` if this session's transaction rolls back (never once it has committed).

    A file written for a new row is removed this way when the row does not make it, so a failed
    commit leaves no orphan file.
    """
    _on_outcome(session, None, action)
