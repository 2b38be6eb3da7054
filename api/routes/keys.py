"""The caller's own API keys: list, create another, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import OwnerDep, SessionDep
from api.schemas import ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from api.services.keys import ApiKeyService

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

# ids past the databases' 32-bit integer column would be a 500 on PostgreSQL; a 422 instead
MAX_KEY_ID = 2**31 - 1


@router.get("", response_model=ApiKeysPublic)
def list_keys(owner: OwnerDep, session: SessionDep) -> ApiKeysPublic:
    """The caller's keys (revoked ones too): prefix and timestamps, never a key or its hash."""
    rows = ApiKeyService(session).list(owner)
    return ApiKeysPublic(data=[ApiKeyPublic.model_validate(r) for r in rows], count=len(rows))


@router.post("", status_code=201, response_model=ApiKeyCreated)
def create_key(owner: OwnerDep, session: SessionDep) -> ApiKeyCreated:
    """Another key for the caller's owner; ``key`` is in this response only."""
    row, key = ApiKeyService(session).create(owner)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.delete("/{key_id}", status_code=204)
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_KEY_ID)], owner: OwnerDep, session: SessionDep
) -> Response:
    """Revoke one of the caller's keys (the one sending this request too): the next request
    with it is a 401, and its dashboard sessions end."""
    ApiKeyService(session).revoke(owner, key_id)
    return Response(status_code=204)
