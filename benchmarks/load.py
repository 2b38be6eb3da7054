"""Load: a bounded async client against a real `automl serve` while a job trains.

    .venv/bin/python benchmarks/load.py [--db sqlite|postgres|both] [--submissions 100]
        [--reads 1000] [--concurrency 50] [--executor in_process] [--json out.json]
        [--read-client httpx|wrk] [--wrk-seconds 10]

Per database (SQLite file, or a PostgreSQL database made for the run and dropped after):

1. Burst. A fresh server (``AUTOML_MAX_CONCURRENT_JOBS=1``, the default) finishes a tiny iris
   job (its model card is one of the reads), then starts a longer digits job. While that one
   trains, ``--submissions`` job creations (tiny spec: 1 iteration, 1 candidate, 1 epoch, no
   evaluation phase) and ``--reads`` reads are sent in a shuffled mix, at most
   ``--concurrency`` in flight: GET /api/v1/jobs, /jobs/{id}, /jobs/{id}/candidates,
   /jobs/{id}/events and /jobs/{id}/model/card, one fifth each. Latency is measured from the
   moment a request gets its place in flight (time queued in this client is not counted).
   Then, once every job has ended: none lost (each 201's id is listed, and the count is what
   was created), none stuck (queued, running or evaluating), and the queue started in order —
   jobs sorted by (created_at, id), the order the controller claims them in, against their
   first "job running" event (started_at is rewritten by a retry, the first event is not).
2. Fairness. A fresh server with ``AUTOML_MAX_CONCURRENT_JOBS=--fair-concurrency`` gets
   ``--fair-jobs`` identical digits jobs at once (several candidates each). Per job:
   candidates per minute over its own running time and over the time it shared the service
   with another running job, and the longest wait between two of its candidates finishing.
   min/max of the shared rates near 1 means the running jobs share the workers evenly.

Targets: 0 errors, no "database is locked" in the server's log, read p99 < 200 ms.

The client keeps ``--concurrency`` requests in flight, so a burst request's latency is close
to concurrency / the server's throughput (Little's law), queueing included; the reads sent one
at a time before the burst (idle, then while the job trains) give what one request costs.
Compare ``--concurrency 10`` with 50 to tell the two apart. This client costs 2–5 ms of CPU
per request on the server's own two cores, about what the server spends: ``--read-client wrk``
sends the burst's reads with wrk (C; `make bench-tools`) instead, ``--concurrency``
connections for ``--wrk-seconds``, while this client sends the submissions beside them, 10 in
flight; wrk gives percentiles over all its reads (no split by kind).

In the fairness phase a job counts as sharing when another job ran during at least half its
run (and 5 s): the last job of a queue that only overlaps a tail is rated alone.

The server runs the in_process executor by default: training then shares the API's process
(and its GIL) and the machine's two cores with the requests, which is the harder case for
latency, and no Ray daemons swamp a 2-core machine; ``--executor ray`` measures the other.
The per-owner job quota (``AUTOML_MAX_JOBS_PER_OWNER``, 20 by default) would turn most of a
one-owner burst into 429s by design, so it is raised to ``--max-jobs-per-owner``; the lease
settings are the service's defaults, not the integration tests' short ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._wrk import wrk_reads  # noqa: E402
from tests.integration.conftest import POSTGRES_ADMIN_URL, Server  # noqa: E402

FINISHED = {"succeeded", "failed", "cancelled"}
READ_KINDS = ("list", "get", "candidates", "events", "card")
LOCKED = "database is locked"
READ_P99_TARGET_MS = 200.0
# with --read-client wrk the submissions go beside wrk's connections, this many in flight
WRK_SUBMIT_CONCURRENCY = 10
# a job shared the workers when another job ran for at least this long and half its own run
SHARED_MIN_S = 5.0

# the submissions of the burst: the smallest job that trains one candidate and exports a model
TINY_SPEC: dict[str, Any] = {
    "max_iterations": 1,
    "candidates_per_iteration": 1,
    "epochs": 1,
    # one epoch on iris rarely beats a constant prediction; the job should still end with a model
    "force_grow": True,
    "batch_size": [32],
    "seed": 7,
    "evaluation": {"enabled": False},
}


# ---- databases and servers ------------------------------------------------------------------
@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database URL of ``backend``; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'automl.db'}"
        return
    import psycopg

    admin = POSTGRES_ADMIN_URL.replace("+psycopg", "")
    name = f"automl_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def serving(db_url: str, workdir: Path, args: argparse.Namespace, **env: str) -> Iterator[Server]:
    """`automl serve` on ``db_url`` with the benchmark's settings; stopped (SIGTERM) after."""
    workdir.mkdir(parents=True, exist_ok=True)
    extra = {
        "AUTOML_EXECUTOR": args.executor,
        "AUTOML_MAX_JOBS_PER_OWNER": str(args.max_jobs_per_owner),
        "AUTOML_HEARTBEAT_INTERVAL_S": str(args.heartbeat_s),
        "AUTOML_LEASE_TIMEOUT_S": str(args.lease_s),
        "AUTOML_API_WORKERS": str(args.api_workers),
        "AUTOML_WORKER_NICE": str(args.worker_nice),
    } | env
    server = Server(db_url, workdir, extra_env=extra).start(timeout=300)
    try:
        yield server
    finally:
        server.stop()


