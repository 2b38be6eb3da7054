"""History across jobs over a real server (in-process executor) on SQLite and PostgreSQL: a
finished job's candidates in its owner's history, the ranking endpoint, owner isolation, bad
input, warm-started jobs, the command line and the new-job form."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.db import make_engine, make_session_factory, session_scope
from api.models import HistoryEntry
from api.services.history import record_job
from automl.meta import meta_from_counts, similarity
from tests.integration.conftest import TINY, Server, csv_bytes, start_server, stop_server, wait_for

# the tiny spec without the evaluation phase: the history is written by the search alone
FAST: dict[str, Any] = {**TINY, "evaluation": {"enabled": False}}
IRIS = meta_from_counts("classification", 150, 4, None, [50, 50, 50])
# a table like iris but three times wider and a little imbalanced: similar, not the same
WINE_LIKE = meta_from_counts("classification", 178, 13, None, [59, 71, 48])
DIGITS_LIKE = meta_from_counts("classification", 1797, 64, [8, 8, 1], [180] * 10)
REGRESSION = meta_from_counts("regression", 150, 4, None, None)
# a width no default space offers: these configurations never fit a warm start of the tiny spec
ODD = {"family": "dense", "depth": 1, "width": 4000, "optimizer": "adam", "learning_rate": 0.001}


@dataclass
class World:
    server: Server
    bob: str
    job_id: str  # the owner "local"'s finished iris job
    upload_id: str  # the owner "local"'s upload


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One server per backend; the owner "local" (the first key) ran one tiny iris job."""
    workdir = tmp_path_factory.mktemp(f"history-{request.param}")
    server, name = start_server(workdir, request.param, request, AUTOML_EXECUTOR="in_process")
    try:
        bob = server.create_key("bob")
        with server.client() as c:
            r = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": FAST})
            assert r.status_code == 201, r.text
            job = wait_for(c, r.json()["id"], {"succeeded", "failed"})
            assert job["state"] == "succeeded", job
            r = c.post(
                "/api/v1/datasets",
                files={"file": ("updown.csv", csv_bytes(), "text/csv")},
                data={"label": "direction"},
            )
            assert r.status_code == 201, r.text
        yield World(server, bob, job["id"], r.json()["id"])
    finally:
        stop_server(server, name)


def _sessions(server: Server) -> Any:
    return make_session_factory(make_engine(server.db_url))


