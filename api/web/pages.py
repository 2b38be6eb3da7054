"""The dashboard's pages. Each one gathers what its template needs from the services the JSON
routes use (JobService, DatasetService, ModelService, ResultService) and holds no rules of its
own; plots load their data from the JSON API (``/api/v1/jobs/{id}/plots/...``).

A page given ``?fragment=NAME`` answers with just that part of itself: the page's script
refreshes its live parts that way when the job's event stream says something changed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.auth import find_key
from api.deps import CodecDep, SessionDep, SessionOwnerDep, StateDep
from api.errors import APIError, ConflictError, UnprocessableError
from api.models import JobState
from api.routes.results import CandidateSort, CandidateStateQ
from api.schemas import JobCreate
from api.services.datasets import DatasetService
from api.services.history import HistoryService
from api.services.jobs import JobService
from api.services.models import ModelService
from api.services.results import PAGE_SIZES, ResultService
from api.web import forms
from api.web.session import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    CrossSiteRequestError,
    SessionCodec,
)
from api.web.templating import PageRoute, render, safe_next
from automl.data import builtin_datasets

router = APIRouter(route_class=PageRoute, include_in_schema=False)

TABS = {
    "overview": "Overview",
    "candidates": "Candidates",
    "analysis": "Analysis",
    "evaluation": "Evaluation",
    "model": "Model",
    "events": "Event log",
}
Tab = Literal["overview", "candidates", "analysis", "evaluation", "model", "events"]
JOBS_PAGE_SIZE = 25
EVENTS_PAGE_SIZE = 50
PREDICTIONS_SHOWN = 100
NOTICES = {
    "cancel_requested": "Cancellation requested: the job stops at its next check.",
    "cancelled": "The job was cancelled.",
    "resumed": "The job is queued again; it continues from its last completed iteration.",
    "deleted": "The job was deleted.",
    "dataset_deleted": "The dataset was deleted.",
    "uploaded": "The dataset was uploaded.",
    "signed_out": "You are signed out.",
}
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")
FAMILIES = ("dense", "conv1d", "conv2d")
SAMPLERS = ("tpe", "random", "nsga2", "rl")
# Lax, not Strict: a link to a job from elsewhere (a chat, an e-mail) opens signed in; every
# state change is a POST, which Lax never sends from another site, and each also needs the
# CSRF token.
SAME_SITE: Literal["lax"] = "lax"


# ---- who is asking ------------------------------------------------------------------------------
def page_owner(request: Request, owner: SessionOwnerDep, codec: CodecDep) -> str:
    """The signed-in owner; the page's forms get this session's CSRF token."""
    request.state.owner = owner
    request.state.csrf = codec.csrf_token(request.cookies.get(SESSION_COOKIE, ""))
    return owner


PageOwner = Annotated[str, Depends(page_owner)]


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.headers.get("host"):
        raise CrossSiteRequestError("this form was posted from another site; nothing was done")


def form_owner(
    request: Request,
    owner: PageOwner,
    codec: CodecDep,
    csrf: Annotated[str, Form()] = "",
) -> str:
    """The owner behind a state-changing form post, with its CSRF token checked."""
    _same_origin(request)
    if not codec.csrf_ok(request.cookies.get(SESSION_COOKIE), csrf):
        raise CrossSiteRequestError(
            "this form's security token is missing or stale; reload the page and try again"
        )
    return owner


FormOwner = Annotated[str, Depends(form_owner)]


async def _jobs(session: SessionDep, state: StateDep) -> JobService:
    return JobService(session, state.store, state.settings.executor)


async def _results(session: SessionDep, state: StateDep) -> ResultService:
    return ResultService(session, state.store, state.settings.executor)


async def _models(session: SessionDep, state: StateDep) -> ModelService:
    return ModelService(session, state.store, state.settings.executor)


async def _datasets(session: SessionDep, state: StateDep) -> DatasetService:
    return DatasetService(session, state.store, state.settings.max_upload_bytes)


async def _history(session: SessionDep) -> HistoryService:
    return HistoryService(session)


Jobs = Annotated[JobService, Depends(_jobs)]
Histories = Annotated[HistoryService, Depends(_history)]
Results = Annotated[ResultService, Depends(_results)]
Models = Annotated[ModelService, Depends(_models)]
Datasets = Annotated[DatasetService, Depends(_datasets)]


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---- sign in / out ------------------------------------------------------------------------------
def _pre_session(request: Request) -> str:
    return request.cookies.get(PRE_SESSION_COOKIE) or SessionCodec.new_pre_session()


@router.get("/")
def home() -> RedirectResponse:
    return _redirect("/jobs")


@router.get("/signin")
def signin_page(
    request: Request, codec: CodecDep, next: Annotated[str | None, Query()] = None
) -> Response:
    pre = _pre_session(request)
    response = render(
        request,
        "signin.html",
        {"next": safe_next(next), "csrf": codec.csrf_token(pre), "error": None},
    )
    response.set_cookie(PRE_SESSION_COOKIE, pre, httponly=True, samesite=SAME_SITE, path="/signin")
    return response


@router.post("/signin")
def signin(
    request: Request,
    codec: CodecDep,
    session: SessionDep,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/jobs",
) -> Response:
    _same_origin(request)
    pre = request.cookies.get(PRE_SESSION_COOKIE)
    if not codec.csrf_ok(pre, csrf):
        raise CrossSiteRequestError("the sign-in form is stale; reload the page and try again")
    row = find_key(session, key.strip()) if key.strip() else None
    if row is None:
        return render(
            request,
            "signin.html",
            {
                "next": safe_next(next),
                "csrf": csrf,
                "error": "unknown or revoked API key" if key.strip() else "enter your API key",
            },
            status_code=401,
        )
    response = _redirect(safe_next(next))
    response.set_cookie(
        SESSION_COOKIE,
        codec.issue(row.id),
        max_age=codec.ttl_s,
        httponly=True,
        samesite=SAME_SITE,
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path="/signin")
    return response


@router.post("/signout")
def signout(_owner: FormOwner) -> Response:
    response = _redirect("/signin?notice=signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- jobs ---------------------------------------------------------------------------------------
@router.get("/jobs")
def jobs_page(
    request: Request,
    owner: PageOwner,
    jobs: Jobs,
    results: Results,
    job_state: Annotated[str | None, Query(alias="state")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    fragment: Literal["rows"] | None = None,
    notice: str | None = None,
) -> Response:
    rows, total = jobs.list(owner, job_state or None, JOBS_PAGE_SIZE, (page - 1) * JOBS_PAGE_SIZE)
    context = {
        "jobs": results.summaries(owner, rows),
        "total": total,
        "page": page,
        "pages": max(1, -(-total // JOBS_PAGE_SIZE)),
        "state": job_state or "",
        "states": list(JobState),
        "notice": NOTICES.get(notice or ""),
        "stream": "/api/v1/stream/jobs" + (f"?state={job_state}" if job_state else ""),
        "version": results.list_version(owner, job_state or None),
    }
    return render(request, "_jobs_rows.html" if fragment else "jobs.html", context)


def _new_job_context(
    owner: str,
    datasets: DatasetService,
    values: dict[str, Any],
    errors: forms.FieldErrors | None = None,
    history: HistoryService | None = None,
) -> dict[str, Any]:
    uploads, _ = datasets.list(owner, 500, 0)
    # the warm-start checkbox, and per dataset how many past configurations it would draw on
    warm_counts, warm_names = history.new_job_choices(owner, uploads) if history else ({}, {})
    return {
        "warm_counts": warm_counts,
        "warm_names": warm_names,
        "builtins": builtin_datasets(),
        "uploads": uploads,
        "values": values,
        "errors": errors or forms.FieldErrors(),
        "optimizers": OPTIMIZERS,
        "families": FAMILIES,
        "samplers": SAMPLERS,
        "checked": forms.checked,
    }


@router.get("/jobs/new")
def new_job_page(
    request: Request,
    owner: PageOwner,
    datasets: Datasets,
    history: Histories,
    dataset: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    values = {"dataset": dataset or "builtin:digits", "spec": "{}", "evaluation": ""}
    context = _new_job_context(owner, datasets, values, history=history)
    return render(request, "new_job.html", context)


@router.post("/jobs/new")
async def create_job_from_form(
    request: Request, owner: FormOwner, jobs: Jobs, datasets: Datasets, history: Histories
) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        k: form.get(k) for k in ("dataset", "spec", "evaluation", "warm_start")
    }
    for name in forms.NUMBER_FIELDS + forms.CHOICE_FIELDS + forms.EVALUATION_NUMBER_FIELDS:
        values[name] = form.get(name)
    for name in forms.LIST_FIELDS:
        values[name] = [str(v) for v in form.getlist(name)]
    body, errors = forms.job_body(values)
    if not errors:
        try:
            job = jobs.create(owner, JobCreate.model_validate(body))
        except ValidationError as exc:
            for err in forms.api_errors(exc):
                errors.add(forms.form_field_for(err["field"], values), _labelled(err, values))
        except APIError as exc:
            path = exc.field or "(request)"
            errors.add(
                forms.form_field_for(path, values),
                _labelled({"field": path, "message": exc.message}, values),
            )
        else:
            return _redirect(f"/jobs/{job.id}")
    return render(
        request,
        "new_job.html",
        _new_job_context(owner, datasets, values, errors, history),
        status_code=422,
    )


def _labelled(err: dict[str, str], values: dict[str, Any]) -> str:
    """In the JSON area, a message names its field's path (the fields have their own)."""
    if forms.form_field_for(err["field"], values) == "spec" and err["field"] != "spec":
        return f"{err['field']}: {err['message']}"
    return err["message"]


