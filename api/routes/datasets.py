from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from api.deps import OwnerDep, SessionDep, StateDep
from api.schemas import DatasetPublic, DatasetsPublic
from api.services.datasets import DatasetService

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

# An offset past 2**63 overflows the databases' 64-bit integers (a 500). No list comes near
# 2**31 rows, so this bound keeps every backend in range and makes a bad offset a 422.
MAX_OFFSET = 2**31 - 1


def _service(session: SessionDep, state: StateDep) -> DatasetService:
    return DatasetService(session, state.store, state.settings.max_upload_bytes)


@router.post("", status_code=201, response_model=DatasetPublic)
def upload_dataset(
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
    file: Annotated[UploadFile, File(description="a .csv with a header row, or a .npz (x, y)")],
    label: Annotated[str | None, Form(description="label column (CSV)")] = None,
    task: Annotated[str | None, Form(description="classification or regression")] = None,
    name: Annotated[str | None, Form(max_length=200)] = None,
    column_types: Annotated[
        str | None,
        Form(
            description="CSV: a JSON object overriding detected column types, e.g. "
            '{"city": "categorical", "id": "ignore"} (numeric, categorical or ignore)'
        ),
    ] = None,
) -> DatasetPublic:
    row = _service(session, state).upload(
        owner, file.filename or "upload", file.file, label, task, name, column_types
    )
    return DatasetPublic.model_validate(row)


@router.get("", response_model=DatasetsPublic)
def list_datasets(
    owner: OwnerDep,
    session: SessionDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DatasetsPublic:
    rows, total = _service(session, state).list(owner, limit, offset)
    return DatasetsPublic(data=[DatasetPublic.model_validate(r) for r in rows], count=total)


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(
    dataset_id: str, owner: OwnerDep, session: SessionDep, state: StateDep
) -> DatasetPublic:
    return DatasetPublic.model_validate(_service(session, state).get(owner, dataset_id))


@router.delete("/{dataset_id}", status_code=204)
def delete_dataset(
    dataset_id: str, owner: OwnerDep, session: SessionDep, state: StateDep
) -> Response:
    _service(session, state).delete(owner, dataset_id)
    return Response(status_code=204)