def _candidates(c: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    return c.get(f"/api/v1/jobs/{job_id}/candidates", params={"limit": 500}).json()["data"]


def _ranking(c: httpx.Client, **params: Any) -> httpx.Response:
    return c.get("/api/v1/history/configurations", params=params)


def _entry(owner: str, job_id: str, name: str, meta: dict[str, Any], objective: float) -> Any:
    return HistoryEntry(
        owner=owner,
        job_id=job_id,
        candidate=name,
        iteration=0,
        origin="sampled",
        dataset_id=None,
        dataset_name=f"like-{meta['features']}",
        task=meta["task"],
        meta=meta,
        hparams={**ODD, "learning_rate": objective / 100},
        objective=objective,
        loss=objective,
        complexity=0.0,
        metrics={"accuracy": 0.5},
    )


# ---- written by the controller ------------------------------------------------------------------
def test_a_finished_jobs_candidates_are_in_its_owners_history(world: World) -> None:
    """Written as the job ran (the controller records each completed iteration)."""
    with world.server.client() as c:
        finished = [
            x for x in _candidates(c, world.job_id) if x["state"] in ("completed", "stopped_early")
        ]
        r = _ranking(c, dataset="iris", limit=100)
    assert r.status_code == 200, r.text
    body = r.json()
    mine = [d for d in body["data"] if d["job_id"] == world.job_id]
    assert finished and mine
    assert body["dataset"] == "iris" and body["meta"] == IRIS
    assert {str(sorted(d["hparams"].items())) for d in mine} == {
        str(sorted(x["hparams"].items())) for x in finished
    }
    best = min(finished, key=lambda x: x["objective"])
    assert mine[0]["objective"] == pytest.approx(best["objective"])
    assert mine[0]["similarity"] == 1.0 and mine[0]["score"] == 1.0
    assert mine[0]["relative_objective"] == 0.0 and mine[0]["dataset"] == "iris"
    assert mine[0]["metrics"] == best["metrics"] and mine[0]["candidate"] == best["name"]
    # recording the job again adds nothing: each candidate is in the history once
    with session_scope(_sessions(world.server)) as s:
        assert record_job(s, world.job_id) == 0
        assert s.query(HistoryEntry).filter_by(job_id=world.job_id).count() == len(finished)


# ---- the ranking --------------------------------------------------------------------------------
def test_ranking_by_similarity_and_objective_within_each_job(world: World) -> None:
    with session_scope(_sessions(world.server)) as s:
        record_job(s, world.job_id)  # a no-op where the controller recorded it already
        for name, f in (("w_best", 0.2), ("w_worst", 0.6), ("w_mid", 0.3)):
            s.add(_entry("local", "wine-job", name, WINE_LIKE, f))
        s.add(_entry("local", "reg-job", "r", REGRESSION, 0.01))
        s.add(_entry("bob", "bob-job", "b", DIGITS_LIKE, 0.1))
    with world.server.client() as c:
        body = _ranking(c, dataset="iris", limit=100).json()
        top = _ranking(c, dataset="iris", limit=2).json()
    data = body["data"]
    scores = [d["score"] for d in data]
    assert scores == sorted(scores, reverse=True)
    assert top["data"] == data[:2] and top["count"] == body["count"] == len(data)
    # the regression entry (another task) and Bob's never appear
    assert {d["job_id"] for d in data} == {world.job_id, "wine-job"}
    wine = {d["candidate"]: d for d in data if d["job_id"] == "wine-job"}
    sim = round(similarity(IRIS, WINE_LIKE), 6)
    assert 0.3 < sim < 1
    assert wine["w_best"]["similarity"] == sim and wine["w_best"]["score"] == sim
    assert wine["w_worst"]["relative_objective"] == 1.0
    assert wine["w_worst"]["score"] == pytest.approx(sim / 2, abs=1e-6)
    assert wine["w_mid"]["relative_objective"] == pytest.approx(0.25)
    # on the same data the job's best comes first; the wine job's best before its worst
    assert data[0]["job_id"] == world.job_id and data[0]["score"] == 1.0
    order = [d["candidate"] for d in data]
    assert order.index("w_best") < order.index("w_mid") < order.index("w_worst")


def test_another_owner_sees_only_their_own_history(world: World) -> None:
    with session_scope(_sessions(world.server)) as s:
        if not s.query(HistoryEntry).filter_by(owner="bob").count():
            s.add(_entry("bob", "bob-job", "b", DIGITS_LIKE, 0.1))
    with world.server.client(world.bob) as b:
        mine = _ranking(b, dataset="iris", limit=100)
        theirs = _ranking(b, dataset_id=world.upload_id)
    assert mine.status_code == 200
    assert [d["job_id"] for d in mine.json()["data"]] == ["bob-job"]
    assert mine.json()["data"][0]["similarity"] < 0.3  # digits-like data is not like iris
    assert theirs.status_code == 404, theirs.text
    assert theirs.json()["errors"][0]["field"] == "query.dataset_id"
    with world.server.client() as c:
        own = _ranking(c, dataset_id=world.upload_id)
    assert own.status_code == 200 and own.json()["dataset"] == "updown"
    assert own.json()["meta"]["rows"] == 60 and own.json()["meta"]["classes"] == 2


@pytest.mark.parametrize(
    ("params", "status", "field", "message"),
    [
        ({"dataset": "iris", "dataset_id": "x"}, 422, "query.dataset_id", "not both"),
        ({}, 422, "query.dataset", "give dataset_id"),
        ({"dataset": "imagenet"}, 404, "query.dataset", "unknown dataset 'imagenet'"),
        ({"dataset_id": "f" * 32}, 404, "query.dataset_id", "not found"),
        ({"dataset_id": "a\x00b"}, 404, "query.dataset_id", "not found"),
        ({"dataset": "iris", "limit": 0}, 422, "query.limit", "greater than or equal to 1"),
        ({"dataset": "iris", "limit": 101}, 422, "query.limit", "less than or equal to 100"),
    ],
)
def test_bad_input_names_the_field(
    world: World, params: dict[str, Any], status: int, field: str, message: str
) -> None:
    with world.server.client() as c:
        r = _ranking(c, **params)
    assert r.status_code == status, r.text
    assert r.json()["errors"][0]["field"] == field
    assert message in r.json()["detail"]


# ---- warm start ---------------------------------------------------------------------------------
def test_a_warm_started_job_stores_and_tries_the_best_past_configurations(world: World) -> None:
    with session_scope(_sessions(world.server)) as s:
        record_job(s, world.job_id)
    spec = {**FAST, "max_iterations": 1, "warm_start": True, "seed": 3}
    with world.server.client() as c:
        ranking = _ranking(c, dataset="iris", limit=100).json()["data"]
        # the wine-like entries (if any) have a width the spec does not offer: left out
        expected = [d["hparams"] for d in ranking if d["job_id"] == world.job_id][:2]
        r = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec})
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["spec"]["warm_start"] is True
        assert job["spec"]["warm_start_configurations"] == expected and len(expected) == 2
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        first = [x for x in _candidates(c, job["id"]) if x["iteration"] == 0]
        events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["data"]
        # the stored spec alone reproduces the search
        assert c.get(f"/api/v1/jobs/{job['id']}").json()["spec"] == job["spec"]
    assert [x["origin"] for x in first] == ["history", "history"]
    assert [x["hparams"] for x in sorted(first, key=lambda x: x["name"])] == expected
    warm = [e for e in events if e["message"].startswith("warm start:")]
    assert len(warm) == 1 and "2 configuration(s) from history" in warm[0]["message"]
    assert warm[0]["data"]["warm_start"]["configurations"] == 2
    assert world.job_id[:8] in warm[0]["message"]


