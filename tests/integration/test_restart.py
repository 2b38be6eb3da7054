"""kill -9 the service while a job runs, start it again: the job finishes from its last
completed iteration with every candidate recorded once and nothing left running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import THREE_ITERATIONS, start_server, stop_server, wait_for


def m_start(message: str) -> bool:
    return message.endswith("started training")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_mid_job_then_restart_finishes_the_job(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server, name = start_server(tmp_path, backend, request)
    try:
        # the search's restart is what is tested (the evaluation phase's: test_faults.py)
        spec = {**THREE_ITERATIONS, "seed": 21}
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
            # kill once iteration 0 is stored and iteration 1 is training
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                body = c.get(f"/api/v1/jobs/{job['id']}").json()
                its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["count"]
                if its >= 1 and body["progress"]["candidates_total"] > 2:
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the job never reached iteration 1")
            stored_before = c.get(f"/api/v1/jobs/{job['id']}/candidates?iteration=0").json()
        server.kill()

        server.start()
        with server.client() as c:
            done = wait_for(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=500").json()
            names = sorted(x["name"] for x in cands["data"])
            assert names == [f"t{t}_c{i}" for t in range(3) for i in range(2)]  # none lost
            assert all(x["state"] == "completed" for x in cands["data"])
            # iteration 0 was not trained again: its rows are the ones stored before the kill
            after = c.get(f"/api/v1/jobs/{job['id']}/candidates?iteration=0").json()
            assert [(x["name"], x["created_at"], x["loss"]) for x in after["data"]] == [
                (x["name"], x["created_at"], x["loss"]) for x in stored_before["data"]
            ]
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()
            assert [i["iteration"] for i in its["data"]] == [0, 1, 2]
            events = c.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["data"]
            messages = [e["message"] for e in events]
            assert any("the service stopped while this job ran" in m for m in messages)
            assert done["attempts"] == 2
            # trainings, not rows (a unique constraint already forbids two rows of a name):
            # iteration 0 trained once, before the kill; after the restart every candidate of
            # the later iterations trained exactly once
            restarted = max(i for i, m in enumerate(messages) if m == "job running")
            for name in names:
                starts = [
                    i
                    for i, e in enumerate(events)
                    if e["data"].get("candidate") == name and m_start(e["message"])
                ]
                if name.startswith("t0_"):
                    assert len(starts) == 1 and starts[0] < restarted, (name, starts)
                else:
                    assert len([i for i in starts if i > restarted]) == 1, (name, starts)
    finally:
        stop_server(server, name)
