"""Dataset input end to end: unusual CSVs, zip bombs and oversized uploads over a real server;
file and row kept together when a commit fails, on a real database; the CLI's exit code 2."""

from __future__ import annotations

import http.client
import io
import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func
from sqlalchemy import select as sql_select

from api.artifacts import ArtifactStore
from api.db import make_engine, make_session_factory, session_scope
from api.migrate import upgrade
from api.models import Dataset
from api.services.datasets import DatasetService
from tests.integration.conftest import (
    BACKENDS,
    POSTGRES_ADMIN_URL,
    Server,
    drop_postgres_db,
    make_postgres_db,
)
from tests.unit.test_data import write_npz_bomb

LIMIT = 1 << 20  # AUTOML_MAX_UPLOAD_MB=1, as the Server fixture sets it

AGES_CSV = ("x,age\n" + "".join(f"{i},{20 + i % 50}\n" for i in range(2000))).encode()
GOOD_CSV = "a,b,label\n" + "".join(f"{i},{i % 3},{'cat' if i % 2 else 'dog'}\n" for i in range(40))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The service without Ray or a controller: these tests only upload and list datasets."""
    workdir = tmp_path_factory.mktemp(f"input-{request.param}")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'automl.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin")
        url, name = make_postgres_db(admin)
    env = {"AUTOML_EXECUTOR": "in_process", "AUTOML_RUN_CONTROLLER": "false"}
    srv = Server(url, workdir, extra_env=env).start()
    try:
        yield srv
    finally:
        srv.stop()
        if name:
            drop_postgres_db(POSTGRES_ADMIN_URL, name)


def stored(server: Server) -> tuple[int, list[Path]]:
    with server.client() as c:
        count = c.get("/api/v1/datasets").json()["count"]
    return count, sorted((server.workdir / "artifacts" / "datasets").glob("*"))


# ---- what the engine reads and refuses, over HTTP ----------------------------------------------
@pytest.mark.parametrize("newline", ["\r", "\r\n"])
def test_a_csv_with_cr_or_crlf_line_endings_uploads(server: Server, newline: str) -> None:
    with server.client() as c:
        r = c.post(
            "/api/v1/datasets",
            files={"file": ("mac.csv", GOOD_CSV.replace("\n", newline).encode())},
            data={"label": "label"},
        )
    assert r.status_code == 201, r.text
    ds = r.json()
    assert (ds["rows"], ds["features"], ds["class_counts"]) == (40, 2, {"cat": 20, "dog": 20})


def test_the_rule_that_chose_the_task_is_stored_and_returned(server: Server) -> None:
    with server.client() as c:
        r = c.post(
            "/api/v1/datasets", files={"file": ("ages.csv", AGES_CSV)}, data={"label": "age"}
        )
        assert r.status_code == 201, r.text
        ds = r.json()
        assert (ds["task"], ds["task_rule"]) == (
            "regression",
            "50 distinct integers in 2000 rows: regression (more than 20 values)",
        )
        assert c.get(f"/api/v1/datasets/{ds['id']}").json()["task_rule"] == ds["task_rule"]
        listed = {d["id"]: d for d in c.get("/api/v1/datasets").json()["data"]}
        assert listed[ds["id"]]["task_rule"] == ds["task_rule"]
        given = c.post(
            "/api/v1/datasets",
            files={"file": ("ages.csv", AGES_CSV)},
            data={"label": "age", "task": "classification"},
        ).json()
        assert (given["task"], given["task_rule"], len(given["class_counts"])) == (
            "classification",
            "given by the user",
            50,
        )


def _bomb(tmp_path: Path) -> bytes:
    path = tmp_path / "bomb.npz"
    write_npz_bomb(path, mib=960)  # x.npy: 1.007 GB once inflated, 1 MB on the wire
    return path.read_bytes()


def _peak_rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


BAD_INPUT = [
    (
        {"file": ("long.csv", b"a,y\n1,x\n2," + b"z" * 140_000 + b"\n")},
        {"label": "y"},
        "CSV line 3 has a value longer than 131,072 characters",
    ),
    (
        {"file": ("dup.csv", b"a,y,y\n" + b"1,0,0\n2,1,1\n" * 20)},
        {"label": "y"},
        "the CSV header has duplicate column names: 'y' (columns 2 and 3)",
    ),
]


@pytest.mark.parametrize(("files", "data", "message"), BAD_INPUT)
def test_bad_csv_input_is_422_naming_the_file_and_stores_nothing(
    server: Server, files: dict, data: dict, message: str
) -> None:
    before = stored(server)
    with server.client() as c:
        r = c.post("/api/v1/datasets", files=files, data=data)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert [e["field"] for e in r.json()["errors"]] == ["file"]
    assert stored(server) == before


def test_an_npz_zip_bomb_is_422_and_never_inflated_in_the_server(
    server: Server, tmp_path: Path
) -> None:
    bomb = _bomb(tmp_path)
    assert len(bomb) < LIMIT  # within the upload limit: only the array check can refuse it
    before = stored(server)
    assert server.proc is not None
    peak_before = _peak_rss_mib(server.proc.pid)
    with server.client() as c:
        r = c.post("/api/v1/datasets", files={"file": ("bomb.npz", bomb)})
    assert r.status_code == 422, r.text
    assert "array 'x' takes 1.01 GB once decompressed" in r.json()["detail"]
    assert [e["field"] for e in r.json()["errors"]] == ["file"]
    assert _peak_rss_mib(server.proc.pid) - peak_before < 100
    assert stored(server) == before


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        (f"offset={10**20}", 422, "query.offset"),
        (f"offset={2**31}", 422, "query.offset"),
        ("offset=-1", 422, "query.offset"),
        ("limit=0", 422, "query.limit"),
        ("limit=501", 422, "query.limit"),
        (f"offset={2**31 - 1}&limit=500", 200, None),
    ],
)
def test_list_bounds_are_422_not_a_database_overflow(
    server: Server, query: str, status: int, field: str | None
) -> None:
    with server.client() as c:
        r = c.get(f"/api/v1/datasets?{query}")
    assert r.status_code == status, r.text
    if field:
        assert field in [e["field"] for e in r.json()["errors"]]
    else:
        assert r.json()["data"] == []


# ---- the upload limit acts while the request arrives --------------------------------------------
BOUNDARY = "automl-test-boundary"


def _head(server: Server, extra: str) -> bytes:
    return (
        "POST /api/v1/datasets HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.first_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{extra}\r\n"
    ).encode()


def _form_start() -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="label"\r\n\r\ny\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na,y\n"
    ).encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def _assert_413(status: int, body: dict[str, Any]) -> None:
    assert status == 413, body
    assert "1 MB upload limit (AUTOML_MAX_UPLOAD_MB)" in body["detail"]
    assert body["errors"] == [{"field": "file", "message": body["detail"]}]


def test_an_upload_declared_over_the_limit_is_refused_before_its_body_is_sent(
    server: Server,
) -> None:
    before = stored(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(_head(server, f"Content-Length: {100 << 20}\r\n"))
        # not one byte of the body is sent: only an answer before reading it can arrive
        _assert_413(*_answer(sock))
    assert stored(server) == before


def test_a_chunked_upload_is_cut_off_as_soon_as_it_passes_the_limit(server: Server) -> None:
    """Chunked transfer has no Content-Length: the server must count as the body streams.

    The client keeps sending until an answer arrives (or 64 MiB are sent); a server that
    checked only after the whole form was spooled would answer only after the last byte.
    """
    before = stored(server)
    cap, sent = 64 << 20, 0
    block = b"1,x\n" * 16_384  # 64 KiB
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(_head(server, "Transfer-Encoding: chunked\r\n"))
        start = _form_start()
        sock.sendall(b"%x\r\n%s\r\n" % (len(start), start))
        while sent < cap and not select.select([sock], [], [], 0)[0]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
        if sent >= cap:
            end = f"\r\n--{BOUNDARY}--\r\n".encode()
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(end), end))
        status, body = _answer(sock)
    assert sent < 16 << 20, f"the answer came after {sent / 2**20:.0f} MiB"
    _assert_413(status, body)
    assert stored(server) == before


def test_an_upload_near_the_limit_is_still_accepted(server: Server) -> None:
    # the file is just under the limit, so the whole request (with the form around it) is over
    text = b"a,y\n" + b"".join(b"%d,%d\n" % (i % 1000, i % 2) for i in range(178_000))
    assert LIMIT - 1000 < len(text) <= LIMIT
    with server.client() as c:
        r = c.post(
            "/api/v1/datasets",
            files={"file": ("near.csv", text)},
            data={"label": "y", "name": "n" * 200},
        )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 178_000


# ---- a file and its row commit together (service over a real database) -------------------------
@contextmanager
def failing_commits(engine: Engine) -> Iterator[None]:
    """Every COMMIT on ``engine`` fails, as when the database goes away at that moment."""

    def fail(_conn: Any) -> None:
        raise RuntimeError("commit failed (injected)")

    event.listen(engine, "commit", fail)
    try:
        yield
    finally:
        event.remove(engine, "commit", fail)


@pytest.fixture
def service_db(db_url: str, tmp_path: Path) -> Iterator[tuple[Engine, Any, ArtifactStore]]:
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        yield engine, make_session_factory(engine), ArtifactStore(tmp_path / "artifacts")
    finally:
        engine.dispose()


def _rows(factory: Any) -> int:
    with session_scope(factory) as s:
        return int(s.scalar(sql_select(func.count(Dataset.id))) or 0)


def _files(store: ArtifactStore) -> list[Path]:
    return sorted((store.root / "datasets").glob("*"))


def _upload(session: Any, store: ArtifactStore) -> Dataset:
    return DatasetService(session, store, LIMIT).upload(
        "alice", "d.csv", io.BytesIO(GOOD_CSV.encode()), "label", None, None
    )


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_upload_whose_commit_fails_leaves_no_file(service_db: tuple) -> None:
    engine, factory, store = service_db
    with failing_commits(engine), pytest.raises(RuntimeError, match="injected"):
        with session_scope(factory) as s:
            _upload(s, store)
    assert _rows(factory) == 0 and _files(store) == []
    with session_scope(factory) as s:  # and one that commits keeps its file
        row = _upload(s, store)
    assert _rows(factory) == 1 and _files(store) == [store.absolute(row.path)]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_delete_whose_commit_fails_keeps_the_file(service_db: tuple) -> None:
    engine, factory, store = service_db
    with session_scope(factory) as s:
        row = _upload(s, store)
    path = store.absolute(row.path)
    with failing_commits(engine), pytest.raises(RuntimeError, match="injected"):
        with session_scope(factory) as s:
            DatasetService(s, store, LIMIT).delete("alice", row.id)
    assert _rows(factory) == 1 and path.is_file()  # the row is still there, so is its file
    with session_scope(factory) as s:
        DatasetService(s, store, LIMIT).delete("alice", row.id)
    assert _rows(factory) == 0 and _files(store) == []


# ---- the CLI: a message and exit code 2, never a traceback --------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,y\r1,x\r2," + b"z" * 140_000 + b"\r", "CSV line 3 has a value longer than 131,072"),
        (b"a,y,y\n1,0,0\n2,1,1\n", "duplicate column names: 'y' (columns 2 and 3)"),
    ],
)
def test_the_cli_reports_bad_csv_input_with_exit_code_2(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "d.csv").write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "search", "--csv", "d.csv", "--label", "y"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, COLUMNS="200", PYTHONPATH=str(Path(__file__).parents[2])),
        timeout=300,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    assert message in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
