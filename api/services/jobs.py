"""Job rules: creation checks, state transitions for cancel/resume/delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api.artifacts import ArtifactStore
from api.db import after_commit
from api.errors import ConflictError, NotFoundError, UnprocessableError
from api.models import Job, JobState, utcnow
from api.repositories import DatasetRepository, EventRepository, JobRepository
from api.schemas import JobCreate, JobPublic, JobSummary, Progress
from api.services.history import HistoryService
from api.services.quotas import QuotaService
from automl.data import builtin_kind
from automl.errors import SpecError, UnknownDatasetError
from automl.spec import iteration_limit


def spec_iteration_limit(spec: dict[str, Any]) -> int | None:
    """The iterations a stored spec asks for; None when its time budget decides."""
    return iteration_limit(spec.get("max_iterations"), spec.get("time_budget_s"))


def _kind_of_shape(shape: list[int] | None) -> str:
    if shape and len(shape) == 3:
        return "image"
    if shape and len(shape) == 2:
        return "sequence"
    return "table"


class JobService:
    def __init__(self, session: Session, store: ArtifactStore, default_executor: str) -> None:
        self.s = session
        self.repo = JobRepository(session)
        self.datasets = DatasetRepository(session)
        self.events = EventRepository(session)
        self.store = store
        self.default_executor = default_executor

    def create(self, owner: str, body: JobCreate) -> Job:
        QuotaService.of(self.s).check_job(owner)
        if body.dataset is not None:
            try:
                kind = builtin_kind(body.dataset)
            except UnknownDatasetError as exc:
                raise UnprocessableError(str(exc), field="dataset") from None
        else:
            assert body.dataset_id is not None
            ds = self.datasets.get(owner, body.dataset_id)
            if ds is None:
                raise NotFoundError(f"dataset {body.dataset_id!r} not found", field="dataset_id")
            kind = _kind_of_shape(ds.input_shape)
        try:
            families = body.spec.resolve_families(kind)
        except SpecError as exc:
            raise UnprocessableError(str(exc), field="spec.families") from None
        # a warm start's configurations go into the stored spec: resume and replay need no more;
        # so do the epochs the data decides when the spec leaves them unset
        spec, warm = HistoryService(self.s).warm_start(
            owner, body.spec.for_data(kind), body.dataset_id, body.dataset, families
        )
        job = Job(
            owner=owner,
            dataset_id=body.dataset_id,
            builtin_dataset=body.dataset,
            spec=spec.to_dict(),
            executor=body.executor or self.default_executor,
            state=JobState.queued,
        )
        self.repo.add(job)
        self.events.add(job.id, "state", "job queued", state="queued")
        if warm is not None:
            self.events.add(job.id, "info", warm.message, warm_start=warm.data())
        return job

    def get(self, owner: str, job_id: str) -> Job:
        job = self.repo.get(owner, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return job

    def list(
        self, owner: str, state: str | None, limit: int, offset: int, with_result: bool = True
    ) -> tuple[Sequence[Job], int]:
        if state is not None and state not in JobState.__members__:
            raise UnprocessableError(
                f"state must be one of {', '.join(JobState.__members__)}, not {state!r}",
                field="query.state",
            )
        return self.repo.list(owner, state, limit, offset, with_result)

    def cancel(self, owner: str, job_id: str) -> Job:
        """A queued job is cancelled at once; a running or evaluating one gets a request that
        its controller honours at its next check. Each write is conditional on the state it was
        decided from, so a cancel that races the controller's claim cannot mark a job that has
        just started as cancelled behind its runner's back."""
        for _ in range(5):
            job = self.get(owner, job_id)
            state = JobState(job.state)
            if state.is_finished():
                raise ConflictError(f"job {job_id!r} is already {job.state}; nothing to cancel")
            if state == JobState.queued:
                if self.repo.transition(
                    job.id,
                    [JobState.queued],
                    owner,
                    state=JobState.cancelled,
                    finished_at=utcnow(),
                    lease_owner=None,
                ):
                    self.events.add(
                        job.id, "state", "job cancelled before it started", state="cancelled"
                    )
                    return self._reread(job)
            elif self.repo.transition(
                job.id, [JobState.running, JobState.evaluating], owner, cancel_requested=True
            ):
                self.events.add(job.id, "info", f"cancellation requested while {state}")
                return self._reread(job)
            # the state changed between the read and the write: decide again from the new one
        raise ConflictError(f"job {job_id!r} is changing state right now; try again")

    def resume(self, owner: str, job_id: str) -> Job:
        job = self.get(owner, job_id)
        resumable = [JobState.failed, JobState.cancelled]
        if job.state in resumable:  # queued again, it counts against the owner's job quota
            QuotaService.of(self.s).check_job(owner)
        if job.state not in resumable or not self.repo.transition(
            job.id,
            resumable,
            owner,
            state=JobState.queued,
            cancel_requested=False,
            error=None,
            finished_at=None,
            lease_owner=None,
            heartbeat_at=None,
            attempts=0,  # a person's retry starts a fresh count of crashed runs
        ):
            job = self._reread(job)
            raise ConflictError(
                f"job {job_id!r} is {job.state}; only a failed or cancelled job can be resumed"
            )
        self.events.add(
            job.id,
            "state",
            "job queued again: it continues from its last completed iteration",
            state="queued",
        )
        return self._reread(job)

    def delete(self, owner: str, job_id: str) -> None:
        job = self.get(owner, job_id)
        busy = [JobState.running, JobState.evaluating]
        if not self.repo.delete_unless(owner, job.id, busy):
            job = self._reread(job)
            raise ConflictError(f"job {job_id!r} is {job.state}; cancel it before deleting it")
        # the files go only once the row's deletion is committed
        after_commit(self.s, lambda: self.store.remove_job(job_id))

    def _reread(self, job: Job) -> Job:
        """The job as the database has it now (another writer may have changed it)."""
        job_id, owner = job.id, job.owner
        self.s.expire(job)
        fresh = self.repo.get(owner, job_id)
        if fresh is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return fresh


def job_public(job: Job) -> JobPublic:
    return JobPublic(**_job_fields(job), result=job.result)


def job_summary(job: Job) -> JobSummary:
    """The job without its result (a row loaded ``with_result=False`` never reads it)."""
    return JobSummary(**_job_fields(job))


def _job_fields(job: Job) -> dict[str, Any]:
    spec = job.spec or {}
    end = job.finished_at or (utcnow() if job.started_at else None)
    elapsed = None
    if job.started_at and end:
        elapsed = (_aware(end) - _aware(job.started_at)).total_seconds()
    return dict(
        id=job.id,
        state=job.state,
        dataset_id=job.dataset_id,
        dataset=job.builtin_dataset,
        spec=spec,
        executor=job.executor,
        progress=Progress(
            iteration=job.current_iteration,
            max_iterations=spec_iteration_limit(spec),
            candidates_done=job.candidates_done,
            candidates_total=job.candidates_total,
            best_objective=job.best_objective,
            time_budget_s=spec.get("time_budget_s"),
            time_left_s=(
                max(0.0, float(spec["time_budget_s"]) - elapsed)
                if spec.get("time_budget_s") is not None
                and elapsed is not None
                and job.finished_at is None
                else None
            ),
        ),
        stop_reason=job.stop_reason,
        error=job.error,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        elapsed_s=elapsed,
    )


def _aware(dt: datetime) -> datetime:
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
