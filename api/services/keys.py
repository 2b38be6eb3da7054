"""API keys of an owner: list, create, revoke. The key itself exists only in the response
that creates it; every list shows the prefix, never the key or its hash."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from api.auth import new_api_key
from api.errors import NotFoundError
from api.models import ApiKey
from api.repositories import ApiKeyRepository


class ApiKeyService:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.repo = ApiKeyRepository(session)

    def list(self, owner: str) -> Sequence[ApiKey]:
        return self.repo.list(owner)

    def create(self, owner: str) -> tuple[ApiKey, str]:
        """Another key for ``owner``: its row and the key, shown once."""
        return new_api_key(self.s, owner)

    def revoke(self, owner: str, key_id: int) -> ApiKey:
        """Revoke one of the owner's keys (the one making the request too); revoking a revoked
        key changes nothing. Another owner's key is not found, like their jobs."""
        row = self.repo.get(owner, key_id)
        if row is None:
            raise NotFoundError(f"API key {key_id} not found")
        self._revoke(row)
        return row

    # ---- the command line: an operator, for every owner ------------------------------------
    def list_all(self, owner: str | None = None) -> Sequence[ApiKey]:
        return self.repo.list(owner) if owner is not None else self.repo.list_all()

    def revoke_any(self, key_id: int) -> tuple[ApiKey, bool]:
        """Revoke any owner's key; also says whether it was valid until now."""
        row = self.repo.get_any(key_id)
        if row is None:
            raise NotFoundError(f"no API key with id {key_id}; `automl apikey list` shows the ids")
        return row, self._revoke(row)

    def _revoke(self, row: ApiKey) -> bool:
        if row.revoked:
            return False
        self.repo.revoke(row.id)
        self.s.refresh(row)
        return True
