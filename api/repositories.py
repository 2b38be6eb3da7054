"""Queries. Every read and write of an owner's objects is filtered by owner, so another owner's
job or dataset is simply not found."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, case, delete, func, or_, select, update
from sqlalchemy.orm import Session, defer, undefer

from api.models import (
    ApiKey,
    Candidate,
    Dataset,
    Event,
    HistoryEntry,
    Iteration,
    Job,
    JobState,
    Upload,
    utcnow,
)


def page_and_total(
    s: Session, q: Select[Any], order: Sequence[Any], limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """A page of ``q``'s rows and how many rows ``q`` has in all. The page is read first: a
    page that is not full (and not past the end) gives the total itself, so the count runs
    only when more rows may follow. Most polled lists (a job's candidates and events, a short
    jobs list) fit one page: one query, not two, per read."""
    return read_page(s, Paged.of(q, order), {}, limit, offset)


class Paged:
    """A page statement (``:limit`` and ``:offset`` bound at execution) and the statement
    counting all its rows, built once.

    The lists dashboards and scripts poll are built once per shape (which filters, which
    order) with their values as bound parameters: building an ORM statement and its cache key
    cost more CPU than executing it (0.42 of 0.77 ms for the key-and-job lookup on
    PostgreSQL), on every read."""

    def __init__(self, page: Select[Any], count: Select[Any]) -> None:
        self.page = page
        self.count = count

    @classmethod
    def of(cls, q: Select[Any], order: Sequence[Any]) -> Paged:
        return cls(
            q.order_by(*order)
            .limit(bindparam("limit", type_=Integer))
            .offset(bindparam("offset", type_=Integer)),
            select(func.count()).select_from(q.subquery()),
        )


def read_page(
    s: Session, paged: Paged, params: dict[str, Any], limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """:func:`page_and_total` of a statement built once, its values in ``params``."""
    rows = s.scalars(paged.page, {**params, "limit": limit, "offset": offset}).all()
    return rows, _page_total(s, paged, params, len(rows), limit, offset)


def read_rows_page(
    s: Session, paged: Paged, params: dict[str, Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """:func:`read_page` of a statement of columns, its rows as plain dicts: no ORM instances
    (identity map, attribute state), which took 20-35% of a polled page's CPU (a 24-candidate
    page 2.5 -> 2.0 ms, a 100-event page 3.7-4.6 -> 2.8-3.0 ms, one thread)."""
    result = s.execute(paged.page, {**params, "limit": limit, "offset": offset})
    rows = [dict(r) for r in result.mappings()]
    return rows, _page_total(s, paged, params, len(rows), limit, offset)


def _page_total(
    s: Session, paged: Paged, params: dict[str, Any], n: int, limit: int, offset: int
) -> int:
    """The rows of all pages: counted only when this page does not tell (it is full, or past
    the end)."""
    if n < limit and (n or offset == 0):
        return offset + n
    return s.scalar(paged.count, params) or 0


CANDIDATE_SORTS = {
    "objective": Candidate.objective,
    "loss": Candidate.loss,
    "duration": Candidate.duration_s,
    "created": Candidate.id,
}

# The dashboard's candidates table sorts by any of its columns; hyperparameters and metrics
# are read out of their JSON columns (json_extract on SQLite, ->> on PostgreSQL).
_WIDTH = func.coalesce(
    Candidate.hparams["filters"].as_float(), Candidate.hparams["width"].as_float()
)
CANDIDATE_TABLE_SORTS: dict[str, Any] = {
    "name": (Candidate.iteration, Candidate.id),
    "iteration": (Candidate.iteration,),
    "origin": (Candidate.origin,),
    "state": (Candidate.state,),
    "family": (Candidate.hparams["family"].as_string(),),
    "depth": (Candidate.depth,),
    "width": (_WIDTH,),
    "optimizer": (Candidate.hparams["optimizer"].as_string(),),
    "learning_rate": (Candidate.hparams["learning_rate"].as_float(),),
    "loss": (Candidate.loss,),
    "complexity": (Candidate.complexity,),
    "objective": (Candidate.objective,),
    "duration": (Candidate.duration_s,),
    "node": (Candidate.node,),
    "chosen": (Candidate.chosen,),
}


class DatasetRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, owner: str, dataset_id: str) -> Dataset | None:
        return self.s.scalar(
            select(Dataset).where(Dataset.id == dataset_id, Dataset.owner == owner)
        )

    def list(self, owner: str, limit: int, offset: int) -> tuple[Sequence[Dataset], int]:
        q = select(Dataset).where(Dataset.owner == owner)
        return page_and_total(self.s, q, [Dataset.created_at.desc()], limit, offset)

    def add(self, dataset: Dataset) -> Dataset:
        self.s.add(dataset)
        self.s.flush()
        return dataset

    def in_use(self, dataset_id: str) -> int:
        active = [JobState.queued, JobState.running, JobState.evaluating]
        return (
            self.s.scalar(
                select(func.count(Job.id)).where(
                    Job.dataset_id == dataset_id, Job.state.in_(active)
                )
            )
            or 0
        )

    def delete(self, dataset: Dataset) -> None:
        self.s.delete(dataset)

    def uploads_since(self, owner: str, since: datetime) -> Sequence[tuple[datetime, int]]:
        """(created_at, size_bytes) of the owner's uploads stored after ``since`` (deleted
        datasets included), oldest first: what counts against the daily upload quota, and when
        each part of it ages out."""
        rows = self.s.execute(
            select(Upload.created_at, Upload.size_bytes)
            .where(Upload.owner == owner, Upload.created_at > since)
            .order_by(Upload.created_at)
        ).all()
        return [(at, int(size)) for at, size in rows]

    def add_upload(self, owner: str, size_bytes: int) -> None:
        """Count a stored upload against the owner's daily quota (kept after a delete)."""
        self.s.add(Upload(owner=owner, size_bytes=size_bytes))

    def names(self, owner: str, dataset_ids: Sequence[str]) -> dict[str, str]:
        """Names of the owner's datasets among ``dataset_ids`` (one query for a jobs page)."""
        if not dataset_ids:
            return {}
        rows = self.s.execute(
            select(Dataset.id, Dataset.name).where(
                Dataset.owner == owner, Dataset.id.in_(list(dataset_ids))
            )
        ).all()
        return {str(i): str(n) for i, n in rows}


