"""Service errors: ``APIError(message, status_code)`` subclasses, turned into JSON by one handler.
Routes never build HTTPException by hand."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


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

    def headers(self) -> dict[str, str] | None:
        """Response headers the error needs (the one exception handler sends them)."""
        return None


class BadRequestError(APIError):
    status_code = 400


class UnauthorizedError(APIError):
    status_code = 401

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class NotFoundError(APIError):
    status_code = 404


class ConflictError(APIError):
    status_code = 409


class PayloadTooLargeError(APIError):
    status_code = 413


class UnprocessableError(APIError):
    status_code = 422


class TooManyRequestsError(APIError):
    """A per-owner quota is used up; ``retry_after_s`` says when to try again (sent as the
    ``Retry-After`` header and as ``retry_after_s`` in the body)."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int, field: str | None = None) -> None:
        self.retry_after_s = max(1, int(retry_after_s))
        super().__init__(message, field=field, retry_after_s=self.retry_after_s)

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


class ServiceUnavailableError(TooManyRequestsError):
    """The database cannot be reached right now (a restart, a failover, a locked SQLite file
    past its busy timeout): a 503 with ``Retry-After``, not a 500."""

    status_code = 503


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer automl; the service refuses to start."""


# ---- the errors in the OpenAPI document ---------------------------------------------------------
_ERROR_REF = {"$ref": "#/components/schemas/ErrorPublic"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def document_errors(app: FastAPI) -> None:
    """Declare the error body (``api.schemas.ErrorPublic``) for the 4xx answers of every
    ``/api/`` operation in the app's OpenAPI document.

    FastAPI documents only a route's success and a 422 of its own shape (``detail`` a list),
    while the exception handlers answer 401, 404, 409, 413, 422 and 429 with ``{detail: str,
    errors: [{field, message}]}``: without this, clients generated from the schema (and
    schema-based fuzzers) read every refusal as off-schema.
    """
    from api.schemas import ErrorPublic

    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()  # FastAPI caches it in app.openapi_schema: patched once, in place
        if not fresh:
            return schema
        models = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}")
        models.update(error.pop("$defs", {}))
        models["ErrorPublic"] = error
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses["401"] = _error_response("no API key, or an unknown or revoked one")
                if "{" in path:
                    responses["404"] = _error_response("no such resource of this key's owner")
                responses["422"] = _error_response("invalid input; errors name each field")
                responses["4XX"] = _error_response(
                    "another refusal (a conflict with the resource's state, an upload too "
                    "large, a quota used up, a body that cannot be parsed); detail says why"
                )
        if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):
            # FastAPI's own 422 shape, replaced everywhere: ValidationError is only its part
            models.pop("HTTPValidationError", None)
            models.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
