"""The whole REST API fuzzed from its own /openapi.json with Schemathesis, on a real server.

With a valid key, every operation — multipart uploads included — gets generated requests, valid
and invalid (Schemathesis's positive and negative modes), and with the ids of a real dataset and
a real finished job as path parameters: no answer is a 5xx, each status is one the schema
documents, and each body matches the schema. Without a key every call is a 401 (but for the
public /healthz and /metrics); with another owner's key, no call reaches the first owner's data.

Bounded for CI (``MAX_EXAMPLES`` per operation and mode, derandomized); benchmarks/fuzz_api.py runs
the same fuzzer longer. The server never trains a fuzzed spec: a created job is made tiny before
it is sent, and every job left over is cancelled and deleted at the end.
"""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.reporting import with_reporter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import tiny_spec_dict
from tests.integration.conftest import Server, wait_for

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("AUTOML_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
PUBLIC = {"/healthz", "/metrics"}
REQUEST_TIMEOUT_S = 30
DATASET_NAME = "first-owners-secret-dataset"


def unparsed(response: requests.Response) -> bool:
    """A body refused because it cannot be parsed at all (not JSON, or a broken multipart form):
    FastAPI and Starlette parse a body before the route's dependencies check the key."""
    return response.status_code in (400, 422) and any(
        phrase in response.text
        for phrase in ("error parsing the body", "not valid JSON", "Invalid multipart data")
    )


def is_stream(path: str) -> bool:
    """Server-sent event streams stay open by design: a fuzzer's request would wait forever."""
    return path.endswith("/stream") or path.startswith("/api/v1/stream/")


# ---- the fuzzer (benchmarks/fuzz_api.py runs it too) -------------------------------------------
@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # "METHOD /path: title" -> example
    seconds: float = 0.0

    def add(self, other: FuzzReport) -> None:
        self.operations += other.operations
        self.cases += other.cases
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)
        self.seconds += other.seconds

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.operations} operation runs, {self.cases} cases, {len(self.failures)} "
            f"distinct failure(s) in {self.seconds:.0f} s; statuses {codes}"
        )


def _tiny_job(case: schemathesis.Case) -> None:
    """A job body that would be valid is kept small: the fuzzer tests the API, not training."""
    body = case.body
    spec = body.get("spec") if isinstance(body, dict) else None
    if isinstance(spec, dict):
        spec.update(
            max_iterations=1, candidates_per_iteration=1, epochs=1, evaluation={"enabled": False}
        )


@dataclass
class _Target:
    """What every request of one fuzzing run shares."""

    base_url: str
    session: requests.Session
    checks: list[Any] | None
    extra_check: Callable[[str, str, requests.Response], str | None] | None


def _one_case(target: _Target, method: str, path: str, case: Any, report: FuzzReport) -> None:
    """Send one case and record what the checks found; never raise."""
    _tiny_job(case)
    report.cases += 1
    try:
        response = case.call(
            base_url=target.base_url, session=target.session, timeout=REQUEST_TIMEOUT_S
        )
    except requests.RequestException as exc:
        report.failures[f"{method} {path}: {type(exc).__name__}"] = str(exc)[:300]
        return
    report.statuses[response.status_code] += 1
    titles = []
    if target.checks:
        try:
            case.validate_response(response, checks=target.checks)
        except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, or a FailureGroup
            for failure in getattr(exc, "exceptions", [exc]):
                titles.append(getattr(failure, "title", type(failure).__name__))
    if target.extra_check is not None:
        titles.append(target.extra_check(method, path, response))
    for title in filter(None, titles):
        report.failures.setdefault(
            f"{method} {path}: {title}",
            f"{case.as_curl_command()} -> {response.status_code} {response.text[:300]}",
        )


def _case_runner(
    target: _Target, method: str, path: str, report: FuzzReport
) -> Callable[[Any], None]:
    def one(case: Any) -> None:
        _one_case(target, method, path, case, report)

    return one


