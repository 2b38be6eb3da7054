"""Admission control: at most N requests of a process past the door at once (reads, uploads
and the rest each with their own N), first come first served; the rest wait their turn in the
event loop."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

READS = frozenset({"GET", "HEAD"})
# a request body above this, or of unknown length (chunked), or multipart, is an upload
UPLOAD_MIN_BYTES = 64 * 1024


def is_upload(scope: Scope) -> bool:
    """Whether the request sends a file: a multipart form, a body of unknown length (chunked),
    or one over UPLOAD_MIN_BYTES. Its slot is held while the body arrives, for as long as the
    client takes to send it."""
    length = None
    for name, value in scope.get("headers", ()):
        if name == b"content-type" and value.lower().startswith(b"multipart/"):
            return True
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            return True
    if length is None:
        return False
    try:
        return int(length) > UPLOAD_MIN_BYTES
    except ValueError:
        return True


class AdmissionLimit:
    """At most ``limit`` HTTP requests of this process are being handled at once; more wait, in
    arrival order, before any of their work starts.

    A sync route's work runs in threads (its dependencies, the route, then the validation of
    its answer), each step waiting for a thread of anyio's pool (40). A request holds its
    database session's connection from its first query until its answer is validated and
    the session closes, so with more requests in flight than threads, the threads could all
    be waiting for connections held by requests waiting for a thread to finish (a deadlock
    that only the pool's timeout broke, with 503s). Below the thread count it cannot happen;
    and requests no longer race each other for the interpreter, so the slowest of a burst
    waits about as long as the average (FIFO) instead of several times longer.

    A slot is freed when the answer starts (its session is closed by then): a long download or
    an event stream does not hold one while it streams.

    With ``read_limit``, reads (GET and HEAD) have slots of their own, and with
    ``upload_limit`` uploads (``is_upload``) too: an upload holds its slot while its body
    arrives, so a few slow uploads could otherwise keep every read, or every job submission,
    of the process waiting. The other requests keep ``limit``; fewer of them at once contend
    less with the reads for the interpreter (README: the load benchmark with it at 4).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        read_limit: int | None = None,
        upload_limit: int | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.read_limit = read_limit
        self.upload_limit = upload_limit
        self._slots: asyncio.Semaphore | None = None
        self._read_slots: asyncio.Semaphore | None = None
        self._upload_slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            # made in the serving loop (an app served again, by a test client, gets a new one)
            self._slots, self._loop = asyncio.Semaphore(self.limit), loop
            if self.read_limit is not None:
                self._read_slots = asyncio.Semaphore(self.read_limit)
            if self.upload_limit is not None:
                self._upload_slots = asyncio.Semaphore(self.upload_limit)
        slots = self._slots
        if scope.get("method") in READS:
            if self._read_slots is not None:
                slots = self._read_slots
        elif self._upload_slots is not None and is_upload(scope):
            slots = self._upload_slots
        await slots.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_and_release(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            release()
