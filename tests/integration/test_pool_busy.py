"""Every pooled database connection in use: a request waits ``AUTOML_DB_POOL_TIMEOUT_S`` and
gets a 503 with Retry-After (overload), not a 500; once connections are free it is served."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.auth import create_api_key
from api.db import session_scope
from api.main import create_app
from api.settings import Settings


def test_a_request_that_finds_every_connection_in_use_is_a_503(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'automl.db'}",
        artifact_dir=tmp_path / "artifacts",
        run_controller=False,
        executor="in_process",
        db_pool_timeout_s=0.5,
    )
    with TestClient(create_app(settings)) as client:
        factory = client.app.state.automl.factory  # type: ignore[attr-defined]
        with session_scope(factory) as s:
            key = create_api_key(s, "alice")
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/v1/jobs", headers=headers).status_code == 200
        engine = factory.kw["bind"]
        held = []
        try:
            # the whole pool (its size and its overflow), as a burst of slow requests would
            for _ in range(engine.pool.size() + engine.pool._max_overflow):  # noqa: SLF001
                held.append(engine.connect())
            r = client.get("/api/v1/jobs", headers=headers)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit()
            assert "too busy" in r.json()["detail"]
        finally:
            for conn in held:
                conn.close()
        assert client.get("/api/v1/jobs", headers=headers).status_code == 200