@router.get("/jobs/{job_id}")
def job_page(
    request: Request,
    job_id: str,
    owner: PageOwner,
    results: Results,
    models: Models,
    tab: Tab = "overview",
    # filters come from a GET form, where "any" is an empty value
    iteration: Annotated[str | None, Query(max_length=10)] = None,
    candidate_state: Annotated[str | None, Query(alias="state", max_length=20)] = None,
    family: Annotated[str | None, Query(max_length=20)] = None,
    sort: CandidateSort = "name",
    order: Literal["asc", "desc"] = "asc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
    fragment: Literal["members", "candidates", "evaluation", "model", "events", "summary"]
    | None = None,
    notice: str | None = None,
) -> Response:
    job = results.jobs.get(owner, job_id)
    summary = results.summary(owner, job)
    context: dict[str, Any] = {
        "job": job,
        "summary": summary,
        "version": results.events.last_id(job.id),
        "tab": tab,
        "tabs": TABS,
        "notice": NOTICES.get(notice or ""),
        "page_sizes": PAGE_SIZES,
    }
    need = fragment or tab
    if need in ("overview", "members", "summary"):
        context["ensemble"] = results.ensemble(job)
    if need == "candidates":
        context["table"] = results.candidate_page(
            job,
            iteration=_optional_int(iteration, "iteration"),
            state=_optional_choice(candidate_state, CANDIDATE_STATES, "state"),
            family=family or None,
            sort=sort,
            order=order,
            page=page,
            size=size,
        )
    if need == "evaluation":
        context["evaluation"] = results.evaluation(job)
    if need == "model":
        context.update(_model_context(owner, job.id, models))
    if need == "events":
        rows, total, pages = results.events_page(job, page, EVENTS_PAGE_SIZE)
        context.update(events=rows, events_total=total, events_page=page, events_pages=pages)
    if fragment:
        return render(request, f"_frag_{fragment}.html", context)
    return render(request, "job.html", context)


