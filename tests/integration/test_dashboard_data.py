"""The dashboard's JSON behind big jobs, on SQLite and PostgreSQL: a job of 3,000 candidates
written straight into the database (by the benchmark's writer), read through the real app
(in process, no controller, no Ray). Plots stay within their point cap and keep the chosen,
the best and the Pareto front; tables sort on any column and never hold more than a page."""

from __future__ import annotations

import csv
import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db import make_engine, make_session_factory
from api.main import create_app
from api.services.plots import cap_points
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "dashboard_bench", ROOT / "benchmarks" / "dashboard_bench.py"
)
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

ITERATIONS, PER_ITERATION = 15, 200


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, str]]:
    from tests.integration.conftest import POSTGRES_ADMIN_URL, drop_postgres_db, make_postgres_db

    workdir = tmp_path_factory.mktemp(f"big-{request.param}")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'automl.db'}"
    else:
        url, name = make_postgres_db(request.getfixturevalue("postgres_admin"))
    settings = Settings(
        database_url=url,
        artifact_dir=workdir / "artifacts",
        executor="in_process",
        run_controller=False,
    )
    try:
        with TestClient(create_app(settings)) as client:  # the lifespan migrates the schema
            engine = make_engine(url)
            job_id, key = bench.make_big_job(
                make_session_factory(engine), iterations=ITERATIONS, per_iteration=PER_ITERATION
            )
            engine.dispose()
            client.headers["Authorization"] = f"Bearer {key}"
            yield client, job_id
    finally:
        if name:
            drop_postgres_db(POSTGRES_ADMIN_URL, name)


def _rows(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    text = client.get(f"/api/v1/jobs/{job_id}/candidates/export").text
    return list(csv.DictReader(io.StringIO(text)))


def pareto_front(points: list[tuple[float, float, str]]) -> list[str]:
    """The candidates no other beats in both complexity and loss (both minimised)."""
    return [
        key
        for x, y, key in points
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2, _ in points)
    ]


def test_cap_keeps_what_must_be_seen() -> None:
    order = list(range(1000))
    kept = cap_points(order, {3, 997}, 100)
    assert len(kept) == 100 and {3, 997} <= set(kept) and kept == sorted(kept)
    assert cap_points(order, {3}, 100) == cap_points(order, {3}, 100)  # the same every refresh
    assert cap_points(order[:50], set(), 100) == order[:50]


def test_scatter_of_a_big_job_is_capped_and_keeps_chosen_best_and_front(
    big: tuple[TestClient, str],
) -> None:
    client, job_id = big
    rows = _rows(client, job_id)
    scored = [r for r in rows if r["objective"]]
    chosen = {r["name"] for r in rows if r["chosen"] == "True"}
    best = min(scored, key=lambda r: float(r["objective"]))["name"]
    fig = client.get(f"/api/v1/jobs/{job_id}/plots/loss_complexity?max_points=500").json()
    meta = fig["meta"]
    shown = [
        d[0] for t in fig["data"] if t["meta"]["role"] == "candidates" for d in t["customdata"]
    ]
    assert meta["capped"] and meta["points"] == len(shown) == 500
    assert meta["scored"] == len(scored) and meta["total"] == ITERATIONS * PER_ITERATION
    assert len(chosen) == ITERATIONS and chosen <= set(shown)
    assert meta["best"] == best and best in shown
    assert set(meta["pareto"]) <= set(shown)
    # the front drawn is the front of every scored candidate (a brute-force check)
    every = [(float(r["complexity"]), float(r["loss"]), r["name"]) for r in scored]
    assert sorted(meta["pareto"]) == sorted(pareto_front(every))
    front = next(t for t in fig["data"] if t["meta"]["role"] == "front")
    assert front["x"] == sorted(front["x"]) and front["y"] == sorted(front["y"], reverse=True)
    # uncapped, every scored candidate is a point
    full = client.get(f"/api/v1/jobs/{job_id}/plots/loss_complexity?max_points=20000").json()
    assert full["meta"]["points"] == len(scored) and not full["meta"]["capped"]


