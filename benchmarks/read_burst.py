"""Read latency of one idle `automl serve` process: what the API's own request path costs.

    .venv/bin/python benchmarks/read_burst.py [--jobs 12] [--reads 1000] [--concurrency 50]
        [--json out.json] [--env NAME=VALUE ...] [--client httpx|wrk] [--seconds 10]
        [--db sqlite|postgresql]

A fresh server (SQLite or ``--db postgresql``, the in_process executor, one HTTP process, no
Ray) finishes ``--jobs`` tiny iris jobs, then answers, on the first job: GET /api/v1/jobs,
/jobs/{id}, /jobs/{id}/candidates, /jobs/{id}/events and /jobs/{id}/model/card — 60 rounds one
at a time (each kind's p50), then ``--reads`` of them with ``--concurrency`` in flight (p50/p95/p99,
requests/s). The CPU seconds the server process and this client spent in the burst are given
too: with the server at one core, requests/s is about 1 / its CPU per request.

`benchmarks/load.py` measures the whole service under load (a job training, submissions,
several HTTP processes, PostgreSQL); this one isolates the request path, so a change to it
shows without the noise of training beside it. ``--env`` passes settings to the server
(``--env AUTOML_MAX_READS_IN_FLIGHT=8``). ``--client wrk`` sends the burst with wrk for
``--seconds`` (see `benchmarks/_wrk.py`): then the figures are the server's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._wrk import wrk_reads  # noqa: E402
from benchmarks.load import database  # noqa: E402
from tests.integration.conftest import Server, wait_for  # noqa: E402

TINY_SPEC: dict[str, Any] = {
    "max_iterations": 1,
    "candidates_per_iteration": 1,
    "epochs": 1,
    "force_grow": True,
    "batch_size": [32],
    "seed": 7,
    "evaluation": {"enabled": False},
}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _burst(
    server: Server, urls: list[str], reads: int, concurrency: int
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {server.first_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=120
    ) as client:

        async def one(i: int) -> None:
            nonlocal errors
            async with slots:
                t = time.perf_counter()
                r = await client.get(urls[i % len(urls)])
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(reads)))
        return latencies, time.perf_counter() - t0, errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=12)
    p.add_argument("--reads", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--client",
        choices=["httpx", "wrk"],
        default="httpx",
        help="who sends the burst: this process (httpx) or wrk (C; its CPU is not the server's)",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="the burst's length with wrk")
    p.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings for the server")
    p.add_argument(
        "--db",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the server's database (postgresql: a fresh database on the tests' server, "
        "dropped after)",
    )
    args = p.parse_args()
    env = {
        "AUTOML_EXECUTOR": "in_process",
        "AUTOML_MAX_JOBS_PER_OWNER": "1000",
        **dict(e.split("=", 1) for e in args.env),
    }
    work = Path(tempfile.mkdtemp(prefix="read_burst-"))
    with database(args.db, work) as url:
        out = _measure(args, env, work, url)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def _measure(args: argparse.Namespace, env: dict[str, str], work: Path, url: str) -> dict[str, Any]:
    server = Server(url, work, extra_env=env).start(timeout=300)
    try:
        with server.client() as c:
            ids = [
                c.post("/api/v1/jobs", json={"dataset": "iris", "spec": TINY_SPEC}).json()["id"]
                for _ in range(args.jobs)
            ]
            states = [wait_for(c, j, {"succeeded", "failed"}, 600)["state"] for j in ids]
            job = ids[states.index("succeeded")]
            urls = [
                "/api/v1/jobs",
                f"/api/v1/jobs/{job}",
                f"/api/v1/jobs/{job}/candidates",
                f"/api/v1/jobs/{job}/events",
                f"/api/v1/jobs/{job}/model/card",
            ]
            kinds = ["list", "get", "candidates", "events", "card"]
            one_at_a_time: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(60):
                for kind, url in zip(kinds, urls, strict=True):
                    t = time.perf_counter()
                    assert c.get(url).status_code == 200, url
                    one_at_a_time[kind].append(time.perf_counter() - t)
        time.sleep(1.0)
        assert server.proc is not None
        server_cpu, client_cpu = _cpu_s(server.proc.pid), resource.getrusage(resource.RUSAGE_SELF)
        if args.client == "wrk":
            burst = wrk_reads(server.url, server.first_key, urls, args.seconds, args.concurrency)
            server_cpu = _cpu_s(server.proc.pid) - server_cpu
        else:
            latencies, wall, errors = asyncio.run(
                _burst(server, urls, args.reads, args.concurrency)
            )
            server_cpu = _cpu_s(server.proc.pid) - server_cpu
            after = resource.getrusage(resource.RUSAGE_SELF)
            client = after.ru_utime + after.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime
            ms = np.array(latencies) * 1000
            burst = {
                "reads": args.reads,
                "errors": errors,
                "requests_per_s": round(args.reads / wall, 1),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1),
                "p99_ms": round(float(np.percentile(ms, 99)), 1),
                "client_cpu_s": round(client, 2),
            }
    finally:
        server.kill()
    out = {
        "sequential_p50_ms": {
            k: round(1000 * float(np.median(v)), 2) for k, v in one_at_a_time.items()
        },
        "burst": {
            "client": args.client,
            "concurrency": args.concurrency,
            **burst,
            "server_cpu_s": round(server_cpu, 2),
            "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, burst["reads"]), 2),
        },
        "db": args.db,
        "env": env,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    return out


if __name__ == "__main__":
    main()