CANDIDATE_STATES = get_args(CandidateStateQ)


def _optional_int(value: str | None, name: str) -> int | None:
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit():
        raise UnprocessableError(f"{name} must be a whole number, not {value!r}", field=name)
    return int(value)


def _optional_choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise UnprocessableError(
            f"{name} must be one of {', '.join(allowed)}, not {value!r}", field=name
        )
    return value


def _model_context(owner: str, job_id: str, models: ModelService) -> dict[str, Any]:
    try:
        return {"card": models.card(owner, job_id), "no_model": None}
    except ConflictError as exc:  # no model until the job has succeeded: say so on the tab
        return {"card": None, "no_model": exc.message}


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, owner: FormOwner, jobs: Jobs) -> Response:
    job = jobs.cancel(owner, job_id)
    notice = "cancelled" if job.state == JobState.cancelled else "cancel_requested"
    return _redirect(f"/jobs/{job.id}?notice={notice}")


@router.post("/jobs/{job_id}/resume")
def resume_job(job_id: str, owner: FormOwner, jobs: Jobs) -> Response:
    job = jobs.resume(owner, job_id)
    return _redirect(f"/jobs/{job.id}?notice=resumed")


@router.post("/jobs/{job_id}/delete")
def delete_job(job_id: str, owner: FormOwner, jobs: Jobs) -> Response:
    jobs.delete(owner, job_id)
    return _redirect("/jobs?notice=deleted")


@router.get("/jobs/{job_id}/download/{fmt}")
def download_model(
    job_id: str, fmt: Literal["keras", "savedmodel"], owner: PageOwner, models: Models
) -> Response:
    if fmt == "keras":
        return FileResponse(
            models.model_dir(owner, job_id) / "model.keras",
            media_type="application/octet-stream",
            filename=f"automl-{job_id}.keras",
        )
    return FileResponse(
        models.savedmodel_zip(owner, job_id),
        media_type="application/zip",
        filename=f"automl-{job_id}-savedmodel.zip",
    )