@functools.cache
def _jobs_page(by_state: bool, with_result: bool) -> Paged:
    q = select(Job).where(Job.owner == bindparam("owner"))
    if by_state:
        q = q.where(Job.state == bindparam("state"))
    if not with_result:
        q = q.options(defer(Job.result))
    return Paged.of(q, [Job.created_at.desc(), Job.id])


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, owner: str, job_id: str) -> Job | None:
        return self.s.scalar(select(Job).where(Job.id == job_id, Job.owner == owner))

    def state_of(self, owner: str, job_id: str) -> str | None:
        """The job's state alone (None: no such job of this owner): a check that needs no
        spec or report decoded."""
        state = self.s.scalar(select(Job.state).where(Job.id == job_id, Job.owner == owner))
        return None if state is None else str(state)

    def get_any(self, job_id: str) -> Job | None:
        """For the controller, which works for every owner."""
        return self.s.get(Job, job_id)

    def list(
        self, owner: str, state: str | None, limit: int, offset: int, with_result: bool = True
    ) -> tuple[Sequence[Job], int]:
        """A page of the owner's jobs, newest first. ``with_result=False`` leaves each
        finished job's report unread (the largest column by far: fetching and decoding it was
        most of a listing's cost); reading ``result`` on such a row then loads it alone."""
        params = {"owner": owner, "state": state} if state else {"owner": owner}
        return read_page(self.s, _jobs_page(bool(state), with_result), params, limit, offset)

    def add(self, job: Job) -> Job:
        self.s.add(job)
        self.s.flush()
        return job

    def count_active(self, owner: str) -> int:
        """The owner's queued, running and evaluating jobs (the per-owner job quota)."""
        active = [JobState.queued, JobState.running, JobState.evaluating]
        return int(
            self.s.scalar(
                select(func.count(Job.id)).where(Job.owner == owner, Job.state.in_(active))
            )
            or 0
        )

    def transition(
        self, job_id: str, expected: Sequence[str], owner: str | None = None, **values: Any
    ) -> bool:
        """Compare-and-set: write ``values`` only if the job is still in one of ``expected``.

        Every change of a job's state goes through here (or another conditional statement), so
        two writers that read the same state cannot both act on it: one of them finds its
        condition false and rereads.
        """
        q = update(Job).where(Job.id == job_id, Job.state.in_(list(expected)))
        if owner is not None:
            q = q.where(Job.owner == owner)
        done = self.s.execute(q.values(**values, updated_at=utcnow()))
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, job_id: str, holder: str, state: str, **values: Any) -> bool:
        """Move a job its runner holds to ``state``; false when the lease was lost meanwhile
        (another controller took the job over), in which case nothing is written."""
        done = self.s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.lease_owner == holder,
                Job.state.in_([JobState.running, JobState.evaluating]),
            )
            .values(state=state, updated_at=utcnow(), **values)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def take_over(self, job_id: str, lease: dict[str, Any], **values: Any) -> bool:
        """Change a running job whose lease is exactly ``lease`` (owner and last heartbeat as
        found stale); false when its runner renewed or another controller got there first."""
        q = update(Job).where(
            Job.id == job_id, Job.state.in_([JobState.running, JobState.evaluating])
        )
        for key in ("lease_owner", "heartbeat_at"):
            column = getattr(Job, key)
            q = q.where(column.is_(None) if lease[key] is None else column == lease[key])
        done = self.s.execute(
            q.values(lease_owner=None, heartbeat_at=None, updated_at=utcnow(), **values)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def delete_unless(self, owner: str, job_id: str, busy: Sequence[str]) -> bool:
        """Delete the job unless it is in one of ``busy``, in one statement."""
        done = self.s.execute(
            delete(Job).where(Job.id == job_id, Job.owner == owner, Job.state.not_in(list(busy)))
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def claim_next_queued(self, lease_owner: str, exclude: Sequence[str] = ()) -> Job | None:
        """Move the oldest queued job to running under this controller's lease; the conditional
        UPDATE makes the claim safe against another controller, a cancel or a delete doing the
        same at once."""
        q = select(Job).where(Job.state == JobState.queued)
        if exclude:
            q = q.where(Job.id.not_in(list(exclude)))
        for job in self.s.scalars(q.order_by(Job.created_at, Job.id).limit(5)):
            now = utcnow()
            if self.transition(
                job.id,
                [JobState.queued],
                state=JobState.running,
                started_at=now,
                attempts=Job.attempts + 1,
                error=None,
                cancel_requested=False,
                lease_owner=lease_owner,
                heartbeat_at=now,
            ):
                self.s.refresh(job)
                return job
        return None

    def heartbeat(self, lease_owner: str, job_ids: Sequence[str]) -> int:
        """Renew this controller's lease on the jobs it is running (threads alive)."""
        if not job_ids:
            return 0
        done = self.s.execute(
            update(Job)
            .where(
                Job.id.in_(list(job_ids)),
                Job.lease_owner == lease_owner,
                Job.state.in_([JobState.running, JobState.evaluating]),
            )
            .values(heartbeat_at=utcnow())
        )
        return int(done.rowcount)  # type: ignore[attr-defined]

    def stale(self, cutoff: datetime) -> Sequence[Job]:
        """Running jobs whose lease was last renewed before ``cutoff`` (their runner is gone)."""
        return self.s.scalars(
            select(Job).where(
                Job.state.in_([JobState.running, JobState.evaluating]),
                or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
            )
        ).all()

    def in_states(self, states: Sequence[str]) -> Sequence[Job]:
        return self.s.scalars(select(Job).where(Job.state.in_(states))).all()

    def counts_by_state(self) -> dict[str, int]:
        rows = self.s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        return {str(state): int(n) for state, n in rows}

    def get_many(self, owner: str, job_ids: Sequence[str]) -> Sequence[Job]:
        """The owner's jobs among ``job_ids``, in the order given (unknown ids are left out)."""
        if not job_ids:
            return []
        found = {
            j.id: j
            for j in self.s.scalars(
                select(Job).where(Job.owner == owner, Job.id.in_(list(job_ids)))
            )
        }
        return [found[i] for i in job_ids if i in found]

    def list_version(self, owner: str, state: str | None) -> tuple[int, datetime | None]:
        """How many of the owner's jobs there are and when one last changed: the jobs list
        shown for these filters is stale when this pair changes."""
        q = select(func.count(Job.id), func.max(Job.updated_at)).where(Job.owner == owner)
        if state:
            q = q.where(Job.state == state)
        count, latest = self.s.execute(q).one()
        return int(count or 0), latest


_ITERATIONS = (
    select(Iteration).where(Iteration.job_id == bindparam("job_id")).order_by(Iteration.iteration)
)


class IterationRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def list(self, job_id: str) -> Sequence[Iteration]:
        return self.s.scalars(_ITERATIONS, {"job_id": job_id}).all()

    def summaries(self, job_id: str) -> Sequence[Any]:
        """The iterations without the scores of every candidate ensemble (``ensembles``, the
        bulk of a row): iteration, previous_objective, best_objective, chosen, ensemble."""
        return self.s.execute(
            select(
                Iteration.iteration,
                Iteration.previous_objective,
                Iteration.best_objective,
                Iteration.chosen,
                Iteration.ensemble,
            )
            .where(Iteration.job_id == job_id)
            .order_by(Iteration.iteration)
        ).all()

    def completed_count(self, job_id: str) -> int:
        return (
            self.s.scalar(select(func.count(Iteration.id)).where(Iteration.job_id == job_id)) or 0
        )


# a candidate's columns as the API lists them: all but its training curves and weights' path
CANDIDATE_ROW_COLUMNS = tuple(
    c for c in Candidate.__table__.c if c.name not in ("history", "weights_path")
)


@functools.cache
def _candidates_page(
    by_iteration: bool, by_state: bool, sort: str, descending: bool, rows: bool = False
) -> Paged:
    q = (select(*CANDIDATE_ROW_COLUMNS) if rows else select(Candidate)).where(
        Candidate.job_id == bindparam("job_id")
    )
    if by_iteration:
        q = q.where(Candidate.iteration == bindparam("iteration"))
    if by_state:
        q = q.where(Candidate.state == bindparam("state"))
    column = CANDIDATE_SORTS[sort]
    order: Any = column.desc() if descending else column.asc()
    # rows without a value (failed, still training) go last either way
    return Paged.of(q, [column.is_(None), order, Candidate.id])


class CandidateRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def duration_figures(
        self, states: Sequence[str], bounds: Sequence[float]
    ) -> tuple[dict[str, int], list[int], int, float]:
        """Of every stored candidate in ``states``: the count by state, how many took at most
        each of ``bounds`` seconds (cumulative), the count with a duration, and their sum."""
        by_state = {
            str(state): int(n)
            for state, n in self.s.execute(
                select(Candidate.state, func.count())
                .where(Candidate.state.in_(list(states)))
                .group_by(Candidate.state)
            ).all()
        }
        timed = Candidate.state.in_(list(states)) & Candidate.duration_s.is_not(None)
        row = self.s.execute(
            select(
                *[func.sum(case((Candidate.duration_s <= b, 1), else_=0)) for b in bounds],
                func.count(),
                func.sum(Candidate.duration_s),
            ).where(timed)
        ).one()
        values = list(row)
        buckets = [int(v or 0) for v in values[: len(bounds)]]
        return by_state, buckets, int(values[-2] or 0), float(values[-1] or 0.0)

    def get(self, job_id: str, name: str) -> Candidate | None:
        return self.s.scalar(
            select(Candidate).where(Candidate.job_id == job_id, Candidate.name == name)
        )

    def list(
        self,
        job_id: str,
        *,
        iteration: int | None = None,
        state: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
        rows: bool = False,
    ) -> tuple[Sequence[Any], int]:
        """A page of the job's candidates and their total: ORM instances, or with ``rows``
        plain dicts of ``CANDIDATE_ROW_COLUMNS`` (the API's polled page: no ORM instances)."""
        params: dict[str, Any] = {"job_id": job_id}
        if iteration is not None:
            params["iteration"] = iteration
        if state:
            params["state"] = state
        paged = _candidates_page(iteration is not None, bool(state), sort, descending, rows)
        read = read_rows_page if rows else read_page
        return read(self.s, paged, params, limit, offset)

    def all_for_iterations(self, job_id: str, below: int) -> Sequence[Candidate]:
        return self.s.scalars(
            select(Candidate)
            .where(Candidate.job_id == job_id, Candidate.iteration < below)
            .order_by(Candidate.iteration, Candidate.name)
        ).all()

    def delete_from_iteration(self, job_id: str, iteration: int) -> Sequence[Candidate]:
        """Remove the candidates of an iteration that never completed (they are rerun)."""
        doomed = list(
            self.s.scalars(
                select(Candidate).where(
                    Candidate.job_id == job_id, Candidate.iteration >= iteration
                )
            )
        )
        self.s.execute(
            delete(Candidate).where(Candidate.job_id == job_id, Candidate.iteration >= iteration)
        )
        return doomed

    def by_names(self, job_id: str, names: Sequence[str]) -> Sequence[Candidate]:
        if not names:
            return []
        return self.s.scalars(
            select(Candidate).where(Candidate.job_id == job_id, Candidate.name.in_(list(names)))
        ).all()

    def get_with_history(self, job_id: str, name: str) -> Candidate | None:
        """One candidate with its per-epoch history loaded (deferred everywhere else)."""
        return self.s.scalar(
            select(Candidate)
            .options(undefer(Candidate.history))
            .where(Candidate.job_id == job_id, Candidate.name == name)
        )

    def table_rows(
        self,
        job_id: str,
        *,
        iteration: int | None = None,
        state: str | None = None,
        family: str | None = None,
        sort: str = "name",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[Candidate]:
        """A page of the dashboard's candidates table: filtered, sorted by any column (see
        ``CANDIDATE_TABLE_SORTS``) and paginated in the database (``facets`` counts them)."""
        q = select(Candidate).where(Candidate.job_id == job_id)
        if iteration is not None:
            q = q.where(Candidate.iteration == iteration)
        if state:
            q = q.where(Candidate.state == state)
        if family:
            q = q.where(Candidate.hparams["family"].as_string() == family)
        order: list[Any] = []
        for column in CANDIDATE_TABLE_SORTS[sort]:
            # rows without a value (failed, still training) go last either way
            order += [column.is_(None), column.desc() if descending else column.asc()]
        return self.s.scalars(q.order_by(*order, Candidate.id).limit(limit).offset(offset)).all()

    def facets(self, job_id: str) -> Sequence[tuple[int, str, str | None, int]]:
        """(iteration, state, family, count) of the job's candidates, in one pass: the table's
        filter choices, its counts by state and the size of any filtered view come from it."""
        family = Candidate.hparams["family"].as_string()
        rows = (
            self.s.connection()
            .execute(
                select(Candidate.iteration, Candidate.state, family, func.count())
                .where(Candidate.job_id == job_id)
                .group_by(Candidate.iteration, Candidate.state, family)
            )
            .all()
        )
        return [(int(i), str(st), None if f is None else str(f), int(n)) for i, st, f, n in rows]

    def points(self, job_id: str) -> Sequence[Any]:
        """Light rows for the plots — id, name, iteration, loss, complexity, objective, chosen —
        of the scored candidates, in training order: plain columns only, no JSON to decode, and
        no ORM (its row processing costs a third more on a job of 10,000 candidates). Computing
        the Pareto front and the sample in SQL (window functions) was slower on SQLite."""
        return (
            self.s.connection()
            .execute(
                select(
                    Candidate.id,
                    Candidate.name,
                    Candidate.iteration,
                    Candidate.loss,
                    Candidate.complexity,
                    Candidate.objective,
                    Candidate.chosen,
                )
                .where(
                    Candidate.job_id == job_id,
                    Candidate.loss.is_not(None),
                    Candidate.complexity.is_not(None),
                    Candidate.objective.is_not(None),
                )
                .order_by(Candidate.id)
            )
            .all()
        )

    def count(self, job_id: str) -> int:
        return int(
            self.s.scalar(select(func.count(Candidate.id)).where(Candidate.job_id == job_id)) or 0
        )

    def hparams_of(self, job_id: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The hyperparameters of some candidates (by row id): only the points a plot keeps."""
        out: dict[int, dict[str, Any]] = {}
        ids = list(ids)
        for start in range(0, len(ids), 5000):  # well under any backend's parameter limit
            rows = self.s.execute(
                select(Candidate.id, Candidate.hparams).where(
                    Candidate.job_id == job_id, Candidate.id.in_(ids[start : start + 5000])
                )
            )
            out.update({int(i): dict(h or {}) for i, h in rows})
        return out

    def metric_names(self, job_id: str) -> Sequence[str]:
        """The validation metrics a finished candidate of the job recorded (one row read)."""
        metrics = self.s.scalar(
            select(Candidate.metrics)
            .where(Candidate.job_id == job_id, Candidate.objective.is_not(None))
            .limit(1)
        )
        return list(metrics or {})


_EVENTS = select(Event).where(Event.job_id == bindparam("job_id"))
_EVENTS_OLDEST_FIRST = Paged.of(_EVENTS, [Event.id])
_EVENTS_NEWEST_FIRST = Paged.of(_EVENTS, [Event.id.desc()])
_EVENT_ROWS_OLDEST_FIRST = Paged.of(
    select(*Event.__table__.c).where(Event.job_id == bindparam("job_id")), [Event.id]
)


class EventRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, job_id: str, kind: str, message: str, **data: Any) -> None:
        self.s.add(Event(job_id=job_id, kind=kind, message=message, data=data))

    def list(self, job_id: str, limit: int, offset: int) -> tuple[Sequence[Event], int]:
        return read_page(self.s, _EVENTS_OLDEST_FIRST, {"job_id": job_id}, limit, offset)

    def list_rows(
        self, job_id: str, limit: int, offset: int
    ) -> tuple[Sequence[dict[str, Any]], int]:
        """:meth:`list` as plain rows: the API's polled page."""
        params = {"job_id": job_id}
        return read_rows_page(self.s, _EVENT_ROWS_OLDEST_FIRST, params, limit, offset)

    def latest(self, job_id: str, limit: int, offset: int) -> tuple[Sequence[Event], int]:
        """Newest first: the event log as the dashboard shows it."""
        return read_page(self.s, _EVENTS_NEWEST_FIRST, {"job_id": job_id}, limit, offset)

    def last_id(self, job_id: str) -> int:
        """The id of the job's newest event (0 if none): every change the controller makes to
        a job or its candidates writes an event, so a new id means something changed."""
        return int(self.s.scalar(select(func.max(Event.id)).where(Event.job_id == job_id)) or 0)


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def find_active(self, key_hash: str) -> ApiKey | None:
        return self.s.scalar(
            select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked.is_(False))
        )

    def get(self, owner: str, key_id: int) -> ApiKey | None:
        return self.s.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.owner == owner))

    def get_any(self, key_id: int) -> ApiKey | None:
        """For the command line, which an operator runs for every owner."""
        return self.s.get(ApiKey, key_id)

    def list(self, owner: str) -> Sequence[ApiKey]:
        """The owner's keys, revoked ones too, oldest first."""
        return self.s.scalars(select(ApiKey).where(ApiKey.owner == owner).order_by(ApiKey.id)).all()

    def list_all(self) -> Sequence[ApiKey]:
        """Every owner's keys (the command line), by owner then age."""
        return self.s.scalars(select(ApiKey).order_by(ApiKey.owner, ApiKey.id)).all()

    def revoke(self, key_id: int) -> None:
        """Mark a key revoked; the next request with it is refused (nothing caches keys)."""
        self.s.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked=True))

    def active_owner(self, key_id: int) -> str | None:
        """The owner of a key that is still valid (not revoked, not deleted)."""
        owner = self.s.scalar(
            select(ApiKey.owner).where(ApiKey.id == key_id, ApiKey.revoked.is_(False))
        )
        return None if owner is None else str(owner)


