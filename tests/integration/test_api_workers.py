"""`automl serve --workers N` (AUTOML_API_WORKERS): N HTTP processes answer the API and the
controller runs in their parent, so no request waits behind training or scoring. One job runs
once (one controller), every process reports the same /metrics (read from the database), and
SIGTERM still stops everything gracefully: the running job goes back to the queue and finishes
after a restart without training a stored iteration again."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
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


def _server_sockets(port: int, pids: set[int]) -> dict[int, int]:
    """Established connections on ``port`` per process of ``pids`` (Linux: /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        # local address, remote address, state (01: established), ..., inode
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            inodes.add(fields[9])
    counts = dict.fromkeys(pids, 0)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                counts[pid] += 1
    return counts


def _connections_after_a_burst(server: Server, pids: set[int]) -> dict[int, int]:
    """64 keep-alive connections opened at once (as a dashboard's or a script's client opens
    them), each answering one GET /healthz; the server's ends of those connections per HTTP
    process, counted while they are all open. All 64 are held, so the count does not depend on
    how fast the client reuses a connection (an earlier burst through httpx's pool opened only
    10, and a 1/9 split of 10 happens one time in nine)."""
    port = int(server.url.rsplit(":", 1)[1])
    conns = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(64)]
    try:
        for conn in conns:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        for conn in conns:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head
        return _server_sockets(port, pids)
    finally:
        for conn in conns:
            conn.close()


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
        # each HTTP process logs its requests by default (AUTOML_ACCESS_LOG)
        assert '"GET /healthz HTTP/1.1" 200' in server.log(), server.log()[-3000:]
        # a burst of connections is spread over both HTTP processes (one SO_REUSEPORT socket
        # each); on uvicorn's shared socket the first process to wake accepted them all
        spread = _connections_after_a_burst(server, {int(pid) for pid in children})
        # 64 connections hashed over 2 sockets: fewer than 12 on one is > 5 standard deviations
        assert sum(spread.values()) >= 64 and min(spread.values()) >= 12, spread
        # a second service on the same port fails at once: it must not share the connections
        second = subprocess.run(
            [sys.executable, "-m", "api.cli", "serve"],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0 and "cannot listen on" in second.stderr + second.stdout, (
            second.stdout[-2000:],
            second.stderr[-2000:],
        )

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


def test_the_access_log_is_a_setting(tmp_path: Path) -> None:
    """AUTOML_ACCESS_LOG=false: no line per request (a deployment whose proxy logs them saves
    the CPU), while the service still logs what it does, and answers as before."""
    env = {"AUTOML_EXECUTOR": "in_process", "AUTOML_ACCESS_LOG": "false"}
    server = Server(f"sqlite:///{tmp_path / 'automl.db'}", tmp_path, extra_env=env).start()
    try:
        with server.client() as c:
            assert c.get("/api/v1/jobs").status_code == 200
            assert c.get("/api/v1/jobs/" + "0" * 32).status_code == 404
        assert httpx.get(server.url + "/healthz").status_code == 200
        log = server.log()
        assert "Application startup complete" in log and "shown only once" in log, log
        assert "HTTP/1.1" not in log, log
    finally:
        server.kill()
    bad = Server(
        f"sqlite:///{tmp_path / 'other.db'}", tmp_path, extra_env={"AUTOML_ACCESS_LOG": "maybe"}
    )
    with pytest.raises(RuntimeError, match="access_log"):
        bad.start(timeout=60)