@router.post("/jobs/{job_id}/predict")
def predict(
    request: Request,
    job_id: str,
    owner: FormOwner,
    results: Results,
    models: Models,
    rows: Annotated[str, Form(max_length=5_000_000)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    job = results.jobs.get(owner, job_id)
    context: dict[str, Any] = {
        "job": job,
        "summary": results.summary(owner, job),
        "version": results.events.last_id(job.id),
        "tab": "model",
        "tabs": TABS,
        "rows_text": rows,
        "page_sizes": PAGE_SIZES,
        **_model_context(owner, job.id, models),
    }
    try:
        text = rows
        if file is not None and file.filename:
            text = file.file.read(5_000_001).decode("utf-8", errors="replace")
        parsed = forms.parse_rows(text)
        predictions = models.predict(owner, job.id, parsed)
    except UnprocessableError as exc:
        context["predict_error"] = exc.message
        return render(request, "job.html", context, status_code=422)
    context.update(
        predictions=predictions[:PREDICTIONS_SHOWN],
        predictions_total=len(predictions),
        prediction_rows=parsed[:PREDICTIONS_SHOWN],
    )
    return render(request, "job.html", context)


@router.get("/jobs/{job_id}/candidates/{name}")
def candidate_page(
    request: Request,
    job_id: str,
    name: str,
    owner: PageOwner,
    results: Results,
    fragment: Literal["candidate"] | None = None,
) -> Response:
    job, candidate = results.candidate(owner, job_id, name)
    context = {
        "job": job,
        "summary": results.summary(owner, job),
        "candidate": candidate,
        "version": results.events.last_id(job.id),
    }
    return render(request, "_frag_candidate.html" if fragment else "candidate.html", context)


# ---- datasets -----------------------------------------------------------------------------------
def _datasets_context(
    owner: str, datasets: DatasetService, max_bytes: int, **extra: Any
) -> dict[str, Any]:
    rows, total = datasets.list(owner, 200, 0)
    return {
        "datasets": rows,
        "total": total,
        "max_bytes": max_bytes,
        "builtins": builtin_datasets(),
        "errors": forms.FieldErrors(),
        "values": {},
        **extra,
    }


@router.get("/datasets")
def datasets_page(
    request: Request,
    owner: PageOwner,
    datasets: Datasets,
    state: StateDep,
    notice: str | None = None,
) -> Response:
    context = _datasets_context(
        owner, datasets, state.settings.max_upload_bytes, notice=NOTICES.get(notice or "")
    )
    return render(request, "datasets.html", context)


@router.post("/datasets")
def upload_dataset(
    request: Request,
    owner: FormOwner,
    datasets: Datasets,
    state: StateDep,
    file: Annotated[UploadFile | None, File()] = None,
    label: Annotated[str, Form(max_length=200)] = "",
    task: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    values = {"label": label, "task": task, "name": name}
    try:
        if file is None or not file.filename:
            raise UnprocessableError("choose a .csv or .npz file to upload", field="file")
        datasets.upload(owner, file.filename, file.file, label or None, task or None, name or None)
    except APIError as exc:
        errors = forms.FieldErrors()
        errors.add(exc.field or "file", exc.message)
        context = _datasets_context(
            owner, datasets, state.settings.max_upload_bytes, errors=errors, values=values
        )
        return render(request, "datasets.html", context, status_code=exc.status_code)
    return _redirect("/datasets?notice=uploaded")


@router.post("/datasets/{dataset_id}/delete")
def delete_dataset(dataset_id: str, owner: FormOwner, datasets: Datasets) -> Response:
    datasets.delete(owner, dataset_id)
    return _redirect("/datasets?notice=dataset_deleted")


# ---- compare ------------------------------------------------------------------------------------
@router.get("/compare")
def compare_page(
    request: Request,
    owner: PageOwner,
    jobs: Jobs,
    results: Results,
    chosen: Annotated[list[str], Query(alias="jobs", max_length=10)] = [],  # noqa: B006
) -> Response:
    recent, _ = jobs.list(owner, None, 50, 0)
    context = {
        "recent": results.summaries(owner, recent),
        "chosen": chosen,
        "rows": results.compare(owner, chosen) if chosen else [],
    }
    return render(request, "compare.html", context)