class HistoryRepository:
    """The history of finished candidates across jobs (``HistoryEntry``), by owner."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, entry: HistoryEntry) -> None:
        self.s.add(entry)

    def recorded(self, job_id: str) -> set[str]:
        """Names of the job's candidates already in the history."""
        return set(
            self.s.scalars(select(HistoryEntry.candidate).where(HistoryEntry.job_id == job_id))
        )

    def latest(self, owner: str | None, task: str | None, limit: int) -> Sequence[HistoryEntry]:
        """The newest ``limit`` entries of the owner (of every owner for ``None``), of one task
        or of all."""
        q = select(HistoryEntry)
        if owner is not None:
            q = q.where(HistoryEntry.owner == owner)
        if task is not None:
            q = q.where(HistoryEntry.task == task)
        return self.s.scalars(q.order_by(HistoryEntry.id.desc()).limit(limit)).all()

    def configurations(self, owner: str, limit: int) -> Sequence[Any]:
        """(meta, hparams) of the owner's newest ``limit`` entries: no other column decoded."""
        return self.s.execute(
            select(HistoryEntry.meta, HistoryEntry.hparams)
            .where(HistoryEntry.owner == owner)
            .order_by(HistoryEntry.id.desc())
            .limit(limit)
        ).all()

    def exists(self, owner: str) -> bool:
        """Whether the owner has any history at all (one row read)."""
        found = self.s.scalar(select(HistoryEntry.id).where(HistoryEntry.owner == owner).limit(1))
        return found is not None
