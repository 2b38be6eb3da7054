"""Reads sent by wrk (Debian's `wrk`, a C load generator) instead of a Python client.

On a 2-core machine the Python client (httpx, asyncio) spends 2–5 ms of CPU per request, about
as much as the server does, and it runs on the same cores as the server it measures: at 50 in
flight a good part of a read's latency is the client's own. wrk costs a few microseconds per
request, so its figures are the server's. It keeps ``concurrency`` connections, one request in
flight on each (HTTP/1.1 keep-alive), cycles through ``paths`` for ``seconds`` (wrk runs for
a duration, not a count); latency is from a request's send to its response, as wrk measures
it, and any response but a 2xx/3xx counts as an error.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SCRIPT = """
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1], {["Authorization"] = "Bearer %(key)s"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("WRK_RESULT ", string.format(
    '{"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "mean_us": %%.1f}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean), "\\n")
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def wrk_reads(
    base_url: str, key: str, paths: list[str], seconds: float, concurrency: int
) -> dict[str, float]:
    """Send GETs over ``concurrency`` connections for ``seconds``; latency percentiles in ms, the
    rate, errors (connect/read/write/timeouts and non-200s) and wrk's own CPU seconds."""
    if not available():
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk; `make bench-tools`)")
    lua = SCRIPT % {
        "paths": ", ".join(json.dumps(p) for p in paths),
        "key": key,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "60s",
                "-s",
                f.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        ).stdout
    finally:
        Path(f.name).unlink(missing_ok=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("WRK_RESULT "))
    r = json.loads(line.removeprefix("WRK_RESULT "))
    return {
        "reads": r["requests"],
        "errors": r["errors"],
        "requests_per_s": round(r["requests"] / (r["duration_us"] / 1e6), 1),
        "p50_ms": round(r["p50_us"] / 1000, 1),
        "p95_ms": round(r["p95_us"] / 1000, 1),
        "p99_ms": round(r["p99_us"] / 1000, 1),
        "max_ms": round(r["max_us"] / 1000, 1),
        "wall_s": round(wall, 2),
        "client_cpu_s": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3
        ),
    }
