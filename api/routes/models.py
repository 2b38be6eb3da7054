"""A finished job's model: download (.keras or a zipped SavedModel), model card, predict."""

from __future__ import annotations

import json
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OwnerDep, SessionDep, StateDep
from api.errors import ConflictError, UnprocessableError
from api.models import JobState
from api.services.jobs import JobService

router = APIRouter(prefix="/api/v1/jobs", tags=["models"])

# strict: JSON numbers only (no true -> 1.0, no "1" -> 1.0); finite only
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[list[FiniteFloat]] = Field(
        min_length=1, max_length=10_000, description="raw feature rows, as uploaded"
    )


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]]
    count: int


_predictors: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()
_CACHE = 8


def _model_dir(job_id: str, owner: str, session: SessionDep, state: StateDep) -> Path:
    job = JobService(session, state.store, state.settings.executor).get(owner, job_id)
    path = state.store.job_dir(job.id)
    if job.state != JobState.succeeded or not (path / "model.keras").is_file():
        raise ConflictError(
            f"job {job_id!r} has no model yet (it is {job.state}); models exist once a job "
            "has succeeded"
        )
    return path


def _predictor(job_id: str, path: Path) -> Any:
    from automl.export import Predictor

    with _lock:
        if job_id in _predictors:
            _predictors.move_to_end(job_id)
            return _predictors[job_id]
        predictor = Predictor(path)
        _predictors[job_id] = predictor
        while len(_predictors) > _CACHE:
            _predictors.popitem(last=False)
        return predictor


@router.get("/{job_id}/model", response_class=FileResponse)
def download_model(
    job_id: str,
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
    format: Annotated[Literal["keras", "savedmodel"], Query()] = "keras",
) -> FileResponse:
    path = _model_dir(job_id, owner, session, state)
    if format == "keras":
        return FileResponse(
            path / "model.keras",
            media_type="application/octet-stream",
            filename=f"automl-{job_id}.keras",
        )
    archive = path / "savedmodel.zip"
    if not archive.is_file():
        tmp = shutil.make_archive(str(path / ".savedmodel.part"), "zip", path / "savedmodel")
        Path(tmp).replace(archive)
    return FileResponse(
        archive, media_type="application/zip", filename=f"automl-{job_id}-savedmodel.zip"
    )


@router.get("/{job_id}/model/card")
def model_card(job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep) -> Any:
    path = _model_dir(job_id, owner, session, state)
    return json.loads((path / "model_card.json").read_text())


@router.post("/{job_id}/predict", response_model=PredictResponse)
def predict(
    job_id: str, body: PredictRequest, owner: OwnerDep, session: SessionDep, state: StateDep
) -> PredictResponse:
    from automl.export import PredictionInputError

    path = _model_dir(job_id, owner, session, state)
    predictor = _predictor(job_id, path)
    for i, row in enumerate(body.rows):
        if len(row) != predictor.n_features:
            raise UnprocessableError(
                f"row {i} has {len(row)} values; the model takes {predictor.n_features} features",
                field=f"rows.{i}",
            )
    try:
        predictions = predictor.predict([list(r) for r in body.rows])
    except PredictionInputError as exc:
        field = (
            "rows"
            + (f".{exc.row}" if exc.row is not None else "")
            + (f".{exc.column}" if exc.column is not None else "")
        )
        raise UnprocessableError(str(exc), field=field) from None
    return PredictResponse(predictions=predictions, count=len(predictions))
