"""Faults with real processes: `automl serve` killed during the evaluation phase, PostgreSQL
restarted under a running job, the artifact disk full, and candidates that exhaust memory or
never end. Each runs a real server subprocess (the in-process executor: no Ray) on tiny specs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.integration.conftest import (
    POSTGRES_ADMIN_URL,
    start_server,
    stop_server,
    wait_for,
)

IN_PROCESS = {"AUTOML_EXECUTOR": "in_process"}


def _events(c: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = c.get(f"/api/v1/jobs/{job_id}/events?limit=1000&offset={len(out)}")
        assert page.status_code == 200, page.text
        body = page.json()
        out += body["data"]
        if len(out) >= body["count"] or not body["data"]:
            return out


def _candidates(c: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    page = c.get(f"/api/v1/jobs/{job_id}/candidates?limit=500")
    assert page.status_code == 200, page.text
    return list(page.json()["data"])


def _wait_until(what: str, check: Any, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


# ---- 1. kill -9 during the evaluation phase ------------------------------------------------


def test_kill_9_during_the_evaluation_phase_records_each_step_once(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The service is killed (SIGKILL, its whole process group) once the job is evaluating and
    has recorded a step of the phase; a new service on the same database and artifacts takes
    the job over when its lease expires and it succeeds, with its model.

    "The record" of the evaluation phase is what a client reads back: the job's
    ``result.evaluation.steps`` and its events carrying ``data.step`` that are not marked
    ``data.superseded``. The phase's steps run again from the search's end — so the
    interrupted run's step events are marked superseded (and one event says so) before it runs
    again: the record holds each step exactly once, in the order of the phase that produced the
    model — but no training the interrupted run completed is trained again: each is reused from
    the job's store (and the store is gone once the model is exported). The search is not run
    again: each candidate trained once, each iteration is stored once.
    """
    spec = {
        "max_iterations": 1,
        "candidates_per_iteration": 2,
        "epochs": 3,
        "seed": 11,
        "batch_size": [64],
        # a phase of several seconds: baseline, 2 folds trained, 1 sparsity level fine-tuned
        "evaluation": {"cv_folds": 2, "sparsities": [0.5], "fine_tune_epochs": 1, "grow": False},
    }
    server, name = start_server(tmp_path, "sqlite", request, **IN_PROCESS)
    try:
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()

            def evaluating_with_a_step() -> bool:
                # a step (the baseline) and a training (a fold) of the phase are recorded
                body = c.get(f"/api/v1/jobs/{job['id']}").json()
                if body["state"] in ("succeeded", "failed", "cancelled"):
                    pytest.fail(f"the job ended before it could be killed mid-phase: {body}")
                if body["state"] != "evaluating":
                    return False
                data = [e["data"] for e in _events(c, job["id"])]
                return any("step" in d for d in data) and any("training" in d for d in data)

            _wait_until(
                "the job to record a step of its evaluation phase", evaluating_with_a_step, 240
            )
            stored_before = {x["name"]: x["loss"] for x in _candidates(c, job["id"])}
        server.kill()
        server.start()
        with server.client() as c:
            done = wait_for(c, job["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 2
            model = c.get(f"/api/v1/jobs/{job['id']}/model")
            assert model.status_code == 200 and len(model.content) > 0

            events = _events(c, job["id"])
            messages = [e["message"] for e in events]
            restarted = max(i for i, m in enumerate(messages) if m == "job running")
            interrupted = [e for e in events[:restarted] if {"step", "training"} & set(e["data"])]
            # the kill did land inside the phase: a step and a training were recorded before it
            assert {"step", "training"} <= {k for e in interrupted for k in e["data"]}
            assert all(e["data"].get("superseded") is True for e in interrupted)
            assert not any(e["data"].get("superseded") for e in events[restarted:])
            assert any("its search had finished" in m for m in messages[:restarted])
            assert any(
                "the evaluation phase runs again from the search's end" in m
                for m in messages[restarted:]
            )

            # every training the interrupted run completed is reused, not trained again
            before_kill = {
                e["data"]["training"]["name"]
                for e in interrupted
                if "training" in e["data"] and e["data"]["training"]["state"] == "completed"
            }
            after = [e["data"]["training"] for e in events[restarted:] if "training" in e["data"]]
            assert before_kill and before_kill == {t["name"] for t in after if t.get("reused")}
            retrained = [t["name"] for t in after if not t.get("reused")]
            assert not before_kill & set(retrained), retrained
            assert len(retrained) == len(set(retrained))  # and the rest trained once
            assert not (
                server.workdir / "artifacts" / "jobs" / job["id"] / "evaluation_trainings"
            ).exists()

            record = [
                e["data"]["step"]["step"]
                for e in events
                if "step" in e["data"] and not e["data"].get("superseded")
            ]
            result_steps = [s["step"] for s in done["result"]["evaluation"]["steps"]]
            assert record == result_steps
            assert Counter(record).most_common(1)[0][1] == 1, record
            assert record[:2] == ["baseline", "cross_validation"] and "prune_weights_0.5" in record

            # the search was not run again: every candidate trained once, before the kill
            cands = _candidates(c, job["id"])
            names = [x["name"] for x in cands]
            assert sorted(names) == sorted(stored_before) == ["t0_c0", "t0_c1"]
            assert {x["name"]: x["loss"] for x in cands} == stored_before
            for cand in names:
                starts = [
                    i
                    for i, e in enumerate(events)
                    if e["data"].get("candidate") == cand
                    and e["message"].endswith("started training")
                ]
                assert len(starts) == 1 and starts[0] < restarted, (cand, starts)
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()
            assert [i["iteration"] for i in its["data"]] == [0]
    finally:
        stop_server(server, name)


# ---- 2. PostgreSQL restarted under a running job --------------------------------------------


def _pg_cluster() -> list[str]:
    """The pg_ctlcluster arguments of the local cluster the tests use, or a skip saying why
    it cannot be stopped and started from here."""
    if "@127.0.0.1:" not in POSTGRES_ADMIN_URL and "@localhost:" not in POSTGRES_ADMIN_URL:
        pytest.skip(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not this machine's cluster")
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if len(versions) != 1:
        pytest.skip(f"expected one PostgreSQL cluster in /etc/postgresql, found {versions}")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main"]


def _pg_ctl(cluster: list[str], action: str) -> None:
    subprocess.run([*cluster, action], check=True, capture_output=True, timeout=120)


def _pg_up() -> bool:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _other_postgres_clients(own_database: str | None) -> list[str]:
    """Databases someone else is using now: restarting the server would break their work."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL "
            "AND pid <> pg_backend_pid() GROUP BY datname"
        ).fetchall()
    return [f"{d} ({n})" for d, n in rows if d != own_database]


@pytest.mark.serial  # it stops PostgreSQL: no other test may use it meanwhile
def test_postgresql_restarted_under_a_running_job(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL is stopped while a job trains: /healthz says the database is down (503,
    naming it), and an API call is a 503 with Retry-After (not a 500); once it is started
    again the service reconnects by itself (no 5xx remains) and the job succeeds — a write
    that failed meanwhile ends its run, and the lease machinery runs it again from its last
    completed iteration — with each candidate and iteration recorded once."""
    cluster = _pg_cluster()
    request.getfixturevalue("postgres_admin")
    # never restart the cluster under someone else's work (a benchmark, another test run)
    deadline = time.monotonic() + 180
    while others := _other_postgres_clients(None):
        if time.monotonic() > deadline:
            pytest.skip(f"PostgreSQL is in use by others ({', '.join(others)}); not restarted")
        time.sleep(2)
    spec = {
        "max_iterations": 4,
        "candidates_per_iteration": 2,
        "epochs": 3,
        "seed": 8,
        "batch_size": [64],
        "force_grow": True,
        "evaluation": {"enabled": False},
    }
    server, name = start_server(tmp_path, "postgresql", request, **IN_PROCESS)
    try:
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()

            def training_after_iteration_0() -> bool:
                its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["count"]
                return bool(its >= 1)

            _wait_until("iteration 0 to be stored", training_after_iteration_0, 180)
            if others := _other_postgres_clients(name):
                pytest.skip(
                    f"PostgreSQL came into use by others ({', '.join(others)}; this test's "
                    f"database is {name}); not restarted"
                )
            _pg_ctl(cluster, "stop")
            try:
                health = []
                until = time.monotonic() + 4
                while time.monotonic() < until:
                    r = c.get("/healthz")
                    health.append((r.status_code, r.json()))
                    time.sleep(0.3)
                # an API call meanwhile: a 503 saying when to try again, not a 500
                listed = c.get("/api/v1/jobs")
            finally:
                _pg_ctl(cluster, "start")
            assert health and all(code == 503 for code, _ in health), health
            assert all(body["status"] == "degraded" for _, body in health)
            assert all(body["database"].startswith("unreachable") for _, body in health)
            assert listed.status_code == 503, listed.text
            assert listed.headers["retry-after"] == "5"
            assert "database is unreachable" in listed.json()["detail"]

            _wait_until(
                "/healthz to say ok again", lambda: c.get("/healthz").status_code == 200, 60
            )
            done = wait_for(c, job["id"], {"succeeded", "failed", "cancelled"}, timeout=240)
            assert done["state"] == "succeeded", done["error"]
            # nothing answers 5xx once the database is back
            for path in (
                "/api/v1/jobs",
                f"/api/v1/jobs/{job['id']}",
                f"/api/v1/jobs/{job['id']}/iterations",
                f"/api/v1/jobs/{job['id']}/candidates",
                f"/api/v1/jobs/{job['id']}/events",
                "/healthz",
            ):
                r = c.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
            cands = _candidates(c, job["id"])
            assert sorted(x["name"] for x in cands) == [
                f"t{t}_c{i}" for t in range(4) for i in range(2)
            ]
            # a candidate is never failed by the database's absence
            assert all(x["state"] == "completed" for x in cands), [
                (x["name"], x["state"], x["error"]) for x in cands
            ]
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()
            assert [i["iteration"] for i in its["data"]] == [0, 1, 2, 3]
    finally:
        if not _pg_up():
            _pg_ctl(cluster, "start")
        stop_server(server, name)


def _terminate_connections(database: str) -> int:
    """Close every server-side connection to ``database`` (what a PostgreSQL restart does to
    a pool), and wait until they are gone; how many there were."""
    import psycopg

    admin = POSTGRES_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        closed = conn.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()) t",
            (database,),
        ).fetchone()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.1)
    return int(closed[0]) if closed else 0


