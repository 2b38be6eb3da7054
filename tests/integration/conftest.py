"""Real services for integration tests: SQLite files, a PostgreSQL database per module, and
`automl serve` running in a subprocess with a real local Ray."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "AUTOML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]

# digits, 3 iterations that always grow, no evaluation phase: a job long enough to stop in the
# middle of (iteration 0 stored, iteration 1 training) and to check what a restart trains again
THREE_ITERATIONS: dict[str, Any] = {
    "max_iterations": 3,
    "candidates_per_iteration": 2,
    "epochs": 2,
    "seed": 5,
    "batch_size": [64],
    "force_grow": True,
    "evaluation": {"enabled": False},
}

# the smallest job that runs every phase: two iterations of two 2-epoch candidates, then one
# sparsity level of the evaluation phase
TINY: dict[str, Any] = {
    "max_iterations": 2,
    "candidates_per_iteration": 2,
    "epochs": 2,
    "batch_size": [64],
    "evaluation": {"cv_folds": 0, "sparsities": [0.5], "fine_tune_epochs": 1, "grow": False},
}


def _postgres_available() -> str | None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """PostgreSQL must be there: its tests fail rather than skip, unless a person opts out."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("AUTOML_TEST_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unreachable and AUTOML_TEST_SKIP_POSTGRES=1: {problem}")
        pytest.fail(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable ({problem}); start it "
            "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set "
            "AUTOML_TEST_POSTGRES_URL; AUTOML_TEST_SKIP_POSTGRES=1 skips these tests explicitly"
        )
    return POSTGRES_ADMIN_URL


def make_postgres_db(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"automl_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def drop_postgres_db(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the backend in ``request.param``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'automl.db'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    url, name = make_postgres_db(admin)
    try:
        yield url
    finally:
        drop_postgres_db(admin, name)


def csv_bytes(rows: int = 60, seed: int = 0) -> bytes:
    """A small two-class table: 3 numeric features and the label column ``direction``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = np.where(x[:, 0] > 0, "up", "down")
    lines = ["a,b,c,direction"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(x, y, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """`automl serve` in its own process group, so a test can kill -9 it and everything it
    started (Ray's daemons included) — never anything else."""

    db_url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    first_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The server's environment; ``extra_env`` may override any of these settings."""
        env = dict(
            os.environ,
            AUTOML_DATABASE_URL=self.db_url,
            AUTOML_ARTIFACT_DIR=str(self.workdir / "artifacts"),
            AUTOML_PORT=str(self.port),
            AUTOML_RAY_NUM_CPUS="2",
            AUTOML_POLL_INTERVAL_S="0.2",
            AUTOML_MAX_UPLOAD_MB="1",
            # a dead service's jobs are taken over after 6 s here, not the default minute
            AUTOML_HEARTBEAT_INTERVAL_S="1",
            AUTOML_LEASE_TIMEOUT_S="6",
            TF_CPP_MIN_LOG_LEVEL="3",
            RAY_USAGE_STATS_ENABLED="0",
            PYTHONUNBUFFERED="1",
        )
        return env | self.extra_env

    def start(self, timeout: float = 120) -> Server:
        n = len(list(self.workdir.glob("server-*.log")))
        self.log_path = self.workdir / f"server-{n}.log"
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve"],
            cwd=self.workdir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            self.kill()
            raise RuntimeError(f"server did not become healthy:\n{self.log()}")
        match = re.search(r"(aml_[A-Za-z0-9_-]+)", self.log())
        if match and self.first_key is None:
            self.first_key = match.group(1)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL the server and its process group (what a crash leaves, cleaned up)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.first_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def create_key(self, owner: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "api.cli", "apikey", "create", "--owner", owner],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A running service per backend, shared by a module's tests."""
    workdir = tmp_path_factory.mktemp(f"srv-{request.param}")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'automl.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin")
        url, name = make_postgres_db(admin)
    srv = Server(url, workdir).start()
    try:
        yield srv
    finally:
        srv.stop()
        if name:
            drop_postgres_db(POSTGRES_ADMIN_URL, name)


def start_server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, **env: str
) -> tuple[Server, str | None]:
    """A server of the test's own (to kill or restart) on a fresh database of ``backend``;
    returns it and the PostgreSQL database's name (for stop_server)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'automl.db'}"
    else:
        request.getfixturevalue("postgres_admin")
        url, name = make_postgres_db(POSTGRES_ADMIN_URL)
    return Server(url, tmp_path, extra_env=env).start(), name


def stop_server(server: Server, name: str | None) -> None:
    server.kill()
    if name:
        drop_postgres_db(POSTGRES_ADMIN_URL, name)


def wait_for(client: httpx.Client, job_id: str, states: set[str], timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} stayed {job.get('state')} (wanted {states}): {job}")


def wait_mid_search(client: httpx.Client, job_id: str, timeout: float = 240) -> list[dict]:
    """Wait until the job has stored iteration 0 and is training iteration 1; return iteration
    0's candidates as stored then (to compare with after a stop and a restart)."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}").json()
        its = client.get(f"/api/v1/jobs/{job_id}/iterations").json()["count"]
        if its >= 1 and body["state"] == "running":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the job never reached iteration 1: {body}")
    return list(client.get(f"/api/v1/jobs/{job_id}/candidates?iteration=0").json()["data"])
