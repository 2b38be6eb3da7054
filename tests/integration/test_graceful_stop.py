"""`docker stop` and systemd send SIGTERM, a person at a terminal Ctrl-C (SIGINT): `automl
serve` stops taking requests, puts a running job back in the queue and exits 0 — no stack
dump — and the job continues from its last completed iteration at the next start."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import THREE_ITERATIONS, Server, wait_for, wait_mid_search


def _signal_and_wait(server: Server, sig: signal.Signals) -> tuple[int, float]:
    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(sig)
    try:
        rc = server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"`automl serve` still ran 30 s after {sig.name}:\n{server.log()[-3000:]}")
    took = time.monotonic() - started
    server.kill()  # whatever of its process group is left (nothing, normally)
    return rc, took


@pytest.mark.slow
def test_sigterm_mid_job_exits_0_and_the_job_continues_after_a_restart(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'automl.db'}", tmp_path).start()
    try:
        spec = THREE_ITERATIONS
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
            before = wait_mid_search(c, job["id"])

        rc, took = _signal_and_wait(server, signal.SIGTERM)
        log = server.log()
        assert rc == 0, log[-3000:]
        assert took < 30
        assert "Traceback" not in log, log
        assert "stopped by SIGTERM" in log
        with pytest.raises(httpx.HTTPError):  # it takes no more requests
            httpx.get(server.url + "/healthz", timeout=2)
        with sqlite3.connect(tmp_path / "automl.db") as db:
            (state,) = db.execute("SELECT state FROM jobs WHERE id = ?", (job["id"],)).fetchone()
        assert state == "queued"

        server.start()
        with server.client() as c:
            # back in the queue by the graceful stop (not by a lease sweep after a crash)
            events = c.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["data"]
            assert any("the service is stopping" in e["message"] for e in events)
            done = wait_for(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 1  # a graceful stop is not a failed run
            after = c.get(f"/api/v1/jobs/{job['id']}/candidates?iteration=0").json()["data"]
            # iteration 0 was not trained again
            assert [(x["name"], x["loss"]) for x in after] == [
                (x["name"], x["loss"]) for x in before
            ]
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["data"]
            assert [i["iteration"] for i in its] == [0, 1, 2]

        rc, took = _signal_and_wait(server, signal.SIGINT)
        log = server.log()
        assert rc == 0, log[-3000:]
        assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
        assert "stopped by SIGINT" in log
    finally:
        server.kill()
