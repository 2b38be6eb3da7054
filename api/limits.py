"""The upload size limit, enforced while the request arrives.

FastAPI parses a multipart form (spooling its files to disk) before a route runs, so a limit
checked in the route only acts once the whole upload is on the server's disk. This ASGI
middleware acts first: it refuses at once a request whose Content-Length is over the limit, and
counts the body as it streams (chunked uploads have no Content-Length), answering 413 as soon as
the count passes the limit. The route's service still checks the file's exact size; the limit
here allows ``MULTIPART_ALLOWANCE`` bytes more for the form's boundaries, part headers and its
small fields (label, task, name).

Starlette 1.x has a ``RequestBodyLimitMiddleware`` (``max_body_size``), but it answers with plain
text through private exceptions; this one answers with the app's JSON error shape and the field
``file``, as the service's own check does.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLargeError

MULTIPART_ALLOWANCE = 64 * 1024
UPLOAD_PATHS = frozenset({"/api/v1/datasets"})


def too_large_message(max_bytes: int) -> str:
    """The one sentence for an upload over the limit (the service's check uses it too)."""
    return (
        f"the file is larger than the {max_bytes / (1024 * 1024):g} MB upload limit "
        "(AUTOML_MAX_UPLOAD_MB)"
    )


class _UploadTooLarge(Exception):
    """Raised into the app's body reading once the count passes the limit."""


class UploadLimitMiddleware:
    """Refuse an upload to ``paths`` over ``max_upload_bytes`` (+ multipart overhead) early.

    Args:
        app: The ASGI app it wraps.
        max_upload_bytes: The file size limit (``Settings.max_upload_bytes``).
        paths: Request paths (without the root path) of the upload routes; POST only.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_upload_bytes: int,
        paths: frozenset[str] = UPLOAD_PATHS,
    ) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.limit = max_upload_bytes + MULTIPART_ALLOWANCE
        self.paths = paths

    def _response(self) -> JSONResponse:
        error = PayloadTooLargeError(too_large_message(self.max_upload_bytes), field="file")
        # No "Connection: close": uvicorn then reads and drops the rest of the body, so a client
        # still sending gets this answer; closing at once could reset the connection under it.
        return JSONResponse(error.body(), status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")).rstrip("/")
        if path not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            # answered before reading: a client that sent "Expect: 100-continue" sends nothing
            await self._response()(scope, receive, send)
            return

        received = 0
        tripped = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    tripped = True
                    raise _UploadTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped and not started:
                return  # the app's answer to the aborted read (FastAPI makes it a 400): ours wins
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not tripped or started:
                raise
        if tripped and not started:
            await self._response()(scope, receive, send)
