"""The ``automl`` console script: the engine's commands (``automl.cli``) plus the service's —
serve, worker, db upgrade, apikey create. It lives on the service side so that the engine
library never imports the service."""

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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (AUTOML_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (AUTOML_PORT)")] = None,
) -> None:
    """Run the REST API and the controller (SQLite + local Ray by default)."""
    import uvicorn

    from api.errors import SchemaTooNewError
    from api.main import create_app

    settings = _service_settings(host=host, port=port)
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
        uvicorn.run(
            create_app(settings, announce=True),
            host=settings.host,
            port=settings.port,
            log_level="info",
            # open connections (an event stream) may delay the stop this long, no more
            timeout_graceful_shutdown=10,
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
