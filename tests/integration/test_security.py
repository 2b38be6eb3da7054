"""Security over real servers (``automl serve`` in a subprocess): owner isolation on every
operation of the OpenAPI document, 401 without a valid key, API keys listed and revoked (REST
and command line), per-owner quotas (429 + Retry-After), and no key in logs, events or the
database.

Two servers, each started once for the module: ``world`` on SQLite, where two owners have a
dataset, a finished job and keys (the isolation walk and the secrets check run there), and
``quota_server`` on PostgreSQL with low quotas and no controller (jobs stay queued)."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import TINY, Server, csv_bytes, start_server, stop_server, wait_for

AUTOML = str(Path(sys.executable).with_name("automl"))
# what the walk must at least cover: fewer means the OpenAPI document or the walk broke
MIN_ID_OPERATIONS = 23
MIN_API_OPERATIONS = 30
LABEL = "direction"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Owner:
    name: str
    key: str
    dataset_id: str = ""
    job_id: str = ""
    candidate: str = ""
    key_id: int = 0


@dataclass
class World:
    server: Server
    alice: Owner
    bob: Owner
    # every key any test issued on this server, revoked ones too: none may leak anywhere
    issued: list[str] = field(default_factory=list)
    alice_job_state: str = ""

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)


def _upload(c: httpx.Client, name: str, content: bytes) -> httpx.Response:
    return c.post(
        "/api/v1/datasets", files={"file": (name, content, "text/csv")}, data={"label": LABEL}
    )


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Alice and Bob on one SQLite server, each with a dataset, a job and keys. The keys are
    made with the command line before the first start, so the server announces none."""
    workdir = tmp_path_factory.mktemp("security")
    pre = Server(f"sqlite:///{workdir / 'automl.db'}", workdir)
    alice_key, bob_key = pre.create_key("alice"), pre.create_key("bob")
    server, name = start_server(workdir, "sqlite", request, AUTOML_EXECUTOR="in_process")
    w = World(server, Owner("alice", alice_key), Owner("bob", bob_key), [alice_key, bob_key])
    try:
        with w.client(alice_key) as a, w.client(bob_key) as b:
            for owner, c, seed in ((w.alice, a, 1), (w.bob, b, 2)):
                r = _upload(c, f"{owner.name}.csv", csv_bytes(60, seed))
                assert r.status_code == 201, r.text
                owner.dataset_id = r.json()["id"]
                r = c.post("/api/v1/jobs", json={"dataset_id": owner.dataset_id, "spec": TINY})
                assert r.status_code == 201, r.text
                owner.job_id = r.json()["id"]
                r = c.post("/api/v1/keys")
                assert r.status_code == 201, r.text
                owner.key_id = r.json()["id"]
                w.issued.append(r.json()["key"])
            # Bob's job is cancelled (queued behind Alice's, or asked to stop); Alice's runs to
            # its end: succeeded gives every route something to show, but the walk only needs
            # her job, its candidates and its events to exist
            b.post(f"/api/v1/jobs/{w.bob.job_id}/cancel")
            done = wait_for(a, w.alice.job_id, {"succeeded", "failed"})
            w.alice_job_state = done["state"]
            wait_for(b, w.bob.job_id, {"cancelled", "succeeded", "failed"})
            candidates = a.get(f"/api/v1/jobs/{w.alice.job_id}/candidates").json()["data"]
            assert candidates, done
            w.alice.candidate = candidates[0]["name"]
        yield w
    finally:
        stop_server(server, name)


@pytest.fixture(scope="module")
def quota_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """PostgreSQL, 2 active jobs and 20 KiB of uploads a day per owner; no controller, so the
    jobs stay queued and count against the quota until cancelled."""
    server, name = start_server(
        tmp_path_factory.mktemp("quota"),
        "postgresql",
        request,
        AUTOML_EXECUTOR="in_process",
        AUTOML_RUN_CONTROLLER="false",
        AUTOML_MAX_JOBS_PER_OWNER="2",
        AUTOML_MAX_UPLOAD_MB_PER_DAY=str(20 / 1024),
    )
    try:
        yield server
    finally:
        stop_server(server, name)


