"""The caller's history across jobs: past configurations ranked for a dataset."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import OwnerDep, SessionDep
from api.schemas import HistoryConfigurationPublic, HistoryConfigurationsPublic
from api.services.history import HistoryService

router = APIRouter(prefix="/api/v1/history", tags=["history"])


@router.get("/configurations", response_model=HistoryConfigurationsPublic)
def ranked_configurations(
    owner: OwnerDep,
    session: SessionDep,
    dataset_id: Annotated[
        str | None, Query(max_length=64, description="an upload's id (or give dataset)")
    ] = None,
    dataset: Annotated[
        str | None, Query(max_length=100, description="a built-in name, e.g. digits")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> HistoryConfigurationsPublic:
    """Configurations of the caller's past jobs ranked for a dataset: by the similarity of
    their data's meta-features to this dataset's and by F within their own job (score =
    similarity × (1 − relative_objective / 2), highest first; each configuration once)."""
    service = HistoryService(session)
    target = service.target(owner, dataset_id, dataset)
    ranked, total = service.rank(owner, target, limit)
    return HistoryConfigurationsPublic(
        data=[
            HistoryConfigurationPublic(**{k: v for k, v in asdict(r).items() if k != "owner"})
            for r in ranked
        ],
        count=total,
        dataset=target.name,
        meta=target.meta,
    )
