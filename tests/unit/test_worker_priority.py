"""Workers train at a lower CPU priority (AUTOML_WORKER_NICE): every thread of the process,
those that existed before and those started after, since Linux keeps a nice value per thread."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workers.ray_executor import worker_nice

PROBE = """
import json, os, threading, time
from workers.actor import lower_priority, thread_nice_values
base = os.getpriority(os.PRIO_PROCESS, 0)  # whatever this test runs at already
target = min(19, base + int(os.environ["DELTA"]))
stop = threading.Event()
before = threading.Thread(target=stop.wait); before.start()   # exists before: Ray's threads
changed = lower_priority(target)
after = threading.Thread(target=stop.wait); after.start()     # made later: TensorFlow's pools
values = thread_nice_values()
again = lower_priority(target)
stop.set(); before.join(); after.join()
out = {"base": base, "target": target, "changed": changed, "values": values, "again": again}
print(json.dumps(out))
"""


def _probe(delta: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"DELTA": str(delta), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_thread_before_and_after_is_lowered_once() -> None:
    got = _probe(3)
    if got["base"] >= 19:
        pytest.skip("this test already runs at the lowest priority: nothing to lower")
    assert got["changed"] >= 2  # the main thread and the one started before
    assert len(got["values"]) >= 3 and set(got["values"]) == {got["target"]}
    assert got["again"] == 0  # already there: nothing to change


def test_a_value_not_above_the_current_one_leaves_it_alone() -> None:
    got = _probe(0)
    assert got["changed"] == 0 and set(got["values"]) == {got["base"]}


@pytest.mark.parametrize("raw", ["-1", "20", "low"])
def test_a_bad_setting_is_refused_with_its_name(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOML_WORKER_NICE", raw)
    with pytest.raises(ValueError, match="AUTOML_WORKER_NICE"):
        worker_nice()


def test_the_default_is_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOML_WORKER_NICE", raising=False)
    assert worker_nice() == 10


def test_the_http_processes_set_tcp_nodelay_on_sockets_uvicorn_bound_without_a_protocol() -> None:
    """uvicorn's supervisor binds `socket.socket(family)` (protocol 0), on whose connections
    asyncio does not set TCP_NODELAY: each response then waited ~40 ms for a delayed ACK."""
    import asyncio.base_events
    import socket

    from api.main import _nodelay_on_inherited_sockets

    with socket.socket(socket.AF_INET) as sock:
        assert sock.proto == 0
        asyncio.base_events._set_nodelay(sock)  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # asyncio's rule
        _nodelay_on_inherited_sockets()
        asyncio.base_events._set_nodelay(sock)  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