# ---- walking the OpenAPI document ---------------------------------------------------------------
def _operations(server: Server) -> list[tuple[str, str, dict[str, Any]]]:
    doc = httpx.get(server.url + "/openapi.json", timeout=30).json()
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _id_values(w: World, owner: Owner) -> dict[str, str]:
    """What each path or query parameter that names an object of ``owner`` is set to."""
    return {
        "job_id": owner.job_id,
        "dataset_id": owner.dataset_id,
        "key_id": str(owner.key_id),
        "name": w.alice.candidate,
        "candidate": w.alice.candidate,
        "jobs": owner.job_id,
    }


def _request(
    method: str, path: str, op: dict[str, Any], ids: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, query and body of a call to ``op`` about the objects in ``ids``. A required
    parameter or a body the walk does not know fails the test: a new route is walked, or the
    walk is taught its parameters — never skipped."""
    query: dict[str, str] = {}
    for param in op.get("parameters", []):
        pname, where = param["name"], param["in"]
        if where == "path":
            assert pname in ids, f"{method} {path}: the walk has no value for {pname!r}"
            path = path.replace("{" + pname + "}", ids[pname])
        elif where == "query" and (pname in ids or param.get("required")):
            assert pname in ids, f"{method} {path}: the walk has no value for {pname!r}"
            query[pname] = ids[pname]
    content = op.get("requestBody", {}).get("content", {})
    body: dict[str, Any] = {}
    if "application/json" in content:
        schema = content["application/json"]["schema"].get("$ref", "").rsplit("/", 1)[-1]
        examples = {
            "PredictRequest": {"rows": [[0.0, 0.0, 0.0]]},
            "JobCreate": {"dataset": "iris", "spec": TINY},
        }
        assert schema in examples, f"{method} {path}: the walk has no body for {schema}"
        body["json"] = examples[schema]
    elif "multipart/form-data" in content:
        body["files"] = {"file": ("w.csv", csv_bytes(40), "text/csv")}
        body["data"] = {"label": LABEL}
    elif content:
        pytest.fail(f"{method} {path}: the walk sends no {sorted(content)} body")
    return path, query, body


def _call(
    c: httpx.Client, method: str, path: str, query: dict[str, str], body: dict[str, Any]
) -> tuple[int, str]:
    """Status and (the start of) the body; an event stream is read up to its first event."""
    with c.stream(method, path, params=query, **body) as r:
        text = ""
        for chunk in r.iter_text():
            text += chunk
            if "text/event-stream" in r.headers.get("content-type", "") and "\n\n" in text:
                break
        return r.status_code, text


def _names_an_object(op: dict[str, Any], ids: dict[str, str]) -> bool:
    return any(p["name"] in ids for p in op.get("parameters", []) if p["in"] in ("path", "query"))


def test_no_operation_shows_or_changes_another_owners_objects(world: World) -> None:
    """Every operation of the OpenAPI document that names an object is a 404 JSON error for
    Bob given Alice's ids (never data, never 5xx), while Alice's own GETs find them; every
    list is Bob's alone; and Alice's objects are all still there afterwards."""
    w = world
    a_ids = _id_values(w, w.alice)
    walked: list[str] = []
    with w.client(w.alice.key) as a, w.client(w.bob.key) as b:
        for method, path, op in _operations(w.server):
            if not path.startswith("/api/v1/"):
                continue
            if _names_an_object(op, a_ids):
                url, query, body = _request(method, path, op, a_ids)
                status, text = _call(b, method, url, query, body)
                assert status == 404, f"{method} {url} as bob: {status} {text[:500]}"
                assert re.match(r'\{"detail":"[^"]+', text), f"{method} {url}: {text[:300]}"
                if method == "GET":  # the ids are real: their owner finds them
                    status, text = _call(a, method, url, query, body)
                    assert status != 404 and status < 500, f"{method} {url}: {status} {text}"
                walked.append(f"{method} {path}")
            elif method == "GET":
                # a list or a stream of Bob's things: none of Alice's in it
                status, text = _call(b, method, path, {}, {})
                assert status == 200, f"{method} {path} as bob: {status} {text[:500]}"
                for secret in (w.alice.job_id, w.alice.dataset_id, "alice", w.alice.key[:12]):
                    assert secret not in text, f"{method} {path} shows bob {secret!r}"
        assert len(walked) >= MIN_ID_OPERATIONS, walked
        # Bob's lists do hold his own things (a list that is always empty proves nothing)
        assert [j["id"] for j in b.get("/api/v1/jobs").json()["data"]] == [w.bob.job_id]
        assert [d["id"] for d in b.get("/api/v1/datasets").json()["data"]] == [w.bob.dataset_id]
        assert {k["owner"] for k in b.get("/api/v1/keys").json()["data"]} == {"bob"}
        # nothing Bob's DELETEs and POSTs aimed at changed Alice's objects
        job = a.get(f"/api/v1/jobs/{w.alice.job_id}").json()
        assert job["state"] == w.alice_job_state and not job["cancel_requested"]
        assert a.get(f"/api/v1/datasets/{w.alice.dataset_id}").status_code == 200
        keys = {k["id"]: k for k in a.get("/api/v1/keys").json()["data"]}
        assert keys[w.alice.key_id]["revoked"] is False
        # and Bob cannot start a job on Alice's dataset
        r = b.post("/api/v1/jobs", json={"dataset_id": w.alice.dataset_id, "spec": TINY})
        assert r.status_code == 404, r.text


@pytest.mark.parametrize("credentials", ["none", "unknown", "revoked"])
def test_every_api_operation_needs_a_valid_key(world: World, credentials: str) -> None:
    """No key, a key that never existed and a revoked key are a 401 on every /api/v1
    operation, with WWW-Authenticate: Bearer."""
    w = world
    key: str | None = None
    if credentials == "unknown":
        key = "aml_" + "x" * 43
    elif credentials == "revoked":
        with w.client(w.alice.key) as a:
            created = a.post("/api/v1/keys").json()
            w.issued.append(created["key"])
            assert a.delete(f"/api/v1/keys/{created['id']}").status_code == 204
        key = created["key"]
    ids = _id_values(w, w.alice)
    walked = 0
    with w.client(key) as c:
        for method, path, op in _operations(w.server):
            if not path.startswith("/api/v1/"):
                continue
            url, query, body = _request(method, path, op, ids)
            status, text = _call(c, method, url, query, body)
            assert status == 401, f"{method} {url} with {credentials} key: {status} {text[:300]}"
            walked += 1
        assert walked >= MIN_API_OPERATIONS
        r = c.get("/api/v1/jobs")
        assert r.headers["www-authenticate"] == "Bearer"
        assert "detail" in r.json()


# ---- keys: REST ---------------------------------------------------------------------------------
def _signed_in(server: Server, key: str) -> httpx.Client:
    """A dashboard session for ``key``, signed in through the form as a browser does."""
    c = httpx.Client(base_url=server.url, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/signin").text)
    assert csrf is not None
    r = c.post("/signin", data={"key": key, "csrf": csrf.group(1), "next": "/jobs"})
    assert r.status_code == 303 and r.headers["location"] == "/jobs", r.text
    return c


def _csrf(c: httpx.Client, page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', c.get(page).text)
    assert found is not None, page
    return found.group(1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_key_revoked_through_the_api_is_refused_at_once(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """A second key shown once, listed without secrets, revoked by itself: its very next API
    request is a 401 and its dashboard session is over; the owner's other key still works."""
    if backend == "sqlite":
        w: World = request.getfixturevalue("world")
        server, first, issued = w.server, w.alice.key, w.issued
    else:
        server = request.getfixturevalue("quota_server")
        first, issued = server.create_key("carol"), []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        mine = {"Authorization": f"Bearer {first}"}
        r = c.post("/api/v1/keys", headers=mine)
        assert r.status_code == 201, r.text
        created = r.json()
        key, key_id = created["key"], created["id"]
        issued.append(key)
        assert key.startswith("aml_") and created["prefix"] == key[:12]
        assert created["revoked"] is False and created["last_used_at"] is None
        assert "key_hash" not in created
        second = {"Authorization": f"Bearer {key}"}
        listed = c.get("/api/v1/keys", headers=second)
        assert listed.status_code == 200
        assert key_id in [k["id"] for k in listed.json()["data"]]
        assert key not in listed.text and sha256(key) not in listed.text
        assert all(set(k) == set(created) - {"key"} for k in listed.json()["data"])
        dashboard = _signed_in(server, key)
        assert dashboard.get("/jobs").status_code == 200
        # the job-scoped reads find the key and the job in one statement: a valid key and no
        # such job is a 404 ...
        job_reads = ("", "/iterations", "/candidates", "/events", "/model/card")
        for path in job_reads:
            r = c.get(f"/api/v1/jobs/nope{path}", headers=second)
            assert r.status_code == 404 and r.json() == {"detail": "job 'nope' not found"}, path

        assert c.delete(f"/api/v1/keys/{key_id}", headers=second).status_code == 204
        refused = c.get("/api/v1/jobs", headers=second)
        assert refused.status_code == 401
        assert refused.json() == {"detail": "unknown or revoked API key"}
        # ... and a revoked key a 401 there too, never a 404 that would tell about the job
        for path in job_reads:
            r = c.get(f"/api/v1/jobs/nope{path}", headers=second)
            assert r.status_code == 401, (path, r.text)
            assert r.json() == {"detail": "unknown or revoked API key"}, path
        page = dashboard.get("/jobs")
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        dashboard.close()

        assert c.get("/api/v1/jobs", headers=mine).status_code == 200
        rows = {k["id"]: k for k in c.get("/api/v1/keys", headers=mine).json()["data"]}
        assert rows[key_id]["revoked"] is True and rows[key_id]["last_used_at"] is not None
        # revoking again changes nothing; an id that is no key of this owner is a 404
        assert c.delete(f"/api/v1/keys/{key_id}", headers=mine).status_code == 204
        missing = c.delete("/api/v1/keys/999999", headers=mine)
        assert missing.status_code == 404 and missing.json() == {
            "detail": "API key 999999 not found"
        }
        for bad in ("0", "abc", str(2**40)):
            r = c.delete(f"/api/v1/keys/{bad}", headers=mine)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path.key_id", r.text


# ---- keys: command line -------------------------------------------------------------------------
def _automl(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AUTOML_DATABASE_URL=db, COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [AUTOML, "apikey", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_command_line_lists_and_revokes_keys(tmp_path: Path) -> None:
    """`automl apikey list [--owner]` shows ids, owners, prefixes, dates and revocation but
    never a key or its hash; `revoke ID` makes the key fail authentication; an unknown id is
    exit 2 with a sentence naming it."""
    from api.auth import owner_for_key
    from api.db import make_engine, make_session_factory

    db = f"sqlite:///{tmp_path / 'keys.db'}"
    keys: dict[str, list[str]] = {}
    for owner in ("alice", "alice", "bob"):
        made = _automl(db, "create", "--owner", owner)
        assert made.returncode == 0, made.stderr
        keys.setdefault(owner, []).append(made.stdout.strip().splitlines()[-1])
    listed = _automl(db, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split() == ["id", "owner", "prefix", "created_at", "last_used_at", "revoked"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in rows] == [
        ("1", "alice", keys["alice"][0][:12], "-", "no"),
        ("2", "alice", keys["alice"][1][:12], "-", "no"),
        ("3", "bob", keys["bob"][0][:12], "-", "no"),
    ]
    for key in (*keys["alice"], *keys["bob"]):
        assert key not in listed.stdout and sha256(key) not in listed.stdout
    only_bob = _automl(db, "list", "--owner", "bob").stdout.strip().splitlines()
    assert [line.split()[1] for line in only_bob[1:]] == ["bob"]

    factory = make_session_factory(make_engine(db))
    assert owner_for_key(factory, keys["alice"][0]) == "alice"
    revoked = _automl(db, "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    assert "API key 1 (owner alice" in revoked.stdout and "revoked" in revoked.stdout
    assert owner_for_key(factory, keys["alice"][0]) is None
    assert owner_for_key(factory, keys["alice"][1]) == "alice"  # the other key is untouched
    assert "already revoked" in _automl(db, "revoke", "1").stdout
    after = [line.split() for line in _automl(db, "list").stdout.strip().splitlines()[1:]]
    assert [r[-1] for r in after] == ["yes", "no", "no"]

    unknown = _automl(db, "revoke", "42")
    assert unknown.returncode == 2
    assert "no API key with id 42" in unknown.stderr
    assert _automl(db, "revoke", "abc").returncode == 2


# ---- quotas -------------------------------------------------------------------------------------
def _padded_csv(size: int, seed: int) -> bytes:
    """A valid CSV of exactly ``size`` bytes: a constant column ``pad`` whose first cell is
    as many zeros as it takes (still the number 0)."""
    lines = csv_bytes(30, seed).decode().splitlines()
    rows = [lines[0] + ",pad"] + [f"{line},0" for line in lines[1:]]
    missing = size - len("\n".join(rows) + "\n")
    assert missing >= 0, (size, missing)
    rows[1] += "0" * missing
    out = ("\n".join(rows) + "\n").encode()
    assert len(out) == size
    return out


def test_the_job_quota_is_a_429_with_retry_after(quota_server: Server) -> None:
    """Two queued jobs are an owner's limit: a third (or resuming a cancelled one) is a 429
    with Retry-After and the API's error body, another owner is not affected, cancelling frees
    a place, and the dashboard's form shows the message."""
    server = quota_server
    dave, erin = server.create_key("dave"), server.create_key("erin")
    spec = {"dataset": "iris", "spec": TINY}
    with server.client(dave) as d, server.client(erin) as e:
        first = d.post("/api/v1/jobs", json=spec)
        second = d.post("/api/v1/jobs", json=spec)
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        refused = d.post("/api/v1/jobs", json=spec)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "30"
        body = refused.json()
        assert set(body) == {"detail", "retry_after_s"} and body["retry_after_s"] == 30
        assert "AUTOML_MAX_JOBS_PER_OWNER=2" in body["detail"] and "2 queued" in body["detail"]
        assert d.get("/api/v1/jobs").json()["count"] == 2
        assert e.post("/api/v1/jobs", json=spec).status_code == 201  # per owner

        browser = _signed_in(server, dave)
        form = {"csrf": _csrf(browser, "/jobs/new"), "dataset": "builtin:iris", "spec": "{}"}
        page = browser.post("/jobs/new", data=form)
        assert page.status_code == 422 and "AUTOML_MAX_JOBS_PER_OWNER=2" in page.text
        browser.close()

        cancelled = d.post(f"/api/v1/jobs/{first.json()['id']}/cancel").json()
        assert cancelled["state"] == "cancelled"
        third = d.post("/api/v1/jobs", json=spec)
        assert third.status_code == 201, third.text
        resumed = d.post(f"/api/v1/jobs/{first.json()['id']}/resume")
        assert resumed.status_code == 429 and resumed.headers["retry-after"] == "30"
        assert d.get(f"/api/v1/jobs/{first.json()['id']}").json()["state"] == "cancelled"


def test_the_daily_upload_quota_is_a_429_with_retry_after(quota_server: Server) -> None:
    """20 KiB a day: two 9 KiB uploads pass, a third is a 429 whose Retry-After is when the
    first ages out (about 24 h) and stores nothing; a file larger than the whole quota is a
    413; another owner still uploads; the dashboard's upload form shows the message; a deleted
    dataset still counts for the day."""
    server = quota_server
    frank, gina = server.create_key("frank"), server.create_key("gina")
    size = 9 * 1024
    with server.client(frank) as f, server.client(gina) as g:
        for seed in (1, 2):
            r = _upload(f, f"d{seed}.csv", _padded_csv(size, seed))
            assert r.status_code == 201, r.text
            assert r.json()["size_bytes"] == size
        refused = _upload(f, "d3.csv", _padded_csv(size, 3))
        assert refused.status_code == 429, refused.text
        retry = int(refused.headers["retry-after"])
        assert 24 * 3600 - 300 < retry <= 24 * 3600
        body = refused.json()
        assert set(body) == {"detail", "retry_after_s"} and body["retry_after_s"] == retry
        assert "AUTOML_MAX_UPLOAD_MB_PER_DAY" in body["detail"]
        assert "try again in 23 h" in body["detail"] or "try again in 24 h" in body["detail"]
        assert f.get("/api/v1/datasets").json()["count"] == 2

        whole = _upload(g, "big.csv", _padded_csv(21 * 1024, 4))
        assert whole.status_code == 413 and "AUTOML_MAX_UPLOAD_MB_PER_DAY" in whole.text
        assert _upload(g, "g.csv", _padded_csv(size, 5)).status_code == 201

        browser = _signed_in(server, frank)
        page = browser.post(
            "/datasets",
            data={"csrf": _csrf(browser, "/datasets"), "label": LABEL},
            files={"file": ("d4.csv", _padded_csv(size, 6), "text/csv")},
        )
        assert page.status_code == 429 and "AUTOML_MAX_UPLOAD_MB_PER_DAY" in page.text
        browser.close()
        assert f.get("/api/v1/datasets").json()["count"] == 2
        # deleting a dataset does not give its bytes back for the day
        first = f.get("/api/v1/datasets").json()["data"][0]["id"]
        assert f.delete(f"/api/v1/datasets/{first}").status_code == 204
        assert _upload(f, "d5.csv", _padded_csv(size, 7)).status_code == 429
        assert f.get("/api/v1/datasets").json()["count"] == 1


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_retry_after_is_when_enough_uploads_age_out(db_url: str) -> None:
    """The quota counts the owner's uploads of the last 24 hours only, and Retry-After is
    when the oldest of them have aged out far enough for this file to fit."""
    from api.db import make_engine, make_session_factory, session_scope
    from api.errors import PayloadTooLargeError, TooManyRequestsError
    from api.migrate import upgrade
    from api.models import Upload, utcnow
    from api.services.quotas import QuotaLimits, QuotaService

    engine = make_engine(db_url)
    upgrade(engine)
    limits = QuotaLimits(max_active_jobs=1, max_upload_bytes_per_day=20_000)
    factory = make_session_factory(engine, info=limits.session_info())
    now = utcnow()
    with session_scope(factory) as s:
        for owner, hours_ago, size in [
            ("hal", 30, 50_000),  # older than a day: no longer counts
            ("hal", 23, 6_000),  # ages out in 1 h
            ("hal", 10, 6_000),  # in 14 h
            ("hal", 1, 6_000),  # in 23 h
            ("ivy", 1, 19_000),  # another owner's
        ]:
            s.add(Upload(owner=owner, size_bytes=size, created_at=now - timedelta(hours=hours_ago)))

    def retry_after(owner: str, incoming: int) -> int | None:
        with session_scope(factory) as s:
            try:
                QuotaService.of(s).check_upload(owner, io.BytesIO(b"x" * incoming))
            except TooManyRequestsError as exc:
                assert exc.headers() == {"Retry-After": str(exc.retry_after_s)}
                return exc.retry_after_s
        return None

    assert retry_after("hal", 2_000) is None  # 18,000 + 2,000 fits exactly
    assert math.isclose(retry_after("hal", 5_000) or 0, 3600, abs_tol=60)
    assert math.isclose(retry_after("hal", 9_000) or 0, 14 * 3600, abs_tol=60)
    assert math.isclose(retry_after("hal", 19_000) or 0, 23 * 3600, abs_tol=60)
    assert retry_after("ivy", 1_000) is None
    with session_scope(factory) as s, pytest.raises(PayloadTooLargeError, match="larger than"):
        QuotaService.of(s).check_upload("ivy", io.BytesIO(b"x" * 20_001))
    # a session without limits (a script's own factory) enforces none
    with session_scope(make_session_factory(engine)) as s:
        QuotaService.of(s).check_upload("hal", io.BytesIO(b"x" * 19_000))
    engine.dispose()


# ---- secrets stay secret ------------------------------------------------------------------------
def test_no_key_or_hash_in_logs_events_or_the_database(world: World) -> None:
    """After keys made on the command line and over the API, jobs run, a dashboard sign-in and
    requests refused with revoked keys: no key, nor its sha256, in the server's output, in any
    job's events (API and table), or anywhere in the database but the api_keys hashes."""
    w = world
    with w.client(w.alice.key) as a:
        _signed_in(w.server, w.alice.key).close()
        for key in w.issued:  # valid and revoked keys alike pass through the auth path
            with w.client(key) as c:
                assert c.get("/api/v1/jobs").status_code in (200, 401)
        log = w.server.log()
        assert "GET /api/v1/jobs" in log and "POST /api/v1/keys" in log  # requests are logged
        secrets = [(key, sha256(key)) for key in w.issued]
        assert len(secrets) >= 4
        events_text = ""
        for owner in (w.alice, w.bob):
            with w.client(owner.key) as c:
                r = c.get(f"/api/v1/jobs/{owner.job_id}/events", params={"limit": 1000})
                assert r.status_code == 200 and r.json()["count"] > 0
                events_text += r.text
        assert a.get("/api/v1/keys").status_code == 200
    db = sqlite3.connect(w.server.db_url.removeprefix("sqlite:///"))
    try:
        table = "\n".join(repr(row) for row in db.execute("SELECT * FROM events"))
        dump = [line for line in db.iterdump() if not line.startswith('INSERT INTO "api_keys"')]
        stored = {h for (h,) in db.execute("SELECT key_hash FROM api_keys")}
    finally:
        db.close()
    assert "job queued" in table
    assert {h for _, h in secrets} <= stored  # the hashes are where they belong, and only there
    for key, hashed in secrets:
        for where, text in [
            ("the server's output", log),
            ("the events API", events_text),
            ("the events table", table),
            ("the database", "\n".join(dump)),
        ]:
            assert key not in text and key[12:] not in text, f"a key is in {where}"
            assert hashed not in text, f"a key's hash is in {where}"
