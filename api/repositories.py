"""Queries. Every read and write of an owner's objects is filtered by owner, so another owner's
job or dataset is simply not found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from api.models import Candidate, Dataset, Event, Iteration, Job, JobState, utcnow

CANDIDATE_SORTS = {
    "objective": Candidate.objective,
    "loss": Candidate.loss,
    "duration": Candidate.duration_s,
    "created": Candidate.id,
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
        total = self.s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = self.s.scalars(q.order_by(Dataset.created_at.desc()).limit(limit).offset(offset))
        return rows.all(), total

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


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, owner: str, job_id: str) -> Job | None:
        return self.s.scalar(select(Job).where(Job.id == job_id, Job.owner == owner))

    def get_any(self, job_id: str) -> Job | None:
        """For the controller, which works for every owner."""
        return self.s.get(Job, job_id)

    def list(
        self, owner: str, state: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Job], int]:
        q = select(Job).where(Job.owner == owner)
        if state:
            q = q.where(Job.state == state)
        total = self.s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = self.s.scalars(q.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset))
        return rows.all(), total

    def add(self, job: Job) -> Job:
        self.s.add(job)
        self.s.flush()
        return job

    def claim_next_queued(self) -> Job | None:
        """Move the oldest queued job to running; the conditional UPDATE makes the claim safe
        against another controller doing the same."""
        for job in self.s.scalars(
            select(Job).where(Job.state == JobState.queued).order_by(Job.created_at).limit(5)
        ):
            claimed = self.s.execute(
                update(Job)
                .where(Job.id == job.id, Job.state == JobState.queued)
                .values(
                    state=JobState.running,
                    started_at=utcnow(),
                    attempts=Job.attempts + 1,
                    error=None,
                )
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                self.s.refresh(job)
                return job
        return None

    def in_states(self, states: Sequence[str]) -> Sequence[Job]:
        return self.s.scalars(select(Job).where(Job.state.in_(states))).all()

    def counts_by_state(self) -> dict[str, int]:
        rows = self.s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        return {str(state): int(n) for state, n in rows}


class IterationRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def list(self, job_id: str) -> Sequence[Iteration]:
        return self.s.scalars(
            select(Iteration).where(Iteration.job_id == job_id).order_by(Iteration.iteration)
        ).all()

    def completed_count(self, job_id: str) -> int:
        return (
            self.s.scalar(select(func.count(Iteration.id)).where(Iteration.job_id == job_id)) or 0
        )


class CandidateRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

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
    ) -> tuple[Sequence[Candidate], int]:
        q = select(Candidate).where(Candidate.job_id == job_id)
        if iteration is not None:
            q = q.where(Candidate.iteration == iteration)
        if state:
            q = q.where(Candidate.state == state)
        total = self.s.scalar(select(func.count()).select_from(q.subquery())) or 0
        column = CANDIDATE_SORTS[sort]
        order: Any = column.desc() if descending else column.asc()
        # rows without a value (failed, still training) go last either way
        rows = self.s.scalars(
            q.order_by(column.is_(None), order, Candidate.id).limit(limit).offset(offset)
        )
        return rows.all(), total

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


class EventRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, job_id: str, kind: str, message: str, **data: Any) -> None:
        self.s.add(Event(job_id=job_id, kind=kind, message=message, data=data))

    def list(self, job_id: str, limit: int, offset: int) -> tuple[Sequence[Event], int]:
        q = select(Event).where(Event.job_id == job_id)
        total = self.s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = self.s.scalars(q.order_by(Event.id).limit(limit).offset(offset))
        return rows.all(), total
