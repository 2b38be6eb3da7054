"""The ``automl`` console script: the engine's commands (``automl.cli``) plus the service's —
serve, worker, db upgrade, apikey create/list/revoke. It lives on the service side so that the
engine library never imports the service."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import workers  # noqa: F401 - registers the ray executor for `search --executor ray`
from automl.cli import app, console, fail
from automl.cli import main as _run_app

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")


def _service_settings(**overrides: Any) -> Any:
    try:
        from api.settings import Settings
    except ImportError:  # pragma: no cover - the service is part of the package
        raise fail("the service is not installed") from None
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise fail(f"invalid settings: {exc}") from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database (AUTOML_DATABASE_URL) to the newest schema."""
    from api.db import make_engine
    from api.errors import SchemaTooNewError
    from api.migrate import upgrade

    settings = _service_settings()
    try:
        before, after = upgrade(make_engine(settings.database_url))
    except SchemaTooNewError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"database at revision {after}"
        + (" (was empty)" if before is None else f" (was {before})" if before != after else "")
    )


@apikey_app.command("create")
def apikey_create(
    owner: Annotated[str, typer.Option(help="who the key belongs to")],
) -> None:
    """Create an API key and print it (only its hash is stored)."""
    from api.auth import create_api_key
    from api.db import make_engine, make_session_factory, session_scope
    from api.migrate import upgrade

    settings = _service_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with session_scope(make_session_factory(engine)) as s:
            key = create_api_key(s, owner)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(key)


def _key_sessions() -> Any:
    """A session factory on the configured database, upgraded to the newest schema."""
    from api.db import make_engine, make_session_factory
    from api.migrate import upgrade

    engine = make_engine(_service_settings().database_url)
    upgrade(engine)
    return make_session_factory(engine)


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


@apikey_app.command("list")
def apikey_list(
    owner: Annotated[str | None, typer.Option(help="only this owner's keys")] = None,
) -> None:
    """List API keys: id, owner, prefix, created, last used, revoked (never a key or its hash)."""
    from api.db import session_scope
    from api.services.keys import ApiKeyService

    with session_scope(_key_sessions()) as s:
        rows = ApiKeyService(s).list_all(owner)
        lines = [
            (
                str(r.id),
                r.owner,
                r.prefix,
                _when(r.created_at),
                _when(r.last_used_at),
                "yes" if r.revoked else "no",
            )
            for r in rows
        ]
    header = ("id", "owner", "prefix", "created_at", "last_used_at", "revoked")
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[int, typer.Argument(help="the key's id (see `automl apikey list`)")],
) -> None:
    """Revoke an API key: the next request with it is refused, its dashboard sessions end."""
    from api.db import session_scope
    from api.errors import NotFoundError
    from api.services.keys import ApiKeyService

    try:
        with session_scope(_key_sessions()) as s:
            row, changed = ApiKeyService(s).revoke_any(key_id)
            owner, prefix = row.owner, row.prefix
    except NotFoundError as exc:
        raise fail(exc.message) from None
    note = "revoked" if changed else "was already revoked"
    typer.echo(f"API key {key_id} (owner {owner}, {prefix}…) {note}")


def _configuration(hparams: dict[str, Any]) -> str:
    """A configuration on one line: family first, then its values as key=value."""
    rest = " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in hparams.items()
        if k != "family"
    )
    return f"{hparams.get('family', '?')} {rest}"


