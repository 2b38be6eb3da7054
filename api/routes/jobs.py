from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from api.deps import (
    KeyDep,
    OwnerDep,
    SessionDep,
    StateDep,
    read_in_one_step,
    read_job_in_one_step,
)
from api.models import Job
from api.repositories import CandidateRepository, EventRepository, IterationRepository
from api.schemas import (
    CandidatePublic,
    CandidatesPublic,
    EventPublic,
    EventsPublic,
    IterationPublic,
    IterationsPublic,
    JobCreate,
    JobPublic,
    JobsPublic,
)
from api.services.jobs import JobService, job_public, job_summary

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

# a row count no table reaches; larger values overflow the databases' integers (a 500 on SQLite)
MAX_OFFSET = 2**31 - 1


def _service(session: SessionDep, state: StateDep) -> JobService:
    return JobService(session, state.store, state.settings.executor)


@router.post("", status_code=201, response_model=JobPublic)
def create_job(body: JobCreate, owner: OwnerDep, session: SessionDep, state: StateDep) -> JobPublic:
    return job_public(_service(session, state).create(owner, body))


# The reads a dashboard or a script polls are async routes doing their blocking part in one
# worker-thread step (api.deps.read_in_one_step); the rest stay sync routes with dependencies.
@router.get("", response_model=JobsPublic)
async def list_jobs(
    state: StateDep,
    key: KeyDep,
    job_state: Annotated[str | None, Query(alias="state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobsPublic:
    def read(owner: str, session: Session) -> JobsPublic:
        service = _service(session, state)
        rows, total = service.list(owner, job_state, limit, offset, with_result=False)
        return JobsPublic(data=[job_summary(j) for j in rows], count=total)

    return await read_in_one_step(state, key, read)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: str, state: StateDep, key: KeyDep) -> JobPublic:
    # the key, the ownership and the job itself: one statement
    return await read_job_in_one_step(
        state, key, job_id, lambda job, _session: job_public(job), whole=True
    )


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep) -> JobPublic:
    return job_public(_service(session, state).cancel(owner, job_id))


@router.post("/{job_id}/resume", response_model=JobPublic)
def resume_job(job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep) -> JobPublic:
    return job_public(_service(session, state).resume(owner, job_id))


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep) -> Response:
    _service(session, state).delete(owner, job_id)
    return Response(status_code=204)


@router.get("/{job_id}/iterations", response_model=IterationsPublic)
async def list_iterations(job_id: str, state: StateDep, key: KeyDep) -> IterationsPublic:
    def read(job: Job, session: Session) -> IterationsPublic:
        rows = IterationRepository(session).list(job.id)
        data = [IterationPublic.model_validate(r) for r in rows]
        return IterationsPublic(data=data, count=len(rows))

    return await read_job_in_one_step(state, key, job_id, read)


@router.get("/{job_id}/candidates", response_model=CandidatesPublic)
async def list_candidates(
    job_id: str,
    state: StateDep,
    key: KeyDep,
    iteration: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    candidate_state: Annotated[
        Literal["pending", "running", "completed", "stopped_early", "failed"] | None,
        Query(alias="state"),
    ] = None,
    sort: Literal["objective", "loss", "duration", "created"] = "created",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> CandidatesPublic:
    def read(job: Job, session: Session) -> CandidatesPublic:
        rows, total = CandidateRepository(session).list(
            job.id,
            rows=True,
            iteration=iteration,
            state=candidate_state,
            sort=sort,
            descending=order == "desc",
            limit=limit,
            offset=offset,
        )
        data = [CandidatePublic.model_validate(r) for r in rows]
        return CandidatesPublic(data=data, count=total)

    return await read_job_in_one_step(state, key, job_id, read)


@router.get("/{job_id}/events", response_model=EventsPublic)
async def list_events(
    job_id: str,
    state: StateDep,
    key: KeyDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> EventsPublic:
    def read(job: Job, session: Session) -> EventsPublic:
        rows, total = EventRepository(session).list_rows(job.id, limit, offset)
        data = [EventPublic.model_validate(r) for r in rows]
        return EventsPublic(data=data, count=total)

    return await read_job_in_one_step(state, key, job_id, read)