def fuzz(
    base_url: str,
    headers: dict[str, str],
    *,
    max_examples: int,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    select: Callable[[str, str], bool] = lambda method, path: True,
    path_parameters: Callable[[str, str], dict[str, Any] | None] = lambda m, p: None,
    checks: list[Any] | None = CHECKS,
    extra_check: Callable[[str, str, requests.Response], str | None] | None = None,
    derandomize: bool = True,
    log: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Fuzz every selected operation of the server's schema; failures are collected, not raised.

    ``extra_check(method, path, response)`` returns a failure's title, or None.
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    target = _Target(base_url, requests.Session(), checks, extra_check)
    report = FuzzReport()
    started = time.monotonic()
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the schema describes wrongly
            report.failures[f"schema: {type(result.err()).__name__}"] = str(result.err())[:300]
            continue
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if not select(method, path):
            continue
        for mode in modes:
            op_report = FuzzReport(operations=1)
            strategy = operation.as_strategy(
                generation_mode=mode, headers=headers, path_parameters=path_parameters(method, path)
            )
            run = settings(
                max_examples=max_examples,
                deadline=None,
                derandomize=derandomize,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(case=strategy)(_case_runner(target, method, path, op_report)))
            try:
                with with_reporter(lambda _message: None):  # no "@seed(...)" lines
                    run()
            except Unsatisfiable:
                continue  # nothing to generate in this mode (no invalid GET /healthz)
            report.add(op_report)
            if log is not None:
                log(f"{method:6} {path} [{mode.value}]: {op_report.cases} cases")
    report.seconds = time.monotonic() - started
    return report


# ---- the server with one owner's data ----------------------------------------------------------
@dataclass
class World:
    server: Server
    key: str
    other_key: str
    dataset_id: str
    job_id: str
    key_id: int


def _dataset_csv() -> bytes:
    rng = np.random.default_rng(5)
    y = np.arange(200) % 2
    x = rng.normal(size=(200, 3)) + 3.0 * y[:, None]  # two well-separated classes
    labels = np.where(y == 1, "p", "n")
    rows = "".join(f"{a:.3f},{b:.3f},{c:.3f},{t}\n" for (a, b, c), t in zip(x, labels, strict=True))
    return ("a,b,c,label\n" + rows).encode()


def start_world(workdir: Path) -> World:
    """A server (SQLite, in-process executor) with one owner's dataset and finished job, and a
    second owner's key."""
    env = {"AUTOML_EXECUTOR": "in_process"}
    srv = Server(f"sqlite:///{workdir / 'automl.db'}", workdir, extra_env=env).start()
    try:
        assert srv.first_key
        with srv.client() as c:
            r = c.post(
                "/api/v1/datasets",
                files={"file": ("fuzz.csv", io.BytesIO(_dataset_csv()))},
                data={"label": "label", "name": DATASET_NAME},
            )
            assert r.status_code == 201, r.text
            dataset_id = r.json()["id"]
            spec = tiny_spec_dict(max_iterations=1, epochs=10, evaluation={"enabled": False})
            r = c.post("/api/v1/jobs", json={"dataset_id": dataset_id, "spec": spec})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            assert wait_for(c, job_id, {"succeeded", "failed"}, timeout=300)["state"] == "succeeded"
            keys = c.get("/api/v1/keys")
            key_id = keys.json()["data"][0]["id"] if keys.status_code == 200 else 1
        other = srv.create_key("mallory")
    except BaseException:
        srv.stop()
        raise
    return World(srv, srv.first_key, other, dataset_id, job_id, key_id)


def stop_world(world: World) -> None:
    with world.server.client() as c:
        for job in c.get("/api/v1/jobs", params={"limit": 500}).json()["data"]:
            if job["state"] in ("queued", "running", "evaluating"):
                c.post(f"/api/v1/jobs/{job['id']}/cancel")
    world.server.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("api-fuzz"))
    try:
        yield w
    finally:
        stop_world(w)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def no_leftover_jobs(world: World) -> None:
    """Jobs the fuzzer managed to create are cancelled and deleted; none is left running."""
    with world.server.client() as c:
        for job in c.get("/api/v1/jobs", params={"limit": 500}).json()["data"]:
            if job["id"] == world.job_id:
                continue
            if job["state"] in ("queued", "running", "evaluating"):
                c.post(f"/api/v1/jobs/{job['id']}/cancel")
                wait_for(c, job["id"], {"cancelled", "failed", "succeeded"}, timeout=120)
            assert c.delete(f"/api/v1/jobs/{job['id']}").status_code == 204


def _check(report: FuzzReport) -> None:
    print(report.summary())
    listed = "\n".join(f"- {k}\n    {v}" for k, v in sorted(report.failures.items()))
    assert not report.failures, f"{report.summary()}\n{listed}"


