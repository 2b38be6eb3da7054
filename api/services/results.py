"""What a job found, as the dashboard and the JSON API show it: job summaries with the actions a
job's state allows, the candidates table (any column sorted, filtered, paginated in the
database), the ensemble's members, the evaluation phase, the event log, and comparisons.

Pages and JSON routes both call this; the pages add no rules of their own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from api.artifacts import ArtifactStore
from api.errors import NotFoundError, UnprocessableError
from api.models import Candidate, Event, Job, JobState, utcnow
from api.repositories import (
    CANDIDATE_TABLE_SORTS,
    CandidateRepository,
    DatasetRepository,
    EventRepository,
    IterationRepository,
    JobRepository,
)
from api.services.jobs import JobService, spec_iteration_limit

PAGE_SIZES = (25, 50, 100, 200)
MAX_PAGE_SIZE = PAGE_SIZES[-1]
_CANDIDATE_NAME = re.compile(r"^t\d+_c\d+$")
# the test metric a jobs list shows, by preference: the first one the result has
HEADLINE_METRICS = ("accuracy", "r2", "mse")


def allowed_actions(state: str) -> list[str]:
    """What a person may do to a job in ``state``: JobService enforces each of these (a race
    still gets its 409); the dashboard only offers the buttons that can succeed."""
    job_state = JobState(state)
    actions = []
    if not job_state.is_finished():
        actions.append("cancel")
    if job_state in (JobState.failed, JobState.cancelled):
        actions.append("resume")
    if job_state not in (JobState.running, JobState.evaluating):
        actions.append("delete")
    return actions


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def elapsed_s(job: Job) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or utcnow()
    return max(0.0, (_aware(end) - _aware(job.started_at)).total_seconds())


def time_left_s(job: Job) -> float | None:
    """Seconds of the spec's time budget left while the job runs (None without a budget or
    once it finished)."""
    budget = (job.spec or {}).get("time_budget_s")
    elapsed = elapsed_s(job)
    if budget is None or elapsed is None or job.finished_at is not None:
        return None
    return max(0.0, float(budget) - elapsed)


def headline_metric(result: dict[str, Any] | None) -> tuple[str, float] | None:
    metrics = (result or {}).get("test_metrics") or {}
    for name in HEADLINE_METRICS:
        value = metrics.get(name)
        if isinstance(value, int | float):
            return name, float(value)
    return None


def candidate_of_ensemble(ensemble_name: str | None) -> str | None:
    """``t3_c1/grow`` → ``t3_c1``: the candidate that a chosen ensemble added."""
    if not ensemble_name:
        return None
    name = ensemble_name.split("/", 1)[0]
    return name if _CANDIDATE_NAME.match(name) else None


@dataclass
class JobSummary:
    """One job as a row of the jobs list or the head of its page (and the live stream)."""

    id: str
    state: str
    dataset: str
    iteration: int | None
    max_iterations: int | None  # None: the time budget decides
    per_iteration: int
    candidates_done: int
    candidates_total: int
    best_objective: float | None
    test_metric: tuple[str, float] | None
    elapsed_s: float | None
    created_at: datetime
    stop_reason: str | None
    error: str | None
    cancel_requested: bool
    actions: list[str]
    time_left_s: float | None = None  # of the spec's time budget, while the job runs

    @property
    def finished(self) -> bool:
        return JobState(self.state).is_finished()

    @property
    def progress(self) -> float:
        """Share of the search done: completed iterations, and candidates within the current
        one; 1 once the job has succeeded (a failed or cancelled one keeps where it stopped)."""
        if self.state == JobState.succeeded:
            return 1.0
        if self.max_iterations is None and self.time_left_s is not None and self.elapsed_s:
            # the time budget decides how many iterations run: the share of it spent
            return max(0.0, min(1.0, self.elapsed_s / (self.elapsed_s + self.time_left_s)))
        if not self.max_iterations or self.iteration is None:
            return 0.0
        # the totals count every iteration so far; what is left belongs to the current one
        left = max(0, self.candidates_total - self.candidates_done)
        within = max(0.0, 1.0 - left / self.per_iteration) if self.per_iteration else 0.0
        done_iterations = self.iteration + (within if self.state != JobState.evaluating else 1)
        return max(0.0, min(1.0, done_iterations / self.max_iterations))

    def live(self, version: int) -> dict[str, Any]:
        """What the job's event stream sends (JSON)."""
        return {
            "id": self.id,
            "state": self.state,
            "finished": self.finished,
            "iteration": self.iteration,
            "max_iterations": self.max_iterations,
            "candidates_done": self.candidates_done,
            "candidates_total": self.candidates_total,
            "progress": round(self.progress, 4),
            "best_objective": self.best_objective,
            "stop_reason": self.stop_reason,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "elapsed_s": self.elapsed_s,
            "time_left_s": self.time_left_s,
            "actions": self.actions,
            "version": version,
        }


