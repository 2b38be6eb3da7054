from __future__ import annotations

import json
import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import AppState, StateDep

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
    if not state.settings.run_controller and state.settings.api_workers > 1:
        # an HTTP process of `serve --workers N`: the controller (and Ray) run in the parent,
        # which reports here every few seconds
        checks.update(_controller_health(state))
    elif state.settings.executor == "ray":
        from workers.ray_executor import ray_reachable

        checks["ray"] = "ok" if ray_reachable() else "unreachable"
    else:
        checks["ray"] = "not used (AUTOML_EXECUTOR=in_process)"
    healthy = (
        checks["database"] == "ok"
        and checks["ray"] != "unreachable"
        and checks.get("controller", "ok") == "ok"
    )
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503
    )


def _controller_health(state: AppState) -> dict[str, object]:
    """What the controller process last reported, if it reported lately."""
    from api.main import CONTROLLER_HEALTH_FILE, CONTROLLER_HEALTH_INTERVAL_S

    path = state.store.root / CONTROLLER_HEALTH_FILE
    try:
        body = json.loads(path.read_text())
        age = time.time() - float(body["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"controller": "not reporting", "ray": "unknown"}
    if age > 5 * CONTROLLER_HEALTH_INTERVAL_S:
        return {"controller": f"not reporting for {age:.0f} s", "ray": "unknown"}
    ray = body.get("ray")
    return {
        "controller": "ok",
        "ray": ray if ray is not None else "not used (AUTOML_EXECUTOR=in_process)",
    }


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
