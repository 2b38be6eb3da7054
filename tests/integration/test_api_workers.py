"""`automl serve --workers N` (AUTOML_API_WORKERS): N HTTP processes answer the API and the
controller runs in their parent, so no request waits behind training or scoring. One job runs
once (one controller), every process reports the same /metrics (read from the database), and
SIGTERM still stops everything gracefully: the running job goes back to the queue and finishes
after a restart without training a stored iteration again."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import THREE_ITERATIONS, Server, wait_for, wait_mid_search

SPEC = THREE_ITERATIONS


def _trained(metrics: str) -> int:
    match = re.search(r'automl_candidates_trained_total\{state="completed"\} (\S+)', metrics)
    assert match, metrics
    return int(float(match.group(1)))


@pytest.mark.slow
def test_http_processes_serve_the_api_while_one_controller_in_their_parent_runs_the_job(
    tmp_path: Path,
) -> None:
    env = {"AUTOML_API_WORKERS": "2", "AUTOML_EXECUTOR": "in_process"}
    server = Server(f"sqlite:///{tmp_path / 'automl.db'}", tmp_path, extra_env=env).start()
    try:
        log = server.log()
        parent = re.search(r"Started parent process \[(\d+)\]", log)
        children = set(re.findall(r"Started server process \[(\d+)\]", log))
        deadline = time.monotonic() + 60
        while len(children) < 2 and time.monotonic() < deadline:  # the second may be slower
            time.sleep(0.5)
            children = set(re.findall(r"Started server process \[(\d+)\]", server.log()))
        assert parent and len(children) == 2 and parent.group(1) not in children, server.log()
        assert server.first_key  # announced once, by the parent, before the HTTP processes
        # every HTTP process reports the controller's health (it runs in the parent)
        health = {
            tuple(sorted(httpx.get(server.url + "/healthz").json().items())) for _ in range(6)
        }
        assert health == {
            (
                ("controller", "ok"),
                ("database", "ok"),
                ("ray", "not used (AUTOML_EXECUTOR=in_process)"),
                ("status", "ok"),
            )
        }, health
        assert server.log().count("shown only once") == 1

        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": SPEC}).json()
            before = wait_mid_search(c, job["id"])

        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        try:
            rc = server.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 60 s after SIGTERM:\n{server.log()[-3000:]}")
        assert rc == 0 and time.monotonic() - started < 60, server.log()[-3000:]
        assert "Traceback" not in server.log(), server.log()
        server.kill()
        with sqlite3.connect(tmp_path / "automl.db") as db:
            (state,) = db.execute("SELECT state FROM jobs WHERE id = ?", (job["id"],)).fetchone()
        assert state == "queued"  # put back by the parent's controller as it stopped

        server.start()
        with server.client() as c:
            done = wait_for(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 1
            after = c.get(f"/api/v1/jobs/{job['id']}/candidates?iteration=0").json()["data"]
            assert [(x["name"], x["loss"]) for x in after] == [
                (x["name"], x["loss"]) for x in before
            ]
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["data"]
            assert [i["iteration"] for i in its] == [0, 1, 2]
            events = c.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["data"]
            rows = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=100").json()["data"]
            n = sum(1 for x in rows if x["state"] == "completed")
            for x in rows:
                runs = sum(
                    1
                    for e in events
                    if e["message"].startswith(f"candidate {x['name']} started training")
                )
                # one controller: a stored iteration never trains again; the one cut by the
                # stop (1) at most twice
                assert runs == 1 or (x["iteration"] == 1 and runs == 2), (x["name"], runs)
            # whichever process answers, /metrics is read from the database
            answers = {_trained(c.get("/metrics").text) for _ in range(8)}
            assert answers == {n} and n >= 6, (answers, n)
    finally:
        server.kill()
