"""A finished job's model: download (.keras or a zipped SavedModel), model card, predict."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from api.deps import KeyDep, OwnerDep, SessionDep, StateDep, read_job_in_one_step
from api.services.models import ModelService

router = APIRouter(prefix="/api/v1/jobs", tags=["models"])


def _cell(value: Any) -> Any:
    """A JSON number (finite), a text or null; never true/false (no true -> 1.0). Which of them
    a model takes is the model's rule: numbers only, unless it was trained on a table of raw
    cells (the service checks, naming the cell)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid number, a text or null")
    if not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    return value


Cell = Annotated[float | str | None, BeforeValidator(_cell)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[list[Cell]] = Field(
        min_length=1,
        max_length=10_000,
        description="raw feature rows, as uploaded (without the label): numbers; for a table "
        "with text or missing cells, each cell as the CSV holds it — text, a number, or null "
        'or "" for a missing cell',
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


@router.get(
    "/{job_id}/model/card",
    response_model=None,
    responses={
        200: {
            "description": "the model card: dataset, preprocessing, members, sparsity, metrics",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def model_card(job_id: str, state: StateDep, key: KeyDep) -> Response:
    # a polled read: one worker-thread step (api.deps.read_in_one_step). The card is encoded
    # by orjson, not FastAPI's jsonable_encoder, which walks every value of a card in Python
    # (a non-finite number becomes null, where the standard encoder would fail the request),
    # and once per version of its file (api.services.models)
    card = await read_job_in_one_step(
        state, key, job_id, lambda job, session: _service(session, state).card_bytes_of(job)
    )
    return Response(card, media_type="application/json")


@router.post("/{job_id}/predict", response_model=PredictResponse)
def predict(
    job_id: str, body: PredictRequest, owner: OwnerDep, session: SessionDep, state: StateDep
) -> PredictResponse:
    predictions = _service(session, state).predict(owner, job_id, [list(r) for r in body.rows])
    return PredictResponse(predictions=predictions, count=len(predictions))
