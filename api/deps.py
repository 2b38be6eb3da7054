"""FastAPI dependencies, all in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker

from api.artifacts import ArtifactStore
from api.auth import owner_for_key
from api.db import session_scope
from api.errors import UnauthorizedError
from api.metrics import Metrics
from api.settings import Settings


@dataclass
class AppState:
    settings: Settings
    factory: sessionmaker[Session]
    store: ArtifactStore
    metrics: Metrics


def get_app_state(request: Request) -> AppState:
    state: AppState = request.app.state.automl
    return state


StateDep = Annotated[AppState, Depends(get_app_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with session_scope(state.factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_owner(
    session: SessionDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> str:
    if not authorization:
        raise UnauthorizedError("missing Authorization header; send 'Authorization: Bearer <key>'")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UnauthorizedError("the Authorization header must be 'Bearer <key>'")
    owner = owner_for_key(session, key.strip())
    if owner is None:
        raise UnauthorizedError("unknown or revoked API key")
    return owner


OwnerDep = Annotated[str, Depends(current_owner)]
