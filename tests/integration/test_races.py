"""Races and crashes that lose work, over real servers and databases: cancel/resume racing the
controller's claim, a second service on the same database, kill -9 during the evaluation phase,
a cancel during evaluation, a job that keeps crashing its service, concurrent first downloads,
and deletes whose commit fails."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tests.integration.conftest import TINY, Server, start_server, stop_server, wait_for

# "solo" ensembles (each new subnetwork alone) with this seed: iteration 1's best candidate does
# not beat iteration 0's (F 0.85 against 0.77, measured), so the search stops on an iteration that
# did not improve; CV folds make the evaluation phase last long enough to act during it
NO_GROWTH = {
    "max_iterations": 3,
    "candidates_per_iteration": 2,
    "epochs": 3,
    "seed": 0,
    "batch_size": [64],
    "ensemble_strategies": ["solo"],
    "evaluation": {"cv_folds": 3, "sparsities": [0.5, 0.75], "fine_tune_epochs": 2},
}


def state_events(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    events = client.get(f"/api/v1/jobs/{job_id}/events?limit=1000").json()["data"]
    return [e for e in events if e["kind"] in ("state", "error") and "state" in e["data"]]


def assert_one_runner_at_a_time(client: httpx.Client, job_id: str) -> None:
    """The job's state history never has a run starting while another is still open: every
    'running' is followed by an end (queued, cancelled, failed, succeeded) before the next."""
    open_run = False
    history = [e["data"]["state"] for e in state_events(client, job_id)]
    for state in history:
        if state == "running":
            assert not open_run, f"two runs at once: {history}"
            open_run = True
        elif state in ("queued", "cancelled", "failed", "succeeded"):
            open_run = False
    assert history[-1] == "succeeded", history


def test_cancel_and_resume_racing_the_claim_leave_one_runner_and_lose_nothing(
    server: Server,
) -> None:
    spec = {**TINY, "seed": 9}
    with server.client() as c, server.client() as c2:
        job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
        stop = time.monotonic() + 8
        codes: list[int] = []

        def hammer(client: httpx.Client, action: str) -> None:
            while time.monotonic() < stop:
                codes.append(client.post(f"/api/v1/jobs/{job['id']}/{action}").status_code)

        threads = [
            threading.Thread(target=hammer, args=(c, "cancel")),
            threading.Thread(target=hammer, args=(c2, "resume")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # every answer was a decision, never an error from a lost race
        assert set(codes) <= {200, 409}, sorted(set(codes))
        assert 200 in codes
        body = c.get(f"/api/v1/jobs/{job['id']}").json()
        while body["state"] not in ("succeeded", "failed"):
            if body["state"] == "cancelled":
                c.post(f"/api/v1/jobs/{job['id']}/resume")
            time.sleep(0.3)
            body = c.get(f"/api/v1/jobs/{job['id']}").json()
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done["error"]
        assert_one_runner_at_a_time(c, job["id"])
        running = [e for e in state_events(c, job["id"]) if e["data"]["state"] == "running"]
        assert len(running) >= 2, "the loop never raced a claimed job"
        cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=500").json()["data"]
        assert sorted(x["name"] for x in cands) == ["t0_c0", "t0_c1", "t1_c0", "t1_c1"]
        assert all(x["state"] == "completed" for x in cands)
        # no files lost: every member of the final ensemble still has its weights on disk
        its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["data"]
        members = its[-1]["ensemble"]["members"]
        weights = server.workdir / "artifacts" / "jobs" / job["id"] / "weights"
        assert members and all((weights / f"{m}.npz").is_file() for m in members)
        assert c.get(f"/api/v1/jobs/{job['id']}/model").status_code == 200


@pytest.mark.slow
def test_a_second_service_on_the_same_database_leaves_a_live_job_alone(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    first, name = start_server(tmp_path / "a", "postgresql", request)
    second = None
    try:
        with first.client() as c:
            spec = {**TINY, "max_iterations": 3, "epochs": 5, "force_grow": True, "seed": 3}
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
            wait_for(c, job["id"], {"running"})
            (tmp_path / "b").mkdir()
            # the second service starts while the first runs the job (no Ray: in process)
            second = Server(
                first.db_url, tmp_path / "b", extra_env={"AUTOML_EXECUTOR": "in_process"}
            )
            second.start()
            time.sleep(8)  # longer than the lease timeout: a live lease must keep its job
            done = wait_for(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 1
            assert_one_runner_at_a_time(c, job["id"])
            messages = [
                e["message"] for e in c.get(f"/api/v1/jobs/{job['id']}/events").json()["data"]
            ]
            assert not any("the service stopped while this job ran" in m for m in messages)
    finally:
        if second is not None:
            second.kill()
        stop_server(first, name)


@pytest.mark.slow
# SQLite only: the lease and takeover on PostgreSQL are covered by test_restart's kill -9 and by
# the second-service test; this one is about the evaluation phase and the replay
@pytest.mark.parametrize("backend", ["sqlite"])
def test_kill_9_during_evaluation_after_a_non_improving_iteration_then_restart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server, name = start_server(tmp_path, backend, request)
    try:
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": NO_GROWTH}).json()
            wait_for(c, job["id"], {"evaluating"})
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["data"]
            # what this test is about: the last stored iteration did not improve
            assert len(its) < NO_GROWTH["max_iterations"] and not its[-1]["improved"], its
            trained = {
                e["data"]["candidate"]
                for e in c.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["data"]
                if e["message"].endswith("started training")
            }
        server.kill()
        server.start()
        with server.client() as c:
            done = wait_for(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 2 and done["stop_reason"] == "no_improvement"
            assert_one_runner_at_a_time(c, job["id"])
            # the search was not run again: same two iterations, no candidate trained again
            after = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["data"]
            assert [(i["iteration"], i["chosen"]) for i in after] == [
                (i["iteration"], i["chosen"]) for i in its
            ]
            events = c.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["data"]
            starts = [
                e["data"]["candidate"] for e in events if e["message"].endswith("started training")
            ]
            assert sorted(starts) == sorted(trained)
            assert sorted(trained) == [f"t{t}_c{i}" for t in range(len(its)) for i in range(2)]
            # the recorded evaluation has each step once
            steps = [s["step"] for s in done["result"]["evaluation"]["steps"]]
            assert len(steps) == len(set(steps)), steps
            assert c.get(f"/api/v1/jobs/{job['id']}/model").status_code == 200
    finally:
        stop_server(server, name)


def test_a_cancel_during_evaluation_is_honoured_and_the_job_resumes(server: Server) -> None:
    with server.client() as c:
        job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": NO_GROWTH}).json()
        wait_for(c, job["id"], {"evaluating"})
        r = c.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["cancel_requested"], r.text
        cancelled = wait_for(c, job["id"], {"cancelled", "succeeded", "failed"})
        assert cancelled["state"] == "cancelled", cancelled
        assert not cancelled["cancel_requested"] and cancelled["result"] is None
        assert c.get(f"/api/v1/jobs/{job['id']}/model").status_code == 409
        assert c.post(f"/api/v1/jobs/{job['id']}/resume").status_code == 200
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done["error"]
        assert_one_runner_at_a_time(c, job["id"])
        assert c.get(f"/api/v1/jobs/{job['id']}/model").status_code == 200


@pytest.mark.slow
def test_a_job_that_keeps_crashing_its_service_fails_after_max_attempts(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server, name = start_server(tmp_path, "sqlite", request, AUTOML_MAX_ATTEMPTS="1")
    try:
        with server.client() as c:
            spec = {**TINY, "max_iterations": 3, "epochs": 5, "force_grow": True}
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
            wait_for(c, job["id"], {"running"})
        server.kill()
        server.start()
        with server.client() as c:
            failed = wait_for(c, job["id"], {"failed", "succeeded"}, timeout=60)
            assert failed["state"] == "failed"
            assert "max_attempts=1" in failed["error"] and "Resume it" in failed["error"]
            cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=500").json()["data"]
            assert not [x for x in cands if x["state"] in ("pending", "running")]
            # a person's resume is a fresh start of the count, and the job then finishes
            assert c.post(f"/api/v1/jobs/{job['id']}/resume").status_code == 200
            done = wait_for(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 1
    finally:
        stop_server(server, name)


def test_concurrent_first_downloads_of_a_savedmodel_are_all_whole(server: Server) -> None:
    with server.client() as c:
        job = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": TINY}).json()
        assert wait_for(c, job["id"], {"succeeded", "failed"})["state"] == "succeeded"
    bodies: list[bytes] = []

    def fetch() -> None:
        with server.client() as client:
            r = client.get(f"/api/v1/jobs/{job['id']}/model?format=savedmodel")
            assert r.status_code == 200
            bodies.append(r.content)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) == 6
    listings = set()
    for body in bodies:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            assert z.testzip() is None
            listings.add(tuple(sorted(z.namelist())))
    assert len(listings) == 1 and any(n.endswith("saved_model.pb") for n in next(iter(listings)))
    job_dir = server.workdir / "artifacts" / "jobs" / job["id"]
    assert not list(job_dir.glob("*.part*"))


def test_a_request_writes_the_keys_last_use_at_most_once_a_minute(server: Server) -> None:
    from api.db import make_engine
    from api.models import ApiKey

    key = server.create_key("minute")
    engine = make_engine(server.db_url)
    try:

        def last_used() -> Any:
            with engine.connect() as conn:
                return conn.execute(
                    select(ApiKey.last_used_at).where(ApiKey.owner == "minute")
                ).scalar_one()

        assert last_used() is None
        with server.client(key) as c:
            assert c.get("/api/v1/jobs").status_code == 200
            first = last_used()
            assert first is not None
            for _ in range(5):
                assert c.get("/api/v1/jobs").status_code == 200
            assert last_used() == first
    finally:
        engine.dispose()


def test_a_job_delete_whose_commit_fails_keeps_the_row_and_its_files(tmp_path: Path) -> None:
    from api.artifacts import ArtifactStore
    from api.db import make_engine, make_session_factory
    from api.migrate import upgrade
    from api.models import Event, Job, JobState
    from api.services.jobs import JobService

    engine = make_engine(f"sqlite:///{tmp_path / 'automl.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    store = ArtifactStore(tmp_path / "artifacts")
    with factory() as s:
        job = Job(owner="o", builtin_dataset="iris", spec={}, state=JobState.succeeded)
        s.add(job)
        s.commit()
        job_id = job.id
    weights = store.weights_file(job_id, "t0_c0")
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"w")

    session = factory()
    # a constraint checked only at COMMIT: the commit itself fails, after the delete ran
    session.execute(text("PRAGMA defer_foreign_keys = ON"))
    JobService(session, store, "in_process").delete("o", job_id)
    session.add(Event(job_id="0" * 32, kind="info", message="dangling", data={}))
    with pytest.raises(Exception, match="FOREIGN KEY"):
        session.commit()
    session.rollback()
    session.close()
    assert weights.is_file()  # the files are still there ...
    with factory() as s:
        assert s.get(Job, job_id) is not None  # ... with their row

    # and when the commit succeeds, the files go with the row
    with factory() as s:
        JobService(s, store, "in_process").delete("o", job_id)
        assert weights.is_file()  # not before the commit
        s.commit()
    assert not store.job_dir(job_id).exists()
    engine.dispose()