def test_reads_and_writes_after_postgresql_closed_every_pooled_connection(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The polled reads use a pool without a pre-ping (api.db.make_read_engine): a read that
    finds its connection closed by the server (a restart, an administrator) is read again on
    a new one, so it still answers 200, never a 503; writes, on the pool with the ping, too."""
    server, name = start_server(tmp_path, "postgresql", request, **IN_PROCESS)
    assert name is not None
    try:
        with server.client() as c:
            for _ in range(3):  # the read pool holds connections now
                assert c.get("/api/v1/jobs").status_code == 200
            assert _terminate_connections(name) >= 1
            listed = c.get("/api/v1/jobs")
            assert listed.status_code == 200, listed.text
            assert listed.json()["count"] == 0
            # the retry was what answered: the read met the closed connection
            assert "reading again on a new connection" in server.log()
            assert _terminate_connections(name) >= 1
            created = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": {"epochs": 1}})
            assert created.status_code == 201, created.text
            job = c.get(f"/api/v1/jobs/{created.json()['id']}")
            assert job.status_code == 200, job.text
    finally:
        stop_server(server, name)


def test_a_database_error_under_a_run_ends_it_for_a_take_over_not_as_the_jobs_failure(
    tmp_path: Path,
) -> None:
    """The race the restart above may or may not hit: the database comes back between the
    write that failed under a run and the handler that would record the run's end. Whatever
    the timing, an unreachable database is not the job's failure: the run ends writing
    nothing, and the job is queued again (its candidates are not failed), as after a crash."""
    import threading

    from sqlalchemy.exc import OperationalError

    from api.artifacts import ArtifactStore
    from api.controller import Controller
    from api.db import make_engine, make_session_factory, session_scope
    from api.migrate import upgrade
    from api.models import Event, Job, JobState
    from api.repositories import JobRepository
    from api.settings import Settings

    url = f"sqlite:///{tmp_path / 'automl.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)

    class DatabaseGoneMidRun(Controller):
        def _run_job(self, job_id: str) -> None:
            # what a callback's write raises when PostgreSQL restarts under it
            raise OperationalError(
                "UPDATE candidates ...", {}, Exception("server closed the connection")
            )

    controller = DatabaseGoneMidRun(
        Settings(database_url=url, artifact_dir=tmp_path / "artifacts", executor="in_process"),
        factory,
        ArtifactStore(tmp_path / "artifacts"),
    )
    with session_scope(factory) as s:
        s.add(Job(owner="local", builtin_dataset="digits", spec={}, executor="in_process"))
    with session_scope(factory) as s:
        claimed = JobRepository(s).claim_next_queued(controller.lease_id)
        assert claimed is not None
        job_id = claimed.id
    thread = threading.Thread(target=controller.run_job, args=(job_id,))
    thread.start()
    thread.join()
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        assert job is not None
        # the database answers again by now, yet the run did not record itself failed
        assert job.state == JobState.running and job.error is None, (job.state, job.error)
    controller._threads[job_id] = thread
    controller._reap()  # what the controller's next tick does with a run that ended so
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert job.state == JobState.queued and job.error is None and job.lease_owner is None
        last = s.scalars(
            select(Event).where(Event.job_id == job_id).order_by(Event.id.desc())
        ).first()
        assert last is not None and "the service stopped while this job ran" in last.message
    engine.dispose()


# ---- 3. the artifact disk full ---------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (a disk of its own to fill); unmounted at the end."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        # lazily: a file the killed server held open must not leave the mount behind
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> None:
    """Write one file until its disk has no space left."""
    chunk = b"\0" * (1 << 20)
    with (directory / "filler").open("wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def test_the_artifact_disk_full_fails_the_job_with_the_reason_and_the_api_stays_up(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The artifact directory is a 16 MiB disk of its own (the database is not on it); once
    the job's first candidate trains, the disk is filled. Storing that candidate's weights
    fails: the job fails with an error that says the artifact disk is full and where, nothing
    of it is left running and no half-written file is left on the disk, and the API keeps
    answering. With the space freed, resuming the job makes it succeed."""
    spec = {
        "max_iterations": 1,
        "candidates_per_iteration": 2,
        "epochs": 3,
        "seed": 4,
        "batch_size": [64],
        "force_grow": True,
        "evaluation": {"enabled": False},
    }
    with _tmpfs(tmp_path / "artifacts", "16m") as artifacts:
        server, name = start_server(tmp_path, "sqlite", request, **IN_PROCESS)
        try:
            with server.client() as c:
                job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
                _wait_until(
                    "the job's first candidate to start training",
                    lambda: any(
                        e["message"].endswith("started training") for e in _events(c, job["id"])
                    ),
                    120,
                )
                _fill(artifacts)
                done = wait_for(c, job["id"], {"succeeded", "failed", "cancelled"}, timeout=120)
                assert done["state"] == "failed"
                error = done["error"]
                assert "No space left on device" in error, error
                assert "is full or not writable" in error and str(artifacts) in error, error
                assert "Traceback" not in error  # a reason for a person, not a crash
                cands = _candidates(c, job["id"])
                assert cands and all(x["state"] in ("completed", "failed") for x in cands)
                messages = [e["message"] for e in _events(c, job["id"])]
                assert any("No space left on device" in m for m in messages)
                assert not list(artifacts.rglob("*.part*"))

                assert server.proc is not None and server.proc.poll() is None
                health = c.get("/healthz")
                assert health.status_code == 200, health.text
                listed = c.get("/api/v1/jobs")
                assert listed.status_code == 200
                assert job["id"] in [j["id"] for j in listed.json()["data"]]

                (artifacts / "filler").unlink()
                resumed = c.post(f"/api/v1/jobs/{job['id']}/resume")
                assert resumed.status_code == 200, resumed.text
                done = wait_for(c, job["id"], {"succeeded", "failed", "cancelled"}, timeout=180)
                assert done["state"] == "succeeded", done["error"]
                cands = _candidates(c, job["id"])
                assert sorted(x["name"] for x in cands) == ["t0_c0", "t0_c1"]
                assert all(x["state"] == "completed" for x in cands)
                assert c.get(f"/api/v1/jobs/{job['id']}/model").status_code == 200
        finally:
            stop_server(server, name)


# ---- 4. a candidate that exhausts memory, one that never ends -------------------------------

# TensorFlow's CPU allocator (oneDNN's, "mklcpu") refuses tensors past this many bytes in all,
# as it does past the machine's RAM by default: a candidate with a larger kernel hits the same
# ResourceExhaustedError as on a machine without the memory, while every other allocation of
# the process (threads, Python, the database) goes on as usual. (A process-wide RLIMIT_AS does
# not work for this: after the OOM, TensorFlow's next thread start aborts the whole server —
# "LLVM ERROR: pthread_create failed".)
TF_TENSOR_MEMORY_CAP = 128 << 20


def test_out_of_memory_and_never_ending_candidates_fail_with_their_kind_and_the_job_goes_on(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """One iteration of three candidates, pinned by warm-start configurations: a convolution
    of 1024 7×7 filters on 1024 channels (a 196 MiB kernel, over the tensor cap), one of 256
    5×5 filters (~0.2 TFLOP an epoch: minutes for its 20 epochs on any CPU, far past
    ``candidate_timeout_s``) and a small dense one that trains in seconds. The first two are
    recorded failed — kind ``out_of_memory`` and ``timeout``, each with its reason — the
    server survives both, and the job succeeds on the third."""
    conv = {"family": "conv2d", "width": 32, "dropout": 0.0, "batch_size": 32}
    spec = {
        "max_iterations": 1,
        "candidates_per_iteration": 3,
        "epochs": 20,
        "seed": 3,
        "batch_size": [32, 64],
        "families": ["dense", "conv2d"],
        "dense": {"depth": {"low": 1, "high": 1}, "width": [32]},
        "conv2d": {
            "depth": {"low": 2, "high": 3},
            "filters": [256, 1024],
            "kernel_size": [5, 7],
            "width": [32],
        },
        # about 3 times what the candidate that fits needs on a busy 2-core machine (~8 s, most
        # of it building and tracing its model)
        "candidate_timeout_s": 25,
        "warm_start_configurations": [
            {**conv, "depth": 2, "filters": 1024, "kernel_size": 7},
            {**conv, "depth": 3, "filters": 256, "kernel_size": 5},
            {
                "family": "dense",
                "width": 32,
                "dropout": 0.0,
                "batch_norm": False,
                "batch_size": 64,
                "optimizer": "adam",
                "learning_rate": 0.005,
            },
        ],
        "evaluation": {"enabled": False},
    }
    server, name = start_server(
        tmp_path,
        "sqlite",
        request,
        TF_MKL_ALLOC_MAX_BYTES=str(TF_TENSOR_MEMORY_CAP),
        # the cap is the oneDNN allocator's: TensorFlow turns oneDNN on by itself only on some
        # CPUs (on an AMD EPYC with AVX2 it stayed off, no allocation was refused, and the
        # candidate ran into the timeout instead)
        TF_ENABLE_ONEDNN_OPTS="1",
        **IN_PROCESS,
    )
    try:
        with server.client() as c:
            created = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec})
            assert created.status_code == 201, created.text
            job = created.json()
            done = wait_for(c, job["id"], {"succeeded", "failed", "cancelled"}, timeout=240)
            assert done["state"] == "succeeded", done["error"]
            cands = {x["name"]: x for x in _candidates(c, job["id"])}
            assert sorted(cands) == ["t0_c0", "t0_c1", "t0_c2"]
            oom, endless, fits = cands["t0_c0"], cands["t0_c1"], cands["t0_c2"]
            assert oom["hparams"]["filters"] == 1024 and endless["hparams"]["filters"] == 256

            assert oom["state"] == "failed" and oom["failure_kind"] == "out_of_memory"
            assert "OOM when allocating tensor" in oom["error"]
            assert endless["state"] == "failed" and endless["failure_kind"] == "timeout"
            assert "candidate_timeout_s" in endless["error"]
            assert endless["epochs_run"] < 20
            assert fits["state"] == "completed" and fits["failure_kind"] is None
            members = done["result"]["ensemble"]["members"]
            assert [m["name"] for m in members] == ["t0_c2"]
            messages = [e["message"] for e in _events(c, job["id"])]
            assert any(m.startswith("candidate t0_c0 failed: ") for m in messages)
            assert any("candidate_timeout_s" in m for m in messages if "t0_c1 failed" in m)
            # the same process answers: it was never restarted
            assert server.proc is not None and server.proc.poll() is None
            assert c.get("/healthz").status_code == 200
    finally:
        stop_server(server, name)