def test_a_warm_start_without_similar_history_starts_cold_and_says_so(world: World) -> None:
    spec = {**FAST, "warm_start": True}
    with world.server.client(world.bob) as b:
        r = b.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec})
        assert r.status_code == 201, r.text
        job = r.json()
        b.post(f"/api/v1/jobs/{job['id']}/cancel")
        events = b.get(f"/api/v1/jobs/{job['id']}/events").json()["data"]
    assert job["spec"]["warm_start"] is True and job["spec"]["warm_start_configurations"] == []
    assert any(
        e["message"].startswith("warm start: no configuration in your history fits iris")
        for e in events
    ), events


def test_configurations_given_in_the_spec_are_kept_and_misfits_named(world: World) -> None:
    good = {"family": "dense", "depth": 1, "width": 64, "batch_size": 64}
    spec = {**FAST, "warm_start": True, "warm_start_configurations": [good, ODD]}
    with world.server.client(world.bob) as b:
        r = b.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec})
        assert r.status_code == 201, r.text
        job = r.json()
        b.post(f"/api/v1/jobs/{job['id']}/cancel")
        events = b.get(f"/api/v1/jobs/{job['id']}/events").json()["data"]
        bad = b.post(
            "/api/v1/jobs",
            json={"dataset": "iris", "spec": {"warm_start_configurations": [{"depth": 2}]}},
        )
    assert job["spec"]["warm_start_configurations"] == [good, ODD]
    message = next(e["message"] for e in events if e["message"].startswith("warm start:"))
    assert "1 of 2 configuration(s) given in the spec" in message
    assert "configuration 2: width=4000 is not one of the spec's choices" in message
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "spec.warm_start_configurations"


