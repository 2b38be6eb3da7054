"""What a job found, for scripts and for the dashboard's pages alike: its ensemble, one
candidate with its training curves, the candidates as CSV, plot data, and live event streams.

These read-only routes accept the dashboard's session cookie as well as a Bearer key.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.db import session_scope
from api.deps import ReaderDep, SessionDep, StateDep
from api.schemas import CandidateDetail, CandidatePublic, EnsemblePublic, PlotPublic
from api.services.jobs import JobService
from api.services.plots import DEFAULT_MAX_HPARAM_POINTS, DEFAULT_MAX_POINTS, PlotService
from api.services.results import ResultService

router = APIRouter(prefix="/api/v1/jobs", tags=["results"])
streams = APIRouter(prefix="/api/v1", tags=["results"])

MAX_OFFSET = 2**31 - 1
EXPORT_MAX_ROWS = 100_000
# how often a stream looks at the database, and how long one connection lasts before the
# browser reconnects by itself (so a stopping server never waits long on an open stream)
STREAM_POLL_S = 0.5
STREAM_MAX_S = 30.0
STREAM_RETRY_MS = 1000

CandidateSort = Literal[
    "name",
    "iteration",
    "origin",
    "state",
    "family",
    "depth",
    "width",
    "optimizer",
    "learning_rate",
    "loss",
    "complexity",
    "objective",
    "duration",
    "node",
    "chosen",
]
CandidateStateQ = Literal["pending", "running", "completed", "stopped_early", "failed"]
JobStateQ = Literal["queued", "running", "evaluating", "succeeded", "failed", "cancelled"]


async def _results(session: SessionDep, state: StateDep) -> ResultService:
    return ResultService(session, state.store, state.settings.executor)


async def _plots(session: SessionDep, state: StateDep) -> PlotService:
    return PlotService(session, state.store, state.settings.executor)


ResultsDep = Annotated[ResultService, Depends(_results)]
PlotsDep = Annotated[PlotService, Depends(_plots)]
MaxPoints = Annotated[
    int, Query(ge=10, le=20_000, description="cap on the points sent (chosen/best always kept)")
]


@router.get("/{job_id}/ensemble", response_model=EnsemblePublic)
def get_ensemble(job_id: str, owner: ReaderDep, results: ResultsDep) -> EnsemblePublic:
    """The job's ensemble: each member with its family, depth, width, parameters, mixture
    weight and the iteration that added it."""
    job = results.jobs.get(owner, job_id)
    return EnsemblePublic.model_validate(results.ensemble(job).to_dict())


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet must not run a cell as a formula
    return value


@router.get("/{job_id}/candidates/export", response_class=Response)
def export_candidates(
    job_id: str,
    owner: ReaderDep,
    results: ResultsDep,
    iteration: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    candidate_state: Annotated[CandidateStateQ | None, Query(alias="state")] = None,
    family: Annotated[str | None, Query(max_length=20)] = None,
    sort: CandidateSort = "name",
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """The candidates as CSV: the rows and fields of ``GET …/candidates`` (hparams and metrics
    also spread into ``hparams.<name>`` / ``metrics.<name>`` columns), with the dashboard
    table's filters and sort, every page."""
    job = results.jobs.get(owner, job_id)
    page = results.candidate_page(
        job,
        iteration=iteration,
        state=candidate_state,
        family=family,
        sort=sort,
        order=order,
        page=1,
        size=EXPORT_MAX_ROWS,
        max_size=EXPORT_MAX_ROWS,
    )
    rows = [CandidatePublic.model_validate(r).model_dump(mode="json") for r in page.rows]
    fields = list(CandidatePublic.model_fields)
    spread: dict[str, list[str]] = {"hparams": [], "metrics": []}
    for key, names in spread.items():
        for row in rows:
            for name in row.get(key) or {}:
                if name not in names:
                    names.append(name)
    out = io.StringIO()
    writer = csv.writer(out)
    header = fields + [f"{k}.{n}" for k, names in spread.items() for n in names]
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [_cell(row.get(f)) for f in fields]
            + [_cell((row.get(k) or {}).get(n)) for k, names in spread.items() for n in names]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="candidates-{job.id}.csv"'},
    )


@router.get("/{job_id}/candidates/{name}", response_model=CandidateDetail)
def get_candidate(job_id: str, name: str, owner: ReaderDep, results: ResultsDep) -> Any:
    """One candidate with its per-epoch history (trained in process or on a Ray worker)."""
    _, row = results.candidate(owner, job_id, name)
    detail = CandidatePublic.model_validate(row).model_dump()
    return CandidateDetail(**detail, history=row.history or {})


@router.get("/{job_id}/plots/growth", response_model=PlotPublic)
def plot_growth(job_id: str, owner: ReaderDep, plots: PlotsDep) -> Any:
    """F of the previous and of the chosen ensemble per iteration; parameters and members."""
    return plots.growth(owner, job_id)


