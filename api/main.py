"""The FastAPI application: API + controller in one process (``automl serve``)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from api.admission import AdmissionLimit
from api.artifacts import ArtifactStore
from api.auth import any_key_exists, create_api_key
from api.controller import Controller
from api.db import make_engine, make_read_engine, make_session_factory, session_scope
from api.deps import AppState
from api.errors import APIError, ServiceUnavailableError, document_errors
from api.heap import freeze_heap
from api.limits import UploadLimitMiddleware
from api.metrics import (
    DURATION_BUCKETS,
    FINAL_CANDIDATE_STATES,
    CandidateFigures,
    Metrics,
)
from api.migrate import upgrade
from api.repositories import CandidateRepository, JobRepository
from api.routes import datasets, health, history, jobs, keys, models
from api.services.quotas import QuotaLimits
from api.settings import Settings
from api.web.app import install_dashboard

log = logging.getLogger("automl.api")
# what a request refused for an unreachable database tells its client to wait
DB_RETRY_AFTER_S = 5


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "form"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "(request)"


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}


def _restore_signal_handlers(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


def _open_database(settings: Settings) -> tuple[Any, Any, ArtifactStore]:
    """Upgrade the schema; the engine, the session factory (carrying the per-owner quotas its
    services enforce) and the artifact store."""
    engine = make_engine(settings.database_url, settings.db_pool_timeout_s)
    before, after = upgrade(engine)
    if before != after:
        log.warning("database schema upgraded from %s to %s", before, after)
    factory = make_session_factory(engine, info=QuotaLimits.from_settings(settings).session_info())
    store = ArtifactStore(settings.artifact_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    return engine, factory, store


def _first_key(settings: Settings, factory: Any, announce: bool) -> None:
    """With no API key yet, create one for owner 'local' and (``announce``) print it once."""
    with session_scope(factory) as s:
        first_key = None if any_key_exists(s) else create_api_key(s, "local")
    if first_key and announce:
        base = f"http://{settings.host}:{settings.port}"
        print(
            "\nautoml: created the first API key (owner 'local'); it is shown only once:\n\n"
            f"    {first_key}\n\nSubmit a search of the digits dataset:\n\n"
            f"    curl -s -X POST {base}/api/v1/jobs \\\n"
            f"      -H 'Authorization: Bearer {first_key}' \\\n"
            "      -H 'Content-Type: application/json' \\\n"
            '      -d \'{"dataset": "digits", "spec": {"max_iterations": 3}}\'\n\n'
            f"Dashboard: {base}/ (sign in with the key above)\n"
            f"API docs: {base}/docs\n",
            flush=True,
        )


def _start_ray(settings: Settings) -> None:
    """Join (or start) Ray for the controller and warm its workers in the background."""
    from workers.ray_executor import RayExecutor, ensure_ray

    # ray.init replaces the SIGTERM handler with one that raises SystemExit wherever the main
    # thread is (in the event loop: a stack dump, no graceful shutdown); keep the server's own
    # (uvicorn's: stop taking requests, then run the shutdown)
    handlers = _signal_handlers()
    ensure_ray(settings.ray_address, settings.ray_num_cpus)
    _restore_signal_handlers(handlers)

    def warm() -> None:
        try:
            n = RayExecutor(address=settings.ray_address, nice=settings.worker_nice).warm_up()
            log.info("%d Ray worker(s) warm", n)
        except Exception:  # noqa: BLE001 - a cold pool only costs the first job time
            log.exception("warming the Ray workers failed")

    threading.Thread(target=warm, name="ray-warm-up", daemon=True).start()


def _stop_ray() -> None:
    from workers.ray_executor import shutdown_ray

    shutdown_ray()


@contextmanager
def controller_process(settings: Settings, announce: bool = True) -> Iterator[Controller]:
    """The controller without the HTTP API, for the parent of ``automl serve --workers N``:
    its HTTP processes (``http_only_app``) take no jobs, this process runs them all. The first
    API key is made (and announced) here, before any HTTP process starts."""
    engine, factory, store = _open_database(settings)
    _first_key(settings, factory, announce)
    uses_ray = settings.executor == "ray"
    if uses_ray:
        _start_ray(settings)
    controller = Controller(settings, factory, store)
    controller.start()
    stop_reporting = threading.Event()
    health = store.root / CONTROLLER_HEALTH_FILE

    def report_health() -> None:
        # the HTTP processes have no Ray of their own: their /healthz reads this
        from workers.ray_executor import ray_reachable

        while not stop_reporting.is_set():
            ray = ("ok" if ray_reachable() else "unreachable") if uses_ray else None
            body = {"pid": os.getpid(), "at": time.time(), "ray": ray}
            tmp = health.with_suffix(".tmp")
            try:
                tmp.write_text(json.dumps(body))
                os.replace(tmp, health)
            except OSError:
                log.warning("cannot write %s", health, exc_info=True)
            stop_reporting.wait(CONTROLLER_HEALTH_INTERVAL_S)

    reporter = threading.Thread(target=report_health, name="controller-health", daemon=True)
    reporter.start()
    try:
        yield controller
    finally:
        stop_reporting.set()
        reporter.join(timeout=10)
        health.unlink(missing_ok=True)
        controller.stop()
        if uses_ray:
            _stop_ray()
        engine.dispose()


# the controller process of `serve --workers N` says it is alive (and whether Ray is) here,
# in the artifact directory, every few seconds; /healthz of the HTTP processes reads it
CONTROLLER_HEALTH_FILE = "controller-health.json"
CONTROLLER_HEALTH_INTERVAL_S = 2.0


def _nodelay_on_inherited_sockets() -> None:
    """Set TCP_NODELAY on the connections of a socket uvicorn's supervisor bound.

    With several workers uvicorn binds the listening socket itself, as ``socket.socket(family)``
    (protocol 0), and asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP:
    without it a response's headers and body, written apart, wait for the client's delayed ACK
    (~40 ms per request, measured: 44-48 ms against 1.5-3 ms with one process)."""
    import asyncio.base_events as base_events

    def set_nodelay(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    setattr(base_events, "_set_nodelay", set_nodelay)  # noqa: B010 - a private hook


def http_only_app() -> FastAPI:
    """One HTTP process of ``automl serve --workers N`` (a uvicorn factory): settings from the
    environment, no controller and no Ray (the parent process runs them)."""
    _nodelay_on_inherited_sockets()
    return create_app(Settings(run_controller=False))


def create_app(settings: Settings | None = None, announce: bool = False) -> FastAPI:
    """Build the app. ``announce`` prints the first-start API key and an example request.
    With ``settings.run_controller`` off the process serves the API only: another process
    (``controller_process``) runs the jobs, and this one starts no Ray."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, factory, store = _open_database(settings)

        def job_counts() -> dict[str, int]:
            with session_scope(factory) as s:
                return JobRepository(s).counts_by_state()

        def candidate_figures() -> CandidateFigures:
            with session_scope(factory) as s:
                by_state, buckets, count, seconds = CandidateRepository(s).duration_figures(
                    FINAL_CANDIDATE_STATES, DURATION_BUCKETS
                )
            return CandidateFigures(by_state, buckets, count, seconds)

        metrics = Metrics(job_counts, candidate_figures)
        read_engine = make_read_engine(engine, settings.db_pool_timeout_s)
        read_factory = factory if read_engine is engine else make_session_factory(read_engine)
        app.state.automl = AppState(settings, factory, store, metrics, read_factory)
        _first_key(settings, factory, announce)
        uses_ray = settings.executor == "ray" and settings.run_controller
        if uses_ray:
            _start_ray(settings)
        controller = Controller(settings, factory, store)
        app.state.controller = controller
        if settings.run_controller:
            controller.start()
        freeze_heap()
        try:
            yield
        finally:
            controller.stop()
            if uses_ray:
                _stop_ray()
            read_engine.dispose()
            engine.dispose()

    app = FastAPI(
        title="automl",
        version="0.1.0",
        description="AdaNet-style neural architecture search as a service.",
        lifespan=lifespan,
        # /docs is served by the dashboard from a bundled Swagger UI (no CDN, works offline)
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())

    async def _database_unreachable(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("a request failed: the database is unreachable: %s", str(exc).splitlines()[0])
        err = ServiceUnavailableError(
            "the database is unreachable right now (restarting, or busy); try again shortly",
            retry_after_s=DB_RETRY_AFTER_S,
        )
        return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers())

    # the driver's connection errors only: a bug (a bad query, a constraint) stays a 500
    app.add_exception_handler(OperationalError, _database_unreachable)
    app.add_exception_handler(InterfaceError, _database_unreachable)

    async def _pool_exhausted(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("a request waited too long for a database connection: %s", exc)
        err = ServiceUnavailableError(
            "the service is too busy to reach its database right now; try again shortly",
            retry_after_s=DB_RETRY_AFTER_S,
        )
        return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers())

    # every pooled connection stayed in use for the pool's whole timeout: overload, not a bug
    app.add_exception_handler(PoolTimeoutError, _pool_exhausted)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "is not a field of this request"
            field = _field_path(tuple(err.get("loc", ())))
            if err.get("type") == "json_invalid":  # its loc is the character where it failed
                where = err.get("loc", ("", 0))[-1]
                why = (err.get("ctx") or {}).get("error", "JSON decode error")
                field, msg = "body", f"the body is not valid JSON: {why} at character {where}"
            errors.append({"field": field, "message": msg})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(
            {"detail": f"invalid request: {summary}", "errors": errors}, status_code=422
        )

    app.add_middleware(UploadLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    # outermost: a request waits for its turn before any of its work starts
    app.add_middleware(
        AdmissionLimit,
        limit=settings.max_requests_in_flight,
        read_limit=settings.max_reads_in_flight,
        upload_limit=settings.max_uploads_in_flight,
    )
    app.include_router(datasets.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(keys.router)
    app.include_router(history.router)
    app.include_router(health.router)
    install_dashboard(app, settings.max_upload_bytes)
    document_errors(app)
    return app