@app.command("history")
def history(
    dataset: Annotated[str | None, typer.Option(help="a built-in dataset's name")] = None,
    dataset_id: Annotated[str | None, typer.Option(help="an uploaded dataset's id")] = None,
    owner: Annotated[
        str | None, typer.Option(help="only this owner's history (default: every owner's)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="configurations to show")] = 10,
) -> None:
    """Past configurations ranked for a dataset (AUTOML_DATABASE_URL): by the similarity of
    their data to it and by F within their own job, as GET /api/v1/history/configurations."""
    from api.db import session_scope
    from api.errors import APIError
    from api.services.history import HistoryService

    try:
        with session_scope(_key_sessions()) as s:
            service = HistoryService(s)
            target = service.target(owner, dataset_id, dataset)
            ranked, total = service.rank(owner, target, limit)
    except APIError as exc:
        field = (exc.field or "").removeprefix("query.").replace("_", "-")
        raise fail(f"--{field}: {exc.message}" if field else exc.message) from None
    typer.echo(f"{target.name}: {len(ranked)} of {total} configuration(s)")
    header = ("#", "score", "similarity", "F", "dataset", "owner", "job", "candidate", "hparams")
    lines = [
        (
            str(i),
            f"{r.score:.3f}",
            f"{r.similarity:.3f}",
            f"{r.objective:.4f}",
            r.dataset,
            r.owner,
            (r.job_id or "-")[:8],
            r.candidate,
            _configuration(r.hparams),
        )
        for i, r in enumerate(ranked, 1)
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (AUTOML_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (AUTOML_PORT)")] = None,
    api_workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="HTTP processes (AUTOML_API_WORKERS, default 1); with more, the controller "
            "runs in this process beside them and requests never wait on its work",
        ),
    ] = None,
) -> None:
    """Run the REST API and the controller (SQLite + local Ray by default)."""
    import uvicorn

    from api.errors import SchemaTooNewError
    from api.listen import check_port_free, run_workers
    from api.main import controller_process, create_app

    settings = _service_settings(host=host, port=port, api_workers=api_workers)
    from api.db import make_engine
    from api.migrate import upgrade

    try:
        upgrade(make_engine(settings.database_url))  # refuse a too-new schema before serving
    except SchemaTooNewError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. PostgreSQL unreachable
        raise fail(f"cannot open the database {settings.database_url!r}: {exc}") from None
    # SIGTERM (docker stop, systemd) and SIGINT stop the service gracefully: uvicorn stops
    # taking requests and runs the app's shutdown (the controller puts a running job back in
    # the queue, Ray is left). Once it is done uvicorn raises the signal again for the handler
    # it found; this one makes that a clean exit 0 instead of death by SIGTERM.
    stopped_by: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopped_by.append(signum))
    try:
        if settings.api_workers == 1:
            uvicorn.run(
                create_app(settings, announce=True),
                host=settings.host,
                port=settings.port,
                log_level="info",
                access_log=settings.access_log,
                # open connections (an event stream) may delay the stop this long, no more
                timeout_graceful_shutdown=10,
                timeout_keep_alive=settings.http_keep_alive_s,
            )
        else:
            # the controller (and Ray) here; uvicorn's HTTP processes are spawned fresh, read
            # the same AUTOML_* environment and serve the API only. uvicorn's supervisor
            # takes SIGTERM/SIGINT: it stops its processes, then the controller stops.
            try:
                check_port_free(settings.host, settings.port)
            except OSError as exc:
                raise fail(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
            with controller_process(settings, announce=True):
                os.environ["AUTOML_RUN_CONTROLLER"] = "false"
                # each HTTP process gets its own socket, balanced by the kernel (api.listen)
                run_workers(
                    "api.main:http_only_app",
                    settings.api_workers,
                    settings.host,
                    settings.port,
                    log_level="info",
                    access_log=settings.access_log,
                    timeout_graceful_shutdown=10,
                    timeout_keep_alive=settings.http_keep_alive_s,
                )
    except SchemaTooNewError as exc:
        raise fail(str(exc)) from None
    if stopped_by:
        console.print(f"automl: stopped by {signal.Signals(stopped_by[0]).name}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    address: Annotated[str, typer.Option(help="the Ray head's HOST:PORT to join")],
) -> None:
    """Join a Ray cluster as a worker node (runs `ray start --block`).

    Any further option goes to `ray start` as it is (e.g. --num-cpus, --num-gpus,
    --object-store-memory). SIGTERM or Ctrl-C drains the node and leaves the cluster. With
    token authentication, RAY_AUTH_MODE=token and RAY_AUTH_TOKEN must be set.
    """
    import shutil
    import subprocess

    if ":" not in address:
        raise fail(f"--address must be HOST:PORT, got {address!r}")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # joining a cluster is multi-node by definition: a RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 left
    # in the environment for a single-node Ray (see the local executor) would make
    # `ray start --address` refuse to join
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"
    node = subprocess.Popen([ray_bin, "start", f"--address={address}", *ctx.args, "--block"])
    stopped_by: list[int] = []

    def leave(signum: int, _frame: Any) -> None:
        # `ray start --block` drains the node on SIGTERM (its work moves elsewhere, the head
        # marks it dead at once), stops its processes, then exits 1; a stop asked for is a
        # clean exit here
        stopped_by.append(signum)
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)
    rc = node.wait()
    if stopped_by:
        console.print(f"automl: the node left the cluster ({signal.Signals(stopped_by[0]).name})")
        raise typer.Exit(0)
    raise typer.Exit(rc)


def main() -> None:
    _run_app()


if __name__ == "__main__":
    main()
