"""FastAPI dependencies, all in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.artifacts import ArtifactStore
from api.auth import KeyUse, key_and_job_in_session, key_in_session, note_use, owner_for_key
from api.db import retry_on_disconnect, session_scope
from api.errors import NotFoundError, UnauthorizedError
from api.metrics import Metrics
from api.models import Job
from api.repositories import ApiKeyRepository
from api.settings import Settings
from api.web.session import SESSION_COOKIE, SessionCodec, SignInRequiredError, load_secret


@dataclass
class AppState:
    settings: Settings
    factory: sessionmaker[Session]
    store: ArtifactStore
    metrics: Metrics
    # the polled reads' sessions (api.db.make_read_engine); ``factory`` when not given
    read_factory: sessionmaker[Session] | None = None

    def __post_init__(self) -> None:
        if self.read_factory is None:
            self.read_factory = self.factory


async def get_app_state(request: Request) -> AppState:
    # async: read in the event loop, no hop to a worker thread (every request needs it)
    state: AppState = request.app.state.automl
    return state


StateDep = Annotated[AppState, Depends(get_app_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with session_scope(state.factory) as session:
        yield session


# scope="function": the transaction commits when the route returns, before the response is
# sent, so a failed commit is an error response, never a success for work that was not saved;
# and no transaction stays open while a large response (a model download) streams.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _bearer(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header (401 when missing or malformed)."""
    if not authorization:
        raise UnauthorizedError("missing Authorization header; send 'Authorization: Bearer <key>'")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UnauthorizedError("the Authorization header must be 'Bearer <key>'")
    return key.strip()


UNKNOWN_KEY = "unknown or revoked API key"


def _owner_of(state: AppState, key: str) -> str:
    owner = owner_for_key(state.factory, key)
    if owner is None:
        raise UnauthorizedError(UNKNOWN_KEY)
    return owner


def current_owner(
    state: StateDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> str:
    return _owner_of(state, _bearer(authorization))


OwnerDep = Annotated[str, Depends(current_owner)]


async def bearer_key(
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> str:
    # async: the header's shape is checked in the event loop, before the route's parameters
    # (a call without a key is a 401 whatever else it sends, as with OwnerDep)
    return _bearer(authorization)


KeyDep = Annotated[str, Depends(bearer_key)]

T = TypeVar("T")


async def read_in_one_step(state: AppState, key: str, read: Callable[[str, Session], T]) -> T:
    """Check ``key`` and run ``read(owner, session)`` in one worker-thread step.

    A sync route with OwnerDep and SessionDep takes five trips between the event loop and the
    thread pool (the session opened, the key checked, the route, the session closed, the
    answer validated); under a burst each trip waits for the GIL and a core, several times per
    request. The reads that dashboards and scripts poll are ``async def`` routes (with KeyDep)
    that do their blocking part here, in one trip, and FastAPI validates their answer in the
    event loop. The rules are OwnerDep's and SessionDep's: the key is looked up on every
    request, and the transaction ends before the response is sent. The key is looked up in
    the read's own transaction (one connection checkout and one commit per read, not two; on
    PostgreSQL also one pool ping fewer); its use is noted after that transaction ends. On
    PostgreSQL the read runs on the read pool (``api.db.make_read_engine``: autocommit, no
    ping), and again once if its connection turns out closed by the server.
    """

    def checked(session: Session, seen: list[KeyUse]) -> T:
        use = key_in_session(session, key)
        if use is None:
            raise UnauthorizedError(UNKNOWN_KEY)
        seen.append(use)
        return read(use.owner, session)

    return await _in_one_step(state, checked)


async def read_job_in_one_step(
    state: AppState, key: str, job_id: str, read: Callable[[Job, Session], T], whole: bool = False
) -> T:
    """:func:`read_in_one_step` for a read about one job: the key and the job's ownership are
    checked by one statement (``api.auth.key_and_job_in_session``), then ``read(job,
    session)`` runs. An unknown or revoked key is a 401 whatever the job; a job that is not
    the key owner's is a 404. ``job`` is loaded whole with ``whole``, else its id and state
    only (reading another column raises)."""

    def checked(session: Session, seen: list[KeyUse]) -> T:
        use, job = key_and_job_in_session(session, key, job_id, whole)
        if use is None:
            raise UnauthorizedError(UNKNOWN_KEY)
        seen.append(use)
        if job is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return read(job, session)

    return await _in_one_step(state, checked)


async def _in_one_step(state: AppState, checked: Callable[[Session, list[KeyUse]], T]) -> T:
    """Run ``checked(session, seen)`` in one worker-thread step, in a read transaction (again
    once if its pooled connection was closed by the server). The valid key it appends to
    ``seen`` has its use noted after that transaction ends, whatever the read's outcome."""
    factory = state.read_factory or state.factory
    seen: list[KeyUse] = []

    def attempt() -> T:
        seen.clear()
        with session_scope(factory) as session:
            return checked(session, seen)

    def work() -> T:
        try:
            return retry_on_disconnect(attempt)
        finally:
            if seen:
                note_use(state.factory, seen[-1])

    return await run_in_threadpool(work)


# ---- the dashboard: a session cookie instead of the Authorization header -------------------
def get_session_codec(request: Request, state: StateDep) -> SessionCodec:
    """The signer of dashboard sessions, made once per app (its secret is a file)."""
    codec: SessionCodec | None = getattr(request.app.state, "session_codec", None)
    if codec is None:
        codec = SessionCodec(load_secret(state.settings.artifact_dir))
        request.app.state.session_codec = codec
    return codec


CodecDep = Annotated[SessionCodec, Depends(get_session_codec)]


def session_owner(request: Request, state: StateDep, codec: CodecDep) -> str | None:
    """The owner a valid session cookie speaks for (its API key must still be valid)."""
    web = codec.verify(request.cookies.get(SESSION_COOKIE))
    if web is None:
        return None
    with session_scope(state.factory) as s:
        return ApiKeyRepository(s).active_owner(web.key_id)


def current_session_owner(
    owner: Annotated[str | None, Depends(session_owner)],
) -> str:
    """The owner of a dashboard page; pages without a session send the browser to sign in."""
    if owner is None:
        raise SignInRequiredError("sign in with an API key to use the dashboard")
    return owner


SessionOwnerDep = Annotated[str, Depends(current_session_owner)]


def current_reader(
    request: Request,
    state: StateDep,
    codec: CodecDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> str:
    """Bearer key, or — for reads only — the dashboard's session cookie: the plot data, the
    CSV export and the event streams serve scripts and the dashboard's own pages alike. A
    cookie never authorises a write (no CSRF token travels with these requests)."""
    if authorization or request.method not in ("GET", "HEAD"):
        return current_owner(state, authorization)
    owner = session_owner(request, state, codec)
    if owner is None:
        raise UnauthorizedError(
            "missing Authorization header; send 'Authorization: Bearer <key>' "
            "(or sign in to the dashboard)"
        )
    return owner


ReaderDep = Annotated[str, Depends(current_reader)]