def test_hparams_plot_is_capped_with_one_panel_per_hyperparameter(
    big: tuple[TestClient, str],
) -> None:
    client, job_id = big
    fig = client.get(f"/api/v1/jobs/{job_id}/plots/hparams?max_points=300").json()
    assert fig["meta"]["points"] == 300 and fig["meta"]["capped"]
    panels: dict[str, list[dict[str, Any]]] = {}
    for trace in fig["data"]:  # per hyperparameter: the others, then the chosen ones
        panels.setdefault(trace["name"], []).append(trace)
    assert {"family", "depth", "learning_rate", "optimizer"} <= set(panels)
    for name in ("family", "depth", "learning_rate", "optimizer"):  # every candidate has these
        assert sum(len(t["x"]) for t in panels[name]) == 300, name
    assert 0 < sum(len(t["x"]) for t in panels["filters"]) < 300  # conv1d candidates only
    chosen = [d for t in panels["depth"] if t["meta"]["chosen"] for d in t["customdata"]]
    assert len(chosen) == ITERATIONS  # every chosen candidate survives the cap
    axis = panels["learning_rate"][0]["xaxis"].replace("x", "xaxis")
    assert fig["layout"][axis]["type"] == "log"


def test_growth_and_curves_and_ensemble(big: tuple[TestClient, str]) -> None:
    client, job_id = big
    growth = client.get(f"/api/v1/jobs/{job_id}/plots/growth").json()
    chosen = next(t for t in growth["data"] if t["meta"]["role"] == "chosen")
    assert chosen["x"] == list(range(ITERATIONS))
    assert chosen["y"] == sorted(chosen["y"], reverse=True)  # F falls as the ensemble grows
    curves = client.get(f"/api/v1/jobs/{job_id}/plots/curves?candidate=t3_c5").json()
    assert curves["meta"]["epochs"] == 20
    assert {t["name"] for t in curves["data"]} >= {"loss (training)", "accuracy (validation)"}
    ensemble = client.get(f"/api/v1/jobs/{job_id}/ensemble").json()
    assert ensemble["source"] == "final" and len(ensemble["members"]) == 10
    assert all(m["iteration"] is not None for m in ensemble["members"])
    assert client.get(f"/api/v1/jobs/{job_id}/plots/curves?candidate=t99_c0").status_code == 404


@pytest.mark.parametrize(
    ("sort", "key"),
    [("objective", "objective"), ("learning_rate", "hparams.learning_rate"), ("depth", "depth")],
)
def test_the_table_sorts_any_column_in_the_database_one_page_at_a_time(
    big: tuple[TestClient, str], sort: str, key: str
) -> None:
    client, job_id = big
    text = client.get(f"/api/v1/jobs/{job_id}/candidates/export?sort={sort}&order=desc").text
    rows = list(csv.DictReader(io.StringIO(text)))
    values = [float(r[key]) for r in rows if r[key]]
    assert len(rows) == ITERATIONS * PER_ITERATION and values == sorted(values, reverse=True)
    assert all(not r[key] for r in rows[len(values) :])  # rows without a value go last
    filtered = client.get(
        f"/api/v1/jobs/{job_id}/candidates/export?family=conv1d&iteration=4&state=completed"
    ).text
    got = list(csv.DictReader(io.StringIO(filtered)))
    assert got and all(
        r["hparams.family"] == "conv1d" and r["iteration"] == "4" and r["state"] == "completed"
        for r in got
    )


def test_the_table_page_never_holds_more_rows_than_its_size(big: tuple[TestClient, str]) -> None:
    import re

    client, job_id = big
    key = client.headers.pop("Authorization").removeprefix("Bearer ")
    try:
        form = client.get("/signin").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        signed = client.post(
            "/signin", data={"key": key, "csrf": csrf.group(1)}, follow_redirects=False
        )
        assert signed.status_code == 303
        for size, page, expected in ((200, 1, 200), (25, 120, 25), (200, 15, 200), (200, 16, 0)):
            html = client.get(
                f"/jobs/{job_id}?tab=candidates&sort=learning_rate&size={size}&page={page}"
            ).text
            assert html.count("<tr data-candidate=") == expected, (size, page)
        assert client.get(f"/jobs/{job_id}?tab=candidates&size=5000").status_code == 422
    finally:
        client.cookies.clear()
        client.headers["Authorization"] = f"Bearer {key}"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/jobs/abc?tab=model", "/jobs/abc?tab=model"),
        ("//evil.test/x", "/jobs"),
        ("https://evil.test", "/jobs"),
        ("/\\evil.test", "/jobs"),
        ("", "/jobs"),
        (None, "/jobs"),
    ],
)
def test_sign_in_only_returns_to_a_page_of_this_site(target: str | None, expected: str) -> None:
    from api.web.templating import safe_next

    assert safe_next(target) == expected
