"""A finished job's model: download (.keras or a zipped SavedModel), model card, predict."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OwnerDep, SessionDep, StateDep
from api.services.models import ModelService

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


def _service(session: SessionDep, state: StateDep) -> ModelService:
    return ModelService(session, state.store, state.settings.executor)


@router.get("/{job_id}/model", response_class=FileResponse)
def download_model(
    job_id: str,
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
    format: Annotated[Literal["keras", "savedmodel"], Query()] = "keras",
) -> FileResponse:
    service = _service(session, state)
    if format == "keras":
        return FileResponse(
            service.model_dir(owner, job_id) / "model.keras",
            media_type="application/octet-stream",
            filename=f"automl-{job_id}.keras",
        )
    archive = service.savedmodel_zip(owner, job_id)
    return FileResponse(
        archive, media_type="application/zip", filename=f"automl-{job_id}-savedmodel.zip"
    )


@router.get("/{job_id}/model/card")
def model_card(job_id: str, owner: OwnerDep, session: SessionDep, state: StateDep) -> Any:
    return _service(session, state).card(owner, job_id)


@router.post("/{job_id}/predict", response_model=PredictResponse)
def predict(
    job_id: str, body: PredictRequest, owner: OwnerDep, session: SessionDep, state: StateDep
) -> PredictResponse:
    predictions = _service(session, state).predict(owner, job_id, [list(r) for r in body.rows])
    return PredictResponse(predictions=predictions, count=len(predictions))