# ---- command line and dashboard -----------------------------------------------------------------
def test_the_command_line_prints_the_ranking(world: World) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", "history", *args],
            env=world.server.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    with world.server.client() as c:
        api = _ranking(c, dataset="iris", limit=3).json()["data"]
    out = cli("--dataset", "iris", "--owner", "local", "--limit", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("iris: 3 of ")
    assert lines[1].split()[:4] == ["#", "score", "similarity", "F"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1], r[7]) for r in rows] == [
        (str(i), f"{d['score']:.3f}", d["candidate"]) for i, d in enumerate(api, 1)
    ]
    assert all(r[5] == "local" for r in rows)
    bad = cli("--dataset", "iris", "--dataset-id", "x")
    assert bad.returncode == 2 and "--dataset-id: give exactly one" in bad.stderr
    missing = cli("--dataset-id", "f" * 32)
    assert missing.returncode == 2 and "not found" in missing.stderr


@contextmanager
def _signed_in(server: Server, key: str) -> Iterator[httpx.Client]:
    """A dashboard session, signed in through the form as a browser does."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/signin").text)
        assert csrf is not None
        r = c.post("/signin", data={"key": key, "csrf": csrf.group(1), "next": "/jobs"})
        assert r.status_code == 303, r.text
        yield c


def test_the_new_job_form_offers_a_warm_start_and_the_table_shows_history(world: World) -> None:
    with session_scope(_sessions(world.server)) as s:
        record_job(s, world.job_id)
    assert world.server.first_key is not None
    with _signed_in(world.server, world.server.first_key) as page:
        html = page.get("/jobs/new").text
        assert 'name="warm_start"' in html
        iris = re.search(r'<option value="builtin:iris"[^>]*>([^<]*)</option>', html)
        assert iris is not None and re.search(r"· history: \d+$", iris.group(1))
        assert re.search(r'data-warm-start="builtin:iris">iris \(\d+ configurations?\)', html)
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None
        form = {
            "csrf": csrf.group(1),
            "dataset": "builtin:iris",
            "spec": '{"max_iterations": 1, "epochs": 1, "batch_size": [64], '
            '"candidates_per_iteration": 2, "evaluation": {"enabled": false}}',
            "warm_start": "on",
        }
        r = page.post("/jobs/new", data=form)
        assert r.status_code == 303, r.text
        job_id = r.headers["location"].rsplit("/", 1)[-1]
        with world.server.client() as c:
            job = wait_for(c, job_id, {"succeeded", "failed"})
        assert job["spec"]["warm_start"] is True and job["spec"]["warm_start_configurations"]
        table = page.get(f"/jobs/{job_id}", params={"tab": "candidates"}).text
        assert '<td class="origin">history</td>' in table
    # Carol's only history is on digits-like data: the form offers it for digits, not for iris
    # (not Bob: the jobs other tests submit for him on iris may finish an iteration first)
    carol = world.server.create_key("carol")
    with session_scope(_sessions(world.server)) as s:
        s.add(_entry("carol", "carol-job", "c", DIGITS_LIKE, 0.1))
    with _signed_in(world.server, carol) as page:
        html = page.get("/jobs/new").text
    iris = re.search(r'<option value="builtin:iris"[^>]*>([^<]*)</option>', html)
    digits = re.search(r'<option value="builtin:digits"[^>]*>([^<]*)</option>', html)
    assert iris is not None and "history" not in iris.group(1)
    assert digits is not None and digits.group(1).endswith("· history: 1")
    assert 'name="warm_start"' in html


def test_a_deleted_jobs_history_stays(world: World) -> None:
    with session_scope(_sessions(world.server)) as s:
        record_job(s, world.job_id)
        before = s.query(HistoryEntry).filter_by(job_id=world.job_id).count()
    with world.server.client() as c:
        assert c.delete(f"/api/v1/jobs/{world.job_id}").status_code == 204
        data = _ranking(c, dataset="iris", limit=100).json()["data"]
    assert before and any(d["job_id"] == world.job_id for d in data)
    with session_scope(_sessions(world.server)) as s:
        assert s.query(HistoryEntry).filter_by(job_id=world.job_id).count() == before