def log_findings(server: Server) -> dict[str, int]:
    """What the server's log says went wrong: SQLite lock errors, tracebacks, 5xx answers."""
    text = server.log()
    return {
        "database_is_locked": text.count(LOCKED),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "logged_5xx": len(re.findall(r'HTTP/1\.[01]" 5\d\d', text)),
        "pool_timeouts": text.count("QueuePool limit"),
        # uvicorn's supervisor kills an HTTP process that misses its health ping (--workers)
        "http_processes_restarted": len(re.findall(r"Child process \[\d+\] died", text)),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---- the async client -------------------------------------------------------------------------
@dataclass
class Sample:
    kind: str
    status: int | None
    seconds: float
    message: str | None = None
    body: Any = None


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail if detail is not None else response.text[:200])


@dataclass
class Client:
    """An httpx.AsyncClient that lets at most ``concurrency`` requests be in flight."""

    http: httpx.AsyncClient
    concurrency: int
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    async def call(self, kind: str, method: str, url: str, expect: int, **kw: Any) -> Sample:
        async with self.slots:
            t0 = time.perf_counter()
            try:
                r = await self.http.request(method, url, **kw)
                seconds = time.perf_counter() - t0
                ok = r.status_code == expect
                sample = Sample(
                    kind,
                    r.status_code,
                    seconds,
                    None if ok else _message(r),
                    r.json() if ok and kind == "submit" else None,
                )
            except httpx.HTTPError as exc:
                sample = Sample(kind, None, time.perf_counter() - t0, f"{type(exc).__name__}")
        self.samples.append(sample)
        return sample