@dataclass
class CandidatePage:
    rows: Sequence[Candidate]
    total: int
    page: int
    pages: int
    size: int
    sort: str
    order: str
    iteration: int | None
    state: str | None
    family: str | None
    families: list[str]
    iterations: list[int]
    metric: str | None
    counts: dict[str, int] = field(default_factory=dict)

    def filters(self) -> dict[str, Any]:
        """The query that reproduces this table's rows (without the page)."""
        chosen = {
            "iteration": self.iteration,
            "state": self.state,
            "family": self.family,
            "sort": self.sort,
            "order": self.order,
        }
        return {k: v for k, v in chosen.items() if v is not None}


@dataclass
class MemberView:
    name: str
    family: str
    depth: int | None
    width: int | None
    params: int | None
    mixture_weight: float
    iteration: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EnsembleView:
    """The ensemble a job holds now: its final model once it has one, else the one its last
    completed iteration chose."""

    source: str  # final | search | none
    members: list[MemberView]
    params: int | None
    objective: float | None

    @property
    def max_weight(self) -> float:
        return max((abs(m.mixture_weight) for m in self.members), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "members": [m.to_dict() for m in self.members],
            "params": self.params,
            "objective": self.objective,
        }


class ResultService:
    def __init__(self, session: Session, store: ArtifactStore, default_executor: str) -> None:
        self.s = session
        self.jobs = JobService(session, store, default_executor)
        self.job_repo = JobRepository(session)
        self.candidates = CandidateRepository(session)
        self.iterations = IterationRepository(session)
        self.events = EventRepository(session)
        self.datasets = DatasetRepository(session)

    # ---- jobs --------------------------------------------------------------------------------
    def summaries(self, owner: str, jobs: Sequence[Job]) -> list[JobSummary]:
        names = self.datasets.names(owner, [j.dataset_id for j in jobs if j.dataset_id])
        return [self._summary(j, names) for j in jobs]

    def summary(self, owner: str, job: Job) -> JobSummary:
        return self.summaries(owner, [job])[0]

    def _summary(self, job: Job, dataset_names: dict[str, str]) -> JobSummary:
        if job.builtin_dataset:
            dataset = job.builtin_dataset
        elif job.dataset_id:
            dataset = dataset_names.get(job.dataset_id, job.dataset_id)
        else:
            dataset = "(deleted dataset)"
        return JobSummary(
            id=job.id,
            state=job.state,
            dataset=dataset,
            iteration=job.current_iteration,
            max_iterations=spec_iteration_limit(job.spec or {}),
            per_iteration=int((job.spec or {}).get("candidates_per_iteration", 0)),
            candidates_done=job.candidates_done,
            candidates_total=job.candidates_total,
            best_objective=job.best_objective,
            test_metric=headline_metric(job.result),
            elapsed_s=elapsed_s(job),
            time_left_s=time_left_s(job),
            created_at=job.created_at,
            stop_reason=job.stop_reason,
            error=job.error,
            cancel_requested=job.cancel_requested,
            actions=allowed_actions(job.state),
        )

    def live(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """The job's live state for its event stream; None once it no longer exists."""
        job = self.job_repo.get(owner, job_id)
        if job is None:
            return None
        return self.summary(owner, job).live(self.events.last_id(job.id))

    def list_version(self, owner: str, state: str | None) -> str:
        count, latest = self.job_repo.list_version(owner, state)
        return f"{count}:{latest.isoformat() if latest else '-'}"

    # ---- candidates --------------------------------------------------------------------------
    def candidate_page(
        self,
        job: Job,
        *,
        iteration: int | None = None,
        state: str | None = None,
        family: str | None = None,
        sort: str = "name",
        order: str = "asc",
        page: int = 1,
        size: int = 50,
        max_size: int = MAX_PAGE_SIZE,
    ) -> CandidatePage:
        if sort not in CANDIDATE_TABLE_SORTS:
            raise UnprocessableError(
                f"sort must be one of {', '.join(CANDIDATE_TABLE_SORTS)}, not {sort!r}",
                field="query.sort",
            )
        size = max(1, min(size, max_size))
        page = max(1, page)
        facets = self.candidates.facets(job.id)
        total = sum(
            n
            for it, st, fam, n in facets
            if (iteration is None or it == iteration)
            and (not state or st == state)
            and (not family or fam == family)
        )
        counts: dict[str, int] = {}
        for _, st, _, n in facets:
            counts[st] = counts.get(st, 0) + n
        rows = self.candidates.table_rows(
            job.id,
            iteration=iteration,
            state=state,
            family=family,
            sort=sort,
            descending=order == "desc",
            limit=size,
            offset=(page - 1) * size,
        )
        metrics = self.candidates.metric_names(job.id)
        return CandidatePage(
            rows=rows,
            total=total,
            page=page,
            pages=max(1, math.ceil(total / size)),
            size=size,
            sort=sort,
            order=order,
            iteration=iteration,
            state=state,
            family=family,
            families=sorted({f for _, _, f, _ in facets if f is not None}),
            iterations=sorted({it for it, _, _, _ in facets}),
            metric=next((m for m in ("accuracy", "mse") if m in metrics), None),
            counts=counts,
        )

    def candidate(self, owner: str, job_id: str, name: str) -> tuple[Job, Candidate]:
        job = self.jobs.get(owner, job_id)
        row = self.candidates.get_with_history(job.id, name)
        if row is None:
            raise NotFoundError(f"candidate {name!r} of job {job_id!r} not found")
        return job, row

    # ---- the ensemble ------------------------------------------------------------------------
    def ensemble(self, job: Job) -> EnsembleView:
        added = self._iteration_added(job)
        final = ((job.result or {}).get("ensemble") or {}) if job.result else {}
        if final.get("members"):
            members = [
                MemberView(
                    name=m["name"],
                    family=m.get("family") or (m.get("hparams") or {}).get("family", "?"),
                    depth=m.get("depth"),
                    width=_width(m.get("hparams") or {}),
                    params=m.get("params"),
                    mixture_weight=_weight(m.get("mixture_weight")),
                    iteration=added.get(m["name"]),
                )
                for m in final["members"]
            ]
            return EnsembleView("final", members, final.get("params"), final.get("objective"))
        iterations = self.iterations.summaries(job.id)
        if not iterations:
            return EnsembleView("none", [], None, None)
        last = iterations[-1].ensemble or {}
        names = list(last.get("members") or [])
        weights = list(last.get("mixture_weights") or [])
        rows = {c.name: c for c in self.candidates.by_names(job.id, names)}
        members = []
        for i, name in enumerate(names):
            row = rows.get(name)
            hp = row.hparams if row is not None else {}
            members.append(
                MemberView(
                    name=name,
                    family=str(hp.get("family", "?")),
                    depth=row.depth if row is not None else None,
                    width=_width(hp),
                    params=row.params if row is not None else None,
                    mixture_weight=_weight(weights[i] if i < len(weights) else 0.0),
                    iteration=added.get(name),
                )
            )
        return EnsembleView("search", members, last.get("params"), last.get("objective"))

    def _iteration_added(self, job: Job) -> dict[str, int]:
        """Member name → the iteration whose chosen ensemble first held it."""
        added: dict[str, int] = {}
        for it in self.iterations.summaries(job.id):
            for name in (it.ensemble or {}).get("members") or []:
                added.setdefault(name, it.iteration)
        return added

    # ---- the evaluation phase ----------------------------------------------------------------
    @staticmethod
    def evaluation(job: Job) -> dict[str, Any] | None:
        """The evaluation phase's record with, per step, the validation metric it compared."""
        ev = (job.result or {}).get("evaluation")
        if not ev:
            return None
        metric = ev.get("metric", "accuracy")
        steps = []
        for step in ev.get("steps") or []:
            value = (step.get("validation_metrics") or {}).get(metric)
            steps.append({**step, "metric_value": value})
        levels = sum(1 for s in steps if str(s.get("step", "")).startswith("prune_weights"))
        return {
            **ev,
            "steps": steps,
            "metric": metric,
            "cross_validation": ev.get("cross_validation"),
            "pruning_levels": levels,
        }

    # ---- events -------------------------------------------------------------------------------
    def events_page(self, job: Job, page: int, size: int) -> tuple[Sequence[Event], int, int]:
        size = max(1, min(size, MAX_PAGE_SIZE))
        page = max(1, page)
        rows, total = self.events.latest(job.id, size, (page - 1) * size)
        return rows, total, max(1, math.ceil(total / size))

    # ---- compare -----------------------------------------------------------------------------
    def compare(self, owner: str, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The chosen jobs side by side (the owner's only; an unknown id is a 404)."""
        ids = list(dict.fromkeys(job_ids))
        jobs = self.job_repo.get_many(owner, ids)
        missing = set(ids) - {j.id for j in jobs}
        if missing:
            raise NotFoundError(f"job {sorted(missing)[0]!r} not found", field="query.jobs")
        rows = []
        for job, summary in zip(jobs, self.summaries(owner, jobs), strict=True):
            result = job.result or {}
            ensemble = result.get("ensemble") or {}
            rows.append(
                {
                    "summary": summary,
                    "test_metrics": {
                        k: v
                        for k, v in (result.get("test_metrics") or {}).items()
                        if isinstance(v, int | float)
                    },
                    "params": ensemble.get("params"),
                    "members": len(ensemble.get("members") or []) or None,
                    "search_wall_s": result.get("search_wall_s"),
                    "iterations": self.iterations.completed_count(job.id),
                }
            )
        return rows


def _width(hparams: dict[str, Any]) -> int | None:
    value = hparams.get("filters", hparams.get("width"))
    return int(value) if isinstance(value, int | float) else None


def _weight(value: Any) -> float:
    """A member's mixture weight as one number: a vector weight (one per class) is shown by
    its mean absolute value — its |w|₁ spread over the classes."""
    if isinstance(value, list):
        return float(sum(abs(v) for v in value) / len(value)) if value else 0.0
    return float(value or 0.0)
