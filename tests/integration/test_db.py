"""Migrations and the database layer on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_session_factory, session_scope
from api.errors import SchemaTooNewError
from api.migrate import current_revision, head_revision, upgrade
from api.models import Base, Event, Job

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def test_an_empty_database_upgrades_to_head(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    before, after = upgrade(engine)
    assert before is None and after == head_revision(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {"api_keys", "datasets", "jobs", "iterations", "candidates", "events"} <= tables
    assert upgrade(engine) == (after, after)  # idempotent


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == [], f"the models differ from the migrations; add a revision: {diff}"


def test_a_schema_newer_than_the_code_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0042'"))
    with pytest.raises(SchemaTooNewError, match="revision 'f00dfeed0042', which this version"):
        upgrade(engine)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "db", "upgrade"],
        env={"AUTOML_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "upgraded by a newer automl" in proc.stderr
    serve = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "1"],
        env={"AUTOML_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode == 2 and "upgraded by a newer automl" in serve.stderr


def test_readers_and_a_writer_at_once_never_see_a_locked_database(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        s.add(Job(id="a" * 32, owner="o", builtin_dataset="digits", spec={}))
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            for i in range(300):
                with session_scope(factory) as s:
                    s.add(Event(job_id="a" * 32, kind="info", message=f"m{i}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()

    def read() -> None:
        try:
            while not stop.is_set():
                with session_scope(factory) as s:
                    s.scalars(select(Event).where(Event.job_id == "a" * 32)).all()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with session_scope(factory) as s:
        assert len(s.scalars(select(Event)).all()) == 300


def test_a_stored_spec_holds_the_epochs_its_data_decided(db_url: str, tmp_path: Path) -> None:
    """Epochs left unset are filled in when the job is created (60 for sequences, 30 for
    tables): the stored spec is the one that runs, resumes and replays, whatever the default
    becomes later; epochs given are kept."""
    from api.artifacts import ArtifactStore
    from api.schemas import JobCreate
    from api.services.jobs import JobService
    from automl.spec import SearchSpec

    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as s:
            jobs = JobService(s, ArtifactStore(tmp_path / "artifacts"), "in_process")
            seq = jobs.create("o", JobCreate(dataset="mnist1d"))
            table = jobs.create("o", JobCreate(dataset="iris"))
            given = jobs.create("o", JobCreate(dataset="mnist1d", spec=SearchSpec(epochs=5)))
            stored = {j.id: j.spec for j in (seq, table, given)}
        assert stored[seq.id]["epochs"] == 60 and stored[seq.id]["starting_configurations"]
        assert stored[seq.id]["evaluation"]["fine_tune_epochs"] == 8
        assert stored[table.id]["epochs"] == 30
        assert stored[table.id]["evaluation"]["fine_tune_epochs"] == 3
        assert stored[given.id]["epochs"] == 5
        assert SearchSpec.from_dict(stored[seq.id]).for_data("sequence").epochs == 60
    finally:
        engine.dispose()


@contextmanager
def _one_job(db_url: str) -> Iterator[tuple[sessionmaker[Session], str]]:
    """A migrated database holding one job: its session factory and the job's id."""
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as s:
            job = Job(owner="o", builtin_dataset="iris", spec={})
            s.add(job)
            s.flush()
            job_id = job.id
        yield factory, job_id
    finally:
        engine.dispose()


def test_a_page_gives_the_exact_total_whether_or_not_it_counts(db_url: str) -> None:
    """A page that is not full gives the total without a count; a full page, or one past the
    end, counts: every limit and offset gives the rows and total a count would."""
    from api.repositories import EventRepository

    with _one_job(db_url) as (factory, job_id):
        with session_scope(factory) as s:
            for i in range(7):
                s.add(Event(job_id=job_id, kind="info", message=f"e{i}", data={}))
        with session_scope(factory) as s:
            events = EventRepository(s)
            ids = [e.id for e in events.list(job_id, 100, 0)[0]]
            assert len(ids) == 7
            for limit in (1, 3, 7, 8):
                for offset in (0, 2, 6, 7, 9):
                    rows, total = events.list(job_id, limit, offset)
                    assert [e.id for e in rows] == ids[offset : offset + limit]
                    assert total == 7, (limit, offset)
                    plain, total = events.list_rows(job_id, limit, offset)
                    assert [e["id"] for e in plain] == ids[offset : offset + limit]
                    assert total == 7, (limit, offset)
                    newest, total = events.latest(job_id, limit, offset)
                    assert [e.id for e in newest] == ids[::-1][offset : offset + limit]
                    assert total == 7
            assert events.list("0" * 32, 5, 0) == ([], 0)
            assert events.list("0" * 32, 5, 5) == ([], 0)


def test_the_polled_pages_plain_rows_say_what_their_orm_rows_say(db_url: str) -> None:
    """The API's candidates and events pages read plain rows (no ORM instances): for every
    filter, order and page they give what the ORM rows give, through the same public models."""
    from api.models import Candidate
    from api.repositories import CandidateRepository, EventRepository
    from api.schemas import CandidatePublic, EventPublic

    with _one_job(db_url) as (factory, job_id):
        with session_scope(factory) as s:
            for i in range(6):
                done = i % 3 != 2
                s.add(
                    Candidate(
                        job_id=job_id,
                        iteration=i // 2,
                        name=f"t{i // 2}_c{i % 2}",
                        origin="sampled",
                        state="completed" if done else "failed",
                        hparams={"family": "dense", "width": 64 * (i + 1), "lr": 1e-3 / (i + 1)},
                        seed=i,
                        depth=i % 3 + 1,
                        params=100 * (6 - i),
                        loss=0.5 - 0.05 * i if done else None,
                        objective=0.6 - 0.07 * ((i * 5) % 6) if done else None,
                        metrics={"accuracy": 0.9 + 0.01 * i} if done else {},
                        own_metrics={"loss": 0.4},
                        history={"loss": [0.9, 0.5]},
                        error=None if done else "FloatingPointError: diverged",
                        failure_kind=None if done else "training",
                        duration_s=10.0 + i,
                    )
                )
                s.add(Event(job_id=job_id, kind="info", message=f"e{i}", data={"n": i, "ü": [i]}))
        with session_scope(factory) as s:
            candidates = CandidateRepository(s)
            shapes: list[dict[str, Any]] = [
                {},
                {"iteration": 1},
                {"state": "completed"},
                {"sort": "objective", "descending": True},
                {"sort": "loss"},
                {"sort": "duration", "descending": True, "state": "failed"},
            ]
            for shape in shapes:
                for limit, offset in ((50, 0), (2, 1), (3, 3), (5, 10)):
                    page: dict[str, Any] = {"limit": limit, "offset": offset, **shape}
                    orm, n = candidates.list(job_id, **page)
                    plain, m = candidates.list(job_id, rows=True, **page)
                    assert m == n, shape
                    assert [CandidatePublic.model_validate(r) for r in plain] == [
                        CandidatePublic.model_validate(r) for r in orm
                    ], (shape, limit, offset)
            # the training curves stay out of the page: the candidate's own route has them
            assert all("history" not in r for r in candidates.list(job_id, rows=True)[0])
            events = EventRepository(s)
            orm_events, n = events.list(job_id, 50, 0)
            plain_events, m = events.list_rows(job_id, 50, 0)
            assert m == n == 6
            assert [EventPublic.model_validate(r) for r in plain_events] == [
                EventPublic.model_validate(e) for e in orm_events
            ]