def make_http(server: Server, key: str, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


def percentiles(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.array(seconds) * 1000
    return {
        "n": len(seconds),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def _at(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ts(value: str | None) -> datetime | None:
    return None if value is None else _at(value)


async def wait_job(http: httpx.AsyncClient, job_id: str, states: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = (await http.get(f"/api/v1/jobs/{job_id}")).json()
        if job["state"] in states:
            return job
        await asyncio.sleep(0.5)
    raise RuntimeError(f"job {job_id} stayed {job.get('state')} (wanted {sorted(states)})")


async def all_jobs(http: httpx.AsyncClient) -> list[dict]:
    jobs: list[dict] = []
    while True:
        page = (await http.get("/api/v1/jobs", params={"limit": 500, "offset": len(jobs)})).json()
        jobs += page["data"]
        if not page["data"] or len(jobs) >= page["count"]:
            return jobs


async def submit(http: httpx.AsyncClient, dataset: str, spec: dict) -> dict:
    r = await http.post("/api/v1/jobs", json={"dataset": dataset, "spec": spec})
    if r.status_code != 201:
        raise RuntimeError(f"job creation answered {r.status_code}: {r.text[:300]}")
    return dict(r.json())


async def first_running(http: httpx.AsyncClient, slots: asyncio.Semaphore, job_id: str) -> Any:
    """When the job first went to running: its first "job running" event."""
    async with slots:
        events = (await http.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 1000})).json()
    for e in events["data"]:
        if e["kind"] == "state" and e["data"].get("state") == "running":
            return _ts(e["at"])
    return None


async def start_order(http: httpx.AsyncClient, jobs: list[dict]) -> dict[str, Any]:
    """Did the jobs start in the order they were created (the controller's claim order)?"""
    slots = asyncio.Semaphore(8)
    runs = await asyncio.gather(*(first_running(http, slots, j["id"]) for j in jobs))
    started = {j["id"]: at for j, at in zip(jobs, runs, strict=True) if at is not None}
    created = [j["id"] for j in sorted(jobs, key=lambda j: (_ts(j["created_at"]), j["id"]))]
    ran = [i for i in created if i in started]
    by_start = sorted(ran, key=lambda i: started[i])
    # a job that started before one created earlier than it
    inversions = sum(1 for a, b in zip(ran, ran[1:], strict=False) if started[b] < started[a])
    return {
        "never_started": len(created) - len(ran),
        "in_creation_order": ran == by_start,
        "adjacent_inversions": inversions,
        "out_of_place": sum(1 for a, b in zip(ran, by_start, strict=True) if a != b),
    }


# ---- phase 1: the burst -------------------------------------------------------------------------
def train_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_iterations": args.train_iterations,
        "candidates_per_iteration": 2,
        "epochs": args.train_epochs,
        "force_grow": True,
        "batch_size": [64],
        "seed": 3,
        "evaluation": {"enabled": False},
    }


async def burst(server: Server, key: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with make_http(server, key, args.concurrency) as http:
        # a finished job first: its model card is a read target, and it warms TensorFlow
        warm = await submit(http, "iris", TINY_SPEC)
        warm = await wait_job(http, warm["id"], FINISHED, 600)
        if warm["state"] != "succeeded":
            raise RuntimeError(f"the warm-up job {warm['state']}: {warm['error']}")
        ids = {"training": warm["id"], "warm": warm["id"]}
        submitted: list[str] = []
        rng = random.Random(11)

        def read_url(op: str) -> str:
            # reads of the training job (written to while read) and of jobs just created
            pick = rng.random() < 0.7 or not submitted
            target = ids["training"] if pick else rng.choice(submitted)
            return {
                "list": "/api/v1/jobs",
                "get": f"/api/v1/jobs/{target}",
                "candidates": f"/api/v1/jobs/{ids['training']}/candidates",
                "events": f"/api/v1/jobs/{ids['training']}/events",
                "card": f"/api/v1/jobs/{ids['warm']}/model/card",
            }[op]

        async def sequential(n: int) -> dict[str, Any]:
            """One read at a time: what a request costs the server, without queueing."""
            alone = Client(http, 1)
            for i in range(n):
                op = READ_KINDS[i % len(READ_KINDS)]
                await alone.call(op, "GET", read_url(op), 200)
            errors = sum(1 for s in alone.samples if s.message is not None)
            by_kind = {
                k: percentiles([s.seconds for s in alone.samples if s.kind == k])["p50_ms"]
                for k in READ_KINDS
            }
            return percentiles([s.seconds for s in alone.samples]) | {
                "errors": errors,
                "p50_ms_by_kind": by_kind,
            }

        out["sequential_reads_idle"] = await sequential(args.baseline_reads)
        training = await submit(http, "digits", train_spec(args))
        ids["training"] = training["id"]
        await wait_job(http, training["id"], {"running"} | FINISHED, 600)
        # a candidate or two in, so its candidates and events are not empty
        await asyncio.sleep(args.settle_s)
        out["sequential_reads_training"] = await sequential(args.baseline_reads)

        wrk = args.read_client == "wrk"
        client = Client(
            http, min(args.concurrency, WRK_SUBMIT_CONCURRENCY) if wrk else args.concurrency
        )
        ops = ["submit"] * args.submissions + [
            READ_KINDS[i % len(READ_KINDS)] for i in range(0 if wrk else args.reads)
        ]
        rng.shuffle(ops)

        async def one(op: str) -> None:
            if op == "submit":
                s = await client.call(
                    "submit",
                    "POST",
                    "/api/v1/jobs",
                    201,
                    json={"dataset": "iris", "spec": TINY_SPEC},
                )
                if s.body is not None:
                    submitted.append(s.body["id"])
                return
            await client.call(op, "GET", read_url(op), 200)

        out["loadavg_before"] = loadavg()
        t0 = time.perf_counter()
        by_wrk: dict[str, Any] = {}
        if wrk:
            # wrk's reads of the same five kinds (the training job's, and the warm job's card)
            # for --wrk-seconds, the submissions sent beside them by this client
            paths = [read_url(op) for op in READ_KINDS]

            async def reads_by_wrk() -> None:
                by_wrk.update(
                    await asyncio.to_thread(
                        wrk_reads, server.url, key, paths, args.wrk_seconds, args.concurrency
                    )
                )

            await asyncio.gather(reads_by_wrk(), *(one(op) for op in ops))
        else:
            await asyncio.gather(*(one(op) for op in ops))
        burst_s = time.perf_counter() - t0
        out["burst_s"] = round(burst_s, 1)
        out["burst_requests_per_s"] = round((len(ops) + by_wrk.get("reads", 0)) / burst_s, 1)
        out["read_client"] = by_wrk | {"client": "wrk"} if wrk else {"client": "httpx"}
        out["loadavg_after_burst"] = loadavg()
        during = (await http.get(f"/api/v1/jobs/{training['id']}")).json()
        out["training_job_state_after_burst"] = during["state"]

        reads = [s for s in client.samples if s.kind != "submit"]
        subs = [s for s in client.samples if s.kind == "submit"]
        errors = [s for s in client.samples if s.message is not None]
        out["reads"] = percentiles([s.seconds for s in reads])
        out["reads_by_kind"] = {
            k: percentiles([s.seconds for s in reads if s.kind == k]) for k in READ_KINDS
        }
        if wrk:  # wrk gives percentiles over all its reads, not per kind
            out["reads"] = {k: by_wrk[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}
            out["reads"]["n"] = by_wrk["reads"]
            out["reads_by_kind"] = {}
        out["submissions"] = percentiles([s.seconds for s in subs])
        out["submissions_201"] = len(submitted)
        out["errors"] = len(errors) + int(by_wrk.get("errors", 0))
        out["errors_by_status"] = dict(Counter(str(s.status) for s in errors))
        if by_wrk.get("errors"):
            out["errors_by_status"]["wrk (any non-2xx/3xx, socket error or timeout)"] = by_wrk[
                "errors"
            ]
        out["errors_by_message"] = dict(Counter(f"{s.kind}: {s.message}" for s in errors))

        # every job ends: the queue drains behind the training job, one job at a time
        t1 = time.perf_counter()
        deadline = time.monotonic() + args.drain_timeout
        jobs = await all_jobs(http)
        while any(j["state"] not in FINISHED for j in jobs) and time.monotonic() < deadline:
            await asyncio.sleep(2)
            jobs = await all_jobs(http)
        out["drain_s"] = round(time.perf_counter() - t1, 1)
        out["loadavg_after_drain"] = loadavg()
        ours = [j for j in jobs if j["id"] in set(submitted)]
        listed = {j["id"] for j in jobs}
        out["jobs_listed"] = len(jobs)
        out["jobs_expected"] = len(submitted) + 2
        out["lost"] = sum(1 for i in submitted if i not in listed)
        out["end_states"] = dict(Counter(j["state"] for j in ours))
        out["stuck"] = sum(1 for j in ours if j["state"] not in FINISHED)
        out["attempts_over_1"] = sum(1 for j in ours if j["attempts"] > 1)
        out["order"] = await start_order(http, ours)
        out["failed_errors"] = dict(
            Counter((j["error"] or "")[:120] for j in ours if j["state"] == "failed")
        )
    out["server_log"] = log_findings(server)
    return out


# ---- phase 2: sharing the workers ------------------------------------------------------------
def fair_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_iterations": args.fair_iterations,
        "candidates_per_iteration": args.fair_candidates,
        "epochs": args.fair_epochs,
        "force_grow": True,
        "batch_size": [64],
        "seed": 5,
        "evaluation": {"enabled": False},
    }


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> float:
    return max(0.0, (min(a[1], b[1]) - max(a[0], b[0])).total_seconds())


async def fairness(server: Server, key: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"loadavg_before": loadavg()}
    async with make_http(server, key, args.fair_jobs) as http:
        warm = await submit(http, "iris", TINY_SPEC)  # TensorFlow imported before the clock
        await wait_job(http, warm["id"], FINISHED, 600)
        t0 = time.perf_counter()
        spec = fair_spec(args)
        created = await asyncio.gather(
            *(submit(http, "digits", spec) for _ in range(args.fair_jobs))
        )
        jobs = [await wait_job(http, j["id"], FINISHED, args.drain_timeout) for j in created]
        out["wall_s"] = round(time.perf_counter() - t0, 1)
        out["loadavg_after"] = loadavg()
        spans: dict[str, tuple[datetime, datetime]] = {}
        finishes: dict[str, list[datetime]] = {}
        for j in jobs:
            cands = (
                await http.get(f"/api/v1/jobs/{j['id']}/candidates", params={"limit": 500})
            ).json()["data"]
            start, end = _ts(j["started_at"]), _ts(j["finished_at"])
            assert start is not None and end is not None
            spans[j["id"]] = (start, end)
            finishes[j["id"]] = sorted(
                at for c in cands if c["state"] == "completed" and (at := _ts(c["finished_at"]))
            )
        rows = []
        for j in jobs:
            start, end = spans[j["id"]]
            wall = (end - start).total_seconds()
            done = finishes[j["id"]]
            # the stretches of this job's run when another job ran too
            others = [spans[o] for o in spans if o != j["id"]]
            shared_windows = [
                (max(start, o[0]), min(end, o[1])) for o in others if _overlap((start, end), o)
            ]
            shared_s = _union_s(shared_windows)
            in_shared = sum(1 for at in done if any(a <= at <= b for a, b in shared_windows))
            marks = [start, *done]
            rows.append(
                {
                    "job": j["id"][:8],
                    "state": j["state"],
                    "queued_s": round((start - _at(j["created_at"])).total_seconds(), 1),
                    "run_s": round(wall, 1),
                    "candidates": len(done),
                    "cand_per_min": round(len(done) / wall * 60, 2) if wall else None,
                    "shared_s": round(shared_s, 1),
                    "cand_shared": in_shared,
                    "cand_per_min_shared": round(in_shared / shared_s * 60, 2)
                    if shared_s > 1
                    else None,
                    "max_gap_s": round(
                        max(
                            (b - a).total_seconds() for a, b in zip(marks, marks[1:], strict=False)
                        ),
                        1,
                    )
                    if done
                    else None,
                }
            )
        out["jobs"] = rows
        # a job that overlapped another only at an end (the last of a queue) did not share
        # the workers long enough to be judged: it is rated by its run alone
        sharing = [r for r in rows if r["shared_s"] >= max(SHARED_MIN_S, r["run_s"] / 2)]
        rates = [r["cand_per_min_shared"] for r in sharing]
        out["jobs_sharing"] = len(sharing)
        out["shared_rate_min_over_max"] = round(min(rates) / max(rates), 2) if rates else None
        out["starved"] = sum(1 for r in sharing if r["cand_shared"] == 0)
        out["order"] = await start_order(http, jobs)
    out["server_log"] = log_findings(server)
    return out


def _union_s(windows: list[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for a, b in sorted(windows):
        if end is None or a > end:
            total += (b - a).total_seconds()
            end = b
        elif b > end:
            total += (b - end).total_seconds()
            end = b
    return total


# ---- one database -------------------------------------------------------------------------------
def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": backend}
    with tempfile.TemporaryDirectory(prefix=f"load-{backend}-") as tmp:
        root = Path(tmp)
        if not args.skip_burst:
            t0 = time.perf_counter()
            with (
                database(backend, root / "burst") as url,
                serving(url, root / "burst", args) as srv,
            ):
                key = srv.create_key("load")
                result["burst"] = asyncio.run(burst(srv, key, args))
            result["burst"]["phase_s"] = round(time.perf_counter() - t0, 1)
            print_burst(backend, result["burst"])
        for k in args.fair_concurrency:
            t0 = time.perf_counter()
            where = root / f"fair-{k}"
            with (
                database(backend, where) as url,
                serving(url, where, args, AUTOML_MAX_CONCURRENT_JOBS=str(k)) as srv,
            ):
                key = srv.create_key("load")
                fair = asyncio.run(fairness(srv, key, args))
            fair["max_concurrent_jobs"] = k
            fair["phase_s"] = round(time.perf_counter() - t0, 1)
            result.setdefault("fairness", []).append(fair)
            print_fairness(backend, fair)
    return result


# ---- output ---------------------------------------------------------------------------------
def _lat(p: dict[str, Any]) -> str:
    return f"{p['p50_ms']} / {p['p95_ms']} / {p['p99_ms']} / {p['max_ms']} ms (n={p['n']})"


def print_burst(backend: str, b: dict[str, Any]) -> None:
    ok = (
        b["errors"] == 0
        and b["server_log"]["database_is_locked"] == 0
        and (b["reads"]["p99_ms"] or 0) < READ_P99_TARGET_MS
    )
    print(f"\n== {backend}: burst ({'targets met' if ok else 'TARGETS MISSED'}) ==")
    rows = [
        (
            "load average before / after burst / after drain",
            f"{b['loadavg_before']} / {b['loadavg_after_burst']} / {b['loadavg_after_drain']}",
        ),
        (
            "burst time (requests/s) / drain time",
            f"{b['burst_s']} s ({b['burst_requests_per_s']}/s) / {b['drain_s']} s",
        ),
        ("training job after the burst", b["training_job_state_after_burst"]),
        ("sequential reads, idle", _lat(b["sequential_reads_idle"])),
        ("  p50 by kind", b["sequential_reads_idle"]["p50_ms_by_kind"]),
        ("sequential reads, while training", _lat(b["sequential_reads_training"])),
        ("burst reads sent by", b.get("read_client", {"client": "httpx"})),
        ("  p50 by kind", b["sequential_reads_training"]["p50_ms_by_kind"]),
        (f"burst reads p50/p95/p99/max (target p99 < {READ_P99_TARGET_MS:g})", _lat(b["reads"])),
        *[(f"  {k}", _lat(p)) for k, p in b["reads_by_kind"].items()],
        ("submissions p50/p95/p99/max", _lat(b["submissions"])),
        ("submissions accepted (201)", b["submissions_201"]),
        ("errors (target 0)", f"{b['errors']} {b['errors_by_status'] or ''}"),
        *[(f"  {m[:60]}", n) for m, n in b["errors_by_message"].items()],
        ("'database is locked' in log (target 0)", b["server_log"]["database_is_locked"]),
        (
            "tracebacks / 5xx in log",
            f"{b['server_log']['tracebacks']} / {b['server_log']['logged_5xx']}",
        ),
        (
            "HTTP processes restarted (missed health ping)",
            b["server_log"].get("http_processes_restarted", 0),
        ),
        (
            "jobs listed / expected, lost",
            f"{b['jobs_listed']} / {b['jobs_expected']}, {b['lost']} lost",
        ),
        ("end states, stuck", f"{b['end_states']}, {b['stuck']} stuck"),
        ("started in creation order", f"{b['order']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def print_fairness(backend: str, f: dict[str, Any]) -> None:
    print(
        f"\n== {backend}: {len(f['jobs'])} jobs at AUTOML_MAX_CONCURRENT_JOBS="
        f"{f['max_concurrent_jobs']} ({f['wall_s']} s, load {f['loadavg_before']} -> "
        f"{f['loadavg_after']}) =="
    )
    cols = list(f["jobs"][0])
    print("  ".join(f"{c:>12}" for c in cols))
    for r in f["jobs"]:
        print("  ".join(f"{r[c]!s:>12}" for c in cols))
    print(
        f"jobs sharing {f['jobs_sharing']}, their shared-rate min/max "
        f"{f['shared_rate_min_over_max']}, starved {f['starved']}, "
        f"order {f['order']}, log {f['server_log']}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--submissions", type=int, default=100)
    p.add_argument("--reads", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=50, help="requests in flight at most")
    p.add_argument(
        "--read-client",
        choices=["httpx", "wrk"],
        default="httpx",
        help="who sends the burst's reads: this client, or wrk (C, Debian's package) with "
        f"--concurrency connections for --wrk-seconds, the submissions beside it at "
        f"{WRK_SUBMIT_CONCURRENCY} in flight",
    )
    p.add_argument("--wrk-seconds", type=float, default=10.0)
    p.add_argument("--executor", choices=["in_process", "ray"], default="in_process")
    p.add_argument("--api-workers", type=int, default=1, help="HTTP processes (AUTOML_API_WORKERS)")
    p.add_argument(
        "--worker-nice", type=int, default=10, help="Ray workers' nice (AUTOML_WORKER_NICE)"
    )
    p.add_argument("--train-iterations", type=int, default=4)
    p.add_argument("--train-epochs", type=int, default=20)
    p.add_argument("--settle-s", type=float, default=5.0)
    p.add_argument("--baseline-reads", type=int, default=100, help="one at a time, before")
    p.add_argument("--drain-timeout", type=float, default=1800.0)
    p.add_argument("--fair-concurrency", type=int, nargs="*", default=[2])
    p.add_argument("--fair-jobs", type=int, default=4)
    p.add_argument("--fair-iterations", type=int, default=3)
    p.add_argument("--fair-candidates", type=int, default=2)
    p.add_argument("--fair-epochs", type=int, default=3)
    p.add_argument("--skip-burst", action="store_true")
    p.add_argument("--max-jobs-per-owner", type=int, default=10_000)
    p.add_argument("--heartbeat-s", type=float, default=10.0)
    p.add_argument("--lease-s", type=float, default=60.0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.fair_concurrency and args.fair_jobs < 1:
        # an HTTP client of no connections would wait for one until it timed out
        p.error("--fair-jobs must be at least 1; --fair-concurrency alone skips that phase")
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    backends = ["postgresql" if b == "postgres" else b for b in backends]
    runs: list[dict[str, Any]] = []
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "results": runs}
    for backend in backends:
        t0 = time.perf_counter()
        r = run_backend(backend, args)
        r["total_s"] = round(time.perf_counter() - t0, 1)
        runs.append(r)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