# ---- the tests ---------------------------------------------------------------------------------
def test_with_a_valid_key_no_call_is_a_5xx_or_off_schema(world: World) -> None:
    report = fuzz_owner(world, MAX_EXAMPLES)
    no_leftover_jobs(world)
    with world.server.client() as c:  # the run's own data is still there
        assert c.get(f"/api/v1/jobs/{world.job_id}").json()["state"] == "succeeded"
        assert c.get(f"/api/v1/datasets/{world.dataset_id}").status_code == 200
    _check(report)


def fuzz_owner(world: World, max_examples: int, **options: Any) -> FuzzReport:
    """Generated path parameters, then the real dataset's and job's ids (GET and POST only: a
    DELETE of them would end the run's data); DELETE /keys/{key_id} never gets the key in use."""

    def generated(method: str, path: str) -> dict[str, Any] | None:
        return {"key_id": 2**31 - 1} if "{key_id}" in path else None

    def real(method: str, path: str) -> dict[str, Any] | None:
        return {"job_id": world.job_id, "dataset_id": world.dataset_id, "key_id": 2**31 - 1}

    report = fuzz(
        world.server.url,
        _auth(world.key),
        max_examples=max_examples,
        select=lambda m, p: not is_stream(p),
        path_parameters=generated,
        **options,
    )
    report.add(
        fuzz(
            world.server.url,
            _auth(world.key),
            max_examples=max_examples,
            modes=(GenerationMode.POSITIVE,),
            select=lambda m, p: not is_stream(p) and m != "DELETE" and "{" in p,
            path_parameters=real,
            **options,
        )
    )
    return report


def test_without_a_key_every_call_is_a_401(world: World) -> None:
    _check(fuzz_no_key(world, max(2, MAX_EXAMPLES // 2)))


def fuzz_no_key(world: World, max_examples: int, **options: Any) -> FuzzReport:
    """Every call is a 401, but for a body that cannot be parsed at all (see ``unparsed``):
    that is refused first, and the answer reveals nothing."""

    def only_401(method: str, path: str, response: requests.Response) -> str | None:
        if path in PUBLIC:
            return None if response.status_code == 200 else f"public: {response.status_code}"
        if response.status_code != 401 and not unparsed(response):
            return f"answered {response.status_code} without a key"
        return None

    return fuzz(
        world.server.url,
        {},
        max_examples=max_examples,
        path_parameters=lambda m, p: {
            "job_id": world.job_id,
            "dataset_id": world.dataset_id,
            "key_id": world.key_id,
        },
        checks=[not_a_server_error],
        extra_check=only_401,
        **options,
    )


def test_another_owners_key_never_reaches_the_first_owners_data(world: World) -> None:
    report = fuzz_other_owner(world, max(2, MAX_EXAMPLES // 2))
    with httpx.Client(base_url=world.server.url, headers=_auth(world.other_key)) as c:
        r = c.post("/api/v1/jobs", json={"dataset_id": world.dataset_id, "spec": {}})
        assert r.status_code == 404, r.text
    no_leftover_jobs(world)
    with world.server.client() as c:  # nothing of the first owner's was changed either
        assert c.get(f"/api/v1/jobs/{world.job_id}").json()["state"] == "succeeded"
        assert c.get(f"/api/v1/datasets/{world.dataset_id}").status_code == 200
    _check(report)


def fuzz_other_owner(world: World, max_examples: int, **options: Any) -> FuzzReport:
    """Mallory's key with the first owner's ids in every path: 401, 404 or 422 on those, and no
    answer anywhere holds the first owner's ids."""
    secrets = [world.dataset_id, world.job_id, world.key[:12], DATASET_NAME]

    def never_theirs(method: str, path: str, response: requests.Response) -> str | None:
        # a 404 may quote the id the caller sent; anything else of the first owner's is a leak
        text = response.text.replace(response.request.path_url or "", "")
        for sent in (world.job_id, world.dataset_id):
            if sent in (response.request.path_url or ""):
                text = text.replace(sent, "")
        if any(s in text for s in secrets):
            return "a response holds the first owner's data"
        if "{" in path and response.status_code not in (401, 404, 422) and not unparsed(response):
            return f"answered {response.status_code} for the first owner's resource"
        return None

    return fuzz(
        world.server.url,
        _auth(world.other_key),
        max_examples=max_examples,
        select=lambda m, p: not is_stream(p),
        path_parameters=lambda m, p: {
            "job_id": world.job_id,
            "dataset_id": world.dataset_id,
            "key_id": world.key_id,
        },
        checks=[not_a_server_error],
        extra_check=never_theirs,
        **options,
    )
