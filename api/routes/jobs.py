from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import OwnerDep, SessionDep, StateDep
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


@router.get("", response_model=JobsPublic)
def list_jobs(
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
    job_state: Annotated[str | None, Query(alias="state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobsPublic:
    rows, total = _service(session, state).list(owner, job_state, limit, offset, with_result=False)
    return JobsPublic(data=[job_summary(j) for j in rows], count=total)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep) -> JobPublic:
    return job_public(_service(session, state).get(owner, job_id))


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
def list_iterations(
    job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep
) -> IterationsPublic:
    job = _service(session, state).get(owner, job_id)
    rows = IterationRepository(session).list(job.id)
    return IterationsPublic(data=[IterationPublic.model_validate(r) for r in rows], count=len(rows))


@router.get("/{job_id}/candidates", response_model=CandidatesPublic)
def list_candidates(
    job_id: str,
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
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
    job = _service(session, state).get(owner, job_id)
    rows, total = CandidateRepository(session).list(
        job.id,
        iteration=iteration,
        state=candidate_state,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
    )
    return CandidatesPublic(data=[CandidatePublic.model_validate(r) for r in rows], count=total)


@router.get("/{job_id}/events", response_model=EventsPublic)
def list_events(
    job_id: str,
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> EventsPublic:
    job = _service(session, state).get(owner, job_id)
    rows, total = EventRepository(session).list(job.id, limit, offset)
    return EventsPublic(data=[EventPublic.model_validate(r) for r in rows], count=total)