@router.get("/{job_id}/plots/loss_complexity", response_model=PlotPublic)
def plot_loss_complexity(
    job_id: str, owner: ReaderDep, plots: PlotsDep, max_points: MaxPoints = DEFAULT_MAX_POINTS
) -> Any:
    """Loss against complexity term of every scored candidate, with the Pareto front."""
    return plots.loss_complexity(owner, job_id, max_points)


@router.get("/{job_id}/plots/hparams", response_model=PlotPublic)
def plot_hparams(
    job_id: str,
    owner: ReaderDep,
    plots: PlotsDep,
    max_points: MaxPoints = DEFAULT_MAX_HPARAM_POINTS,
) -> Any:
    """Each hyperparameter against the objective F."""
    return plots.hparams(owner, job_id, max_points)


@router.get("/{job_id}/plots/sparsity", response_model=PlotPublic)
def plot_sparsity(job_id: str, owner: ReaderDep, plots: PlotsDep) -> Any:
    """The evaluation phase's validation metric against weight sparsity (kept level marked)."""
    return plots.sparsity(owner, job_id)


@router.get("/{job_id}/plots/curves", response_model=PlotPublic)
def plot_curves(
    job_id: str,
    owner: ReaderDep,
    plots: PlotsDep,
    candidate: Annotated[str, Query(max_length=64)],
) -> Any:
    """A candidate's training curves: loss and metric per epoch, training and validation."""
    return plots.curves(owner, job_id, candidate)


@streams.get("/plots/compare", response_model=PlotPublic)
def plot_compare(
    owner: ReaderDep,
    plots: PlotsDep,
    jobs: Annotated[list[str], Query(min_length=1, max_length=10)],
) -> Any:
    """The ensemble's F after each iteration, one line per job."""
    return plots.compare(owner, jobs)


# ---- live: server-sent events -------------------------------------------------------------------
def _known_job(job_id: str, owner: ReaderDep, session: SessionDep, state: StateDep) -> str:
    """404 before a stream starts, not an empty stream."""
    return JobService(session, state.store, state.settings.executor).get(owner, job_id).id


async def _poll(
    request: Request,
    read: Callable[[], dict[str, Any] | None],
    changed: Callable[[dict[str, Any]], ServerSentEvent],
    ends: Callable[[dict[str, Any]], bool],
) -> AsyncIterator[ServerSentEvent]:
    """Read a snapshot every STREAM_POLL_S; send an event when it changes; stop when the
    snapshot says so, when the client goes, or after STREAM_MAX_S (the client reconnects)."""
    deadline = time.monotonic() + STREAM_MAX_S
    last: dict[str, Any] | None = None
    first = True
    while True:
        snapshot = await anyio.to_thread.run_sync(read)
        if snapshot is None:
            yield ServerSentEvent(event="deleted", data={}, retry=STREAM_RETRY_MS)
            return
        key = {k: v for k, v in snapshot.items() if k != "elapsed_s"}
        if key != last:
            event = changed(snapshot)
            if first:
                event.retry = STREAM_RETRY_MS
                first = False
            yield event
            last = key
        if ends(snapshot):
            yield ServerSentEvent(event="end", data={"state": snapshot.get("state")})
            return
        if time.monotonic() > deadline or await request.is_disconnected():
            return
        await asyncio.sleep(STREAM_POLL_S)


@router.get("/{job_id}/stream", response_class=EventSourceResponse)
async def job_stream(
    request: Request,
    owner: ReaderDep,
    state: StateDep,
    job_id: Annotated[str, Depends(_known_job)],
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events for one job: ``job`` (its state and progress, with ``version``, the
    id of its newest event: a new version means candidates, iterations or events changed),
    then ``end`` when the job has finished, and the stream closes. ``deleted`` if it goes."""

    def read() -> dict[str, Any] | None:
        with session_scope(state.factory) as s:
            return ResultService(s, state.store, state.settings.executor).live(owner, job_id)

    def changed(snapshot: dict[str, Any]) -> ServerSentEvent:
        return ServerSentEvent(event="job", data=snapshot, id=str(snapshot["version"]))

    async for event in _poll(request, read, changed, lambda snap: bool(snap["finished"])):
        yield event


@streams.get("/stream/jobs", response_class=EventSourceResponse)
async def jobs_stream(
    request: Request,
    owner: ReaderDep,
    state: StateDep,
    job_state: Annotated[JobStateQ | None, Query(alias="state")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events for the jobs list: ``jobs`` with a new ``version`` whenever one of
    the owner's jobs (in ``state``, if given) was added, changed or deleted."""

    def read() -> dict[str, Any] | None:
        with session_scope(state.factory) as s:
            version = ResultService(s, state.store, state.settings.executor).list_version(
                owner, job_state
            )
        return {"version": version}

    def changed(snapshot: dict[str, Any]) -> ServerSentEvent:
        return ServerSentEvent(event="jobs", data=snapshot)

    async for event in _poll(request, read, changed, lambda _snap: False):
        yield event
