"""Service errors: ``APIError(message, status_code)`` subclasses, turned into JSON by one handler.
Routes never build HTTPException by hand."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message}
        if self.field:
            body["errors"] = [{"field": self.field, "message": self.message}]
        body.update(self.extra)
        return body


class BadRequestError(APIError):
    status_code = 400


class UnauthorizedError(APIError):
    status_code = 401


class NotFoundError(APIError):
    status_code = 404


class ConflictError(APIError):
    status_code = 409


class PayloadTooLargeError(APIError):
    status_code = 413


class UnprocessableError(APIError):
    status_code = 422


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer automl; the service refuses to start."""
