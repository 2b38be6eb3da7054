"""Schema upgrades through Alembic: the service upgrades an empty or older schema at start and
refuses to start against a schema newer than this code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from api.errors import SchemaTooNewError

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to head; return (revision before, revision after).

    Raises:
        SchemaTooNewError: The database carries a revision this code does not know.
    """
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    before = current_revision(engine)
    if before is not None:
        try:
            script.get_revision(before)
        except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
            raise SchemaTooNewError(
                f"the database schema is at revision {before!r}, which this version of automl "
                f"does not know (its newest is {script.get_current_head()!r}); the database was "
                "upgraded by a newer automl — run that version, or point AUTOML_DATABASE_URL "
                "at another database"
            ) from None
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision(url)
