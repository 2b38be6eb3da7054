"""AdmissionLimit: at most N requests of a process handled at once, admitted in arrival order,
each slot freed as its answer starts (a stream does not keep it) or when the app fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.admission import UPLOAD_MIN_BYTES, AdmissionLimit, is_upload


class _App:
    """An ASGI app whose requests wait until the test lets them answer; it records how many
    run at once and in which order they started."""

    def __init__(self, stream: bool = False, fail: bool = False) -> None:
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.go: dict[int, asyncio.Event] = {}
        self.stream = stream
        self.fail = fail

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        n = scope["n"]
        self.started.append(n)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.go.setdefault(n, asyncio.Event()).wait()
            if self.fail:
                raise RuntimeError("the route failed")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if self.stream:  # an event stream: open long after its answer started
                await asyncio.Event().wait()
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.running -= 1


def _request(
    limit_app: AdmissionLimit,
    n: int,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> asyncio.Task[None]:
    async def noop(_message: Any = None) -> Any:
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "path": "/api/v1/jobs",
        "method": method,
        "n": n,
        "headers": headers or [],
    }
    return asyncio.ensure_future(limit_app(scope, noop, noop))


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_at_most_the_limit_run_at_once_first_come_first_served() -> None:
    async def scenario() -> None:
        app = _App()
        limited = AdmissionLimit(app, limit=2)  # type: ignore[arg-type]
        tasks = [_request(limited, n) for n in range(6)]
        await _settle()
        assert app.started == [0, 1] and app.running == 2  # the rest wait at the door
        for n in range(6):  # each answer lets the next in line start, in arrival order
            app.go.setdefault(n, asyncio.Event()).set()
            await _settle()
        await asyncio.gather(*tasks)
        assert app.started == list(range(6)) and app.most == 2

    asyncio.run(scenario())


def test_a_slot_is_freed_when_the_answer_starts_so_a_stream_does_not_keep_it() -> None:
    async def scenario() -> None:
        app = _App(stream=True)
        limited = AdmissionLimit(app, limit=1)  # type: ignore[arg-type]
        first, second = _request(limited, 0), _request(limited, 1)
        await _settle()
        assert app.started == [0]
        app.go.setdefault(0, asyncio.Event()).set()  # the stream starts answering, stays open
        await _settle()
        assert app.started == [0, 1] and app.running == 2
        first.cancel()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)

    asyncio.run(scenario())


def test_a_request_that_fails_frees_its_slot() -> None:
    async def scenario() -> None:
        app = _App(fail=True)
        limited = AdmissionLimit(app, limit=1)  # type: ignore[arg-type]
        first, second = _request(limited, 0), _request(limited, 1)
        await _settle()
        app.go.setdefault(0, asyncio.Event()).set()
        await _settle()
        with pytest.raises(RuntimeError):
            await first
        assert app.started == [0, 1]  # the next one got the slot
        app.go.setdefault(1, asyncio.Event()).set()
        with pytest.raises(RuntimeError):
            await second

    asyncio.run(scenario())


def test_an_app_served_again_in_another_event_loop_gets_fresh_slots() -> None:
    app = _App()
    limited = AdmissionLimit(app, limit=1)  # type: ignore[arg-type]

    async def two_in_a_row() -> None:
        first, second = _request(limited, 0), _request(limited, 1)
        await _settle()
        for n in (0, 1):
            app.go.setdefault(n, asyncio.Event()).set()
            await _settle()
        await asyncio.gather(first, second)
        app.go.clear()

    asyncio.run(two_in_a_row())  # contention binds the semaphore to this loop
    asyncio.run(two_in_a_row())  # a new loop (a second test client): no "bound to a
    # different event loop" error
    assert app.started == [0, 1, 0, 1]


def test_reads_have_slots_of_their_own_so_uploads_never_hold_a_reads_place() -> None:
    async def scenario() -> None:
        app = _App()
        limited = AdmissionLimit(app, limit=2, read_limit=1)  # type: ignore[arg-type]
        # two uploads whose bodies are still arriving take both of the other requests' slots
        uploads = [_request(limited, n, "POST") for n in (0, 1)]
        third_upload = _request(limited, 2, "PUT")
        reads = [_request(limited, 3, "GET"), _request(limited, 4, "HEAD")]
        await _settle()
        # the first read runs beside the uploads; the second read waits for the first only
        assert app.started == [0, 1, 3] and app.running == 3
        app.go.setdefault(3, asyncio.Event()).set()
        await _settle()
        assert app.started == [0, 1, 3, 4]  # the upload in line is still waiting
        app.go.setdefault(4, asyncio.Event()).set()
        await asyncio.gather(*reads)
        assert 2 not in app.started
        app.go.setdefault(0, asyncio.Event()).set()  # an upload ends: the next one starts
        await _settle()
        assert app.started == [0, 1, 3, 4, 2]
        for n in (1, 2):
            app.go.setdefault(n, asyncio.Event()).set()
        await asyncio.gather(*uploads, third_upload)
        assert app.most == 3

    asyncio.run(scenario())


def test_without_a_read_limit_reads_share_the_one_limit() -> None:
    async def scenario() -> None:
        app = _App()
        limited = AdmissionLimit(app, limit=1)  # type: ignore[arg-type]
        tasks = [_request(limited, 0, "POST"), _request(limited, 1, "GET")]
        await _settle()
        assert app.started == [0]
        for n in (0, 1):
            app.go.setdefault(n, asyncio.Event()).set()
            await _settle()
        await asyncio.gather(*tasks)
        assert app.started == [0, 1] and app.most == 1

    asyncio.run(scenario())


MULTIPART = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"900")]
JSON_BODY = [(b"content-type", b"application/json"), (b"content-length", b"120")]


def test_what_counts_as_an_upload() -> None:
    def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
        return {"type": "http", "method": "POST", "headers": list(headers)}

    assert is_upload(scope(*MULTIPART))  # a file form, whatever its size
    assert is_upload(scope((b"content-length", str(UPLOAD_MIN_BYTES + 1).encode())))
    assert is_upload(scope((b"transfer-encoding", b"chunked")))  # length unknown
    assert is_upload(scope((b"content-length", b"many")))  # unreadable: the cautious side
    assert not is_upload(scope(*JSON_BODY))  # a job submission
    assert not is_upload(scope((b"content-length", str(UPLOAD_MIN_BYTES).encode())))
    assert not is_upload(scope())  # no body (a cancel)


def test_uploads_have_slots_of_their_own_so_they_never_hold_a_submissions_place() -> None:
    async def scenario() -> None:
        app = _App()
        limited = AdmissionLimit(app, limit=1, read_limit=1, upload_limit=2)  # type: ignore[arg-type]
        # two uploads whose bodies are still arriving take both upload slots; a third waits
        uploads = [_request(limited, n, "POST", MULTIPART) for n in (0, 1, 2)]
        submissions = [_request(limited, n, "POST", JSON_BODY) for n in (3, 4)]
        read = _request(limited, 5, "GET")
        await _settle()
        # a submission and a read run beside the uploads; the second submission waits for
        # the first, not for an upload
        assert app.started == [0, 1, 3, 5] and app.running == 4
        app.go.setdefault(3, asyncio.Event()).set()
        await _settle()
        assert app.started == [0, 1, 3, 5, 4]
        app.go.setdefault(0, asyncio.Event()).set()  # an upload ends: the one in line starts
        await _settle()
        assert app.started == [0, 1, 3, 5, 4, 2]
        for n in (1, 2, 4, 5):
            app.go.setdefault(n, asyncio.Event()).set()
        await asyncio.gather(*uploads, *submissions, read)
        assert app.most == 4

    asyncio.run(scenario())
