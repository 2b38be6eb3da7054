from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(state: StateDep) -> JSONResponse:
    """Database and Ray reachable: 200; otherwise 503 naming what is down."""
    checks: dict[str, object] = {}
    try:
        with state.factory() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report, don't raise
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if state.settings.executor == "ray":
        from workers.ray_executor import ray_reachable

        checks["ray"] = "ok" if ray_reachable() else "unreachable"
    else:
        checks["ray"] = "not used (AUTOML_EXECUTOR=in_process)"
    healthy = checks["database"] == "ok" and checks["ray"] != "unreachable"
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503
    )


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
