"""The cluster without Docker: the real commands as separate processes — `ray start --head`, two
`automl worker --address` nodes and `automl serve` with AUTOML_RAY_ADDRESS — all with Ray token
authentication, in a private network namespace (several Ray nodes on one host stay on loopback
only there; it also keeps them apart from any other Ray of this machine).

A job's candidates and its evaluation phase's trainings train on both worker nodes and never in
the API process; a worker node killed mid-candidate has the candidate retried on another node;
a node with a wrong or missing token cannot join; `automl worker` leaves the cluster at once on
SIGTERM; `automl serve` against the cluster stops with exit 0 and leaves the cluster running.

The outer test re-runs this file's inner test under `unshare -n`, as root; every process the
inner test starts has its own process group and is stopped by it, never with `ray stop`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
IN_NETNS = os.environ.get("AUTOML_TEST_IN_NETNS") == "1"
RAY = str(Path(sys.executable).with_name("ray"))


def _unshare_problem() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "`unshare` or `ip` is not installed"
    out = subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", "ip link set lo up"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        return f"`unshare -n` is not allowed here (it needs root): {out.stderr.strip()}"
    return None


@pytest.mark.slow
def test_cluster_of_real_processes_in_a_private_network_namespace() -> None:
    problem = _unshare_problem()
    if problem:
        pytest.skip(f"several Ray nodes on one host need a private network namespace: {problem}")
    env = {**os.environ, "AUTOML_TEST_IN_NETNS": "1", "PYTHONUNBUFFERED": "1"}
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(var, None)
    inner = f"{Path(__file__).relative_to(ROOT)}::test_inner_cluster"
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", inner]
    out = subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = out.stdout[-12000:] + out.stderr[-3000:]
    assert out.returncode == 0, report
    assert "1 passed" in out.stdout, report


# ---- the inner test: runs inside the namespace only ----


class Procs:
    """Processes started by the test, each in its own process group."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        log = (self.workdir / f"{name}.log").open("w")
        proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    def signal(self, name: str, sig: signal.Signals, timeout: float = 60) -> int | None:
        proc = self.procs[name]
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_all(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.kill_all()


def _ray_env(token: str | None, home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # an earlier test's local Ray leaves RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in the
        # environment: `automl worker` must join all the same (it sets it for its node)
        if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    }
    # HOME of its own: Ray also looks for a token file under ~/.ray
    env.update(
        HOME=str(home),
        RAY_USAGE_STATS_ENABLED="0",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
    )
    if token is not None:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    return env


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """Short: Ray's socket paths under it must stay within 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="amn-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _node_args(tmp: Path, name: str, first_worker_port: int) -> list[str]:
    """Its own temp dir and ports: the nodes share 127.0.0.1."""
    return [
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={tmp / name}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--min-worker-port={first_worker_port}",
        f"--max-worker-port={first_worker_port + 999}",
        "--object-store-memory=100000000",
    ]


NODES_PROBE = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
print(json.dumps([n["Resources"] for n in ray.nodes() if n["Alive"]]))
"""


def _alive_nodes(address: str, env: dict[str, str]) -> list[dict[str, float]]:
    out = subprocess.run(
        [sys.executable, "-c", NODES_PROBE, address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def _parents(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return chain


@pytest.mark.slow
@pytest.mark.skipif(not IN_NETNS, reason="runs inside the private network namespace only")
def test_inner_cluster(procs: Procs, tmp_path: Path, ray_tmp: Path) -> None:
    token = secrets.token_hex(16)
    good = _ray_env(token, tmp_path)
    gcs = f"127.0.0.1:{free_port()}"
    head = procs.start(
        "head",
        [RAY, "start", "--head", f"--port={gcs.rsplit(':', 1)[1]}", "--num-cpus=0",
         "--num-gpus=0", "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
         *_node_args(ray_tmp, "head", 20000), "--block"],
        good,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while (
        subprocess.run(
            [RAY, "health-check", "--address", gcs], env=good, capture_output=True
        ).returncode
        != 0
    ):
        assert head.poll() is None and time.monotonic() < deadline, procs.log("head")
        time.sleep(1)

    automl = [sys.executable, "-m", "api.cli", "worker", f"--address={gcs}"]
    # a wrong token and none at all: these must never become nodes
    for i, tok in enumerate([secrets.token_hex(16), None]):
        procs.start(
            f"intruder-{i}",
            [*automl, "--num-cpus=1", '--resources={"intruder": 1}',
             *_node_args(ray_tmp, f"intruder-{i}", 23000 + 1000 * i)],
            _ray_env(tok, tmp_path / f"home-intruder-{i}"),
        )  # fmt: skip
    for i in (1, 2):
        procs.start(
            f"worker-{i}",
            [*automl, "--num-cpus=1", f'--resources={{"worker_{i}": 1}}',
             *_node_args(ray_tmp, f"worker-{i}", 20000 + 1000 * i)],
            good,
        )  # fmt: skip

    deadline = time.monotonic() + 120
    while True:
        nodes = _alive_nodes(gcs, good)
        if sum(1 for n in nodes if "worker_1" in n or "worker_2" in n) == 2:
            break
        assert time.monotonic() < deadline, (nodes, procs.log("worker-1"), procs.log("worker-2"))
        time.sleep(2)
    # the intruders had as long as the good nodes, and more: they failed, or still knock
    for i in (0, 1):
        proc = procs.procs[f"intruder-{i}"]
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    nodes = _alive_nodes(gcs, good)
    assert not [n for n in nodes if "intruder" in n], nodes
    assert len(nodes) == 3, nodes
    for i in (0, 1):
        rc = procs.procs[f"intruder-{i}"].poll()
        assert rc != 0, procs.log(f"intruder-{i}")  # still trying (None) or failed
    # no intruder reached the point of a running node
    assert "Ray runtime started" not in procs.log("intruder-0") + procs.log("intruder-1")

    # the service: a Ray driver and the controller, no Ray node of its own
    server = Server(
        f"sqlite:///{tmp_path / 'automl.db'}",
        tmp_path,
        extra_env={
            "AUTOML_RAY_ADDRESS": gcs,
            "HOME": str(tmp_path),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": token,
        },
    )
    server.start(timeout=180)
    try:
        spec = {
            "max_iterations": 1,
            "candidates_per_iteration": 2,
            "epochs": 2,
            "seed": 3,
            "batch_size": [64],
            "resources": {"cpus": 1},
            # the evaluation phase's trainings run on the workers too
            "evaluation": {"cv_folds": 2, "sparsities": [0.5], "fine_tune_epochs": 1},
        }
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
            done = wait_for(c, job["id"], {"succeeded", "failed"}, timeout=300)
            assert done["state"] == "succeeded", done["error"]
            cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=100").json()["data"]
            events = c.get(f"/api/v1/jobs/{job['id']}/events?limit=500").json()["data"]
        assert server.proc is not None
        api_pid = server.proc.pid
        worker_pids = {procs.procs[f"worker-{i}"].pid: i for i in (1, 2)}

        def owner(node: str) -> int:
            """The worker node whose raylet runs the actor named ``node`` (host:pid)."""
            pid = int(node.rsplit(":", 1)[1])
            assert pid != api_pid  # the API process trained nothing itself
            chain = _parents(pid)  # the actor is a child of its node's raylet
            assert api_pid not in chain and head.pid not in chain, (node, chain)
            owners = [worker_pids[p] for p in chain if p in worker_pids]
            assert len(owners) == 1, (node, chain, worker_pids)
            return owners[0]

        ran_on = []
        for cand in cands:
            assert cand["state"] == "completed", cand
            ran_on.append(owner(str(cand["node"])))
        assert sorted(ran_on) == [1, 2], ran_on  # both worker nodes trained candidates
        trainings = [e["data"]["training"] for e in events if "training" in e["data"]]
        # 2 folds of each member, two grown members, a fine-tune of each kept member
        assert len(trainings) >= 2 * len(done["result"]["ensemble"]["members"]) + 3, trainings
        assert {t["kind"] for t in trainings} == {"cross_validation", "train", "fine_tune"}
        assert all(t["state"] == "completed" for t in trainings), trainings
        assert {owner(t["node"]) for t in trainings} == {1, 2}  # in parallel, on both nodes

        # a third node joins; a worker node killed mid-candidate: the candidate is retried on
        # another node, and the job succeeds with every candidate once
        procs.start(
            "worker-3",
            [*automl, "--num-cpus=1", '--resources={"worker_3": 1}',
             *_node_args(ray_tmp, "worker-3", 26000)],
            good,
        )  # fmt: skip
        worker_pids[procs.procs["worker-3"].pid] = 3
        deadline = time.monotonic() + 120
        while not any("worker_3" in n for n in _alive_nodes(gcs, good)):
            assert time.monotonic() < deadline, procs.log("worker-3")
            time.sleep(2)
        long_spec = {**spec, "epochs": 60, "batch_size": [16], "evaluation": {"enabled": False}}
        with server.client() as c:
            job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": long_spec}).json()
            deadline = time.monotonic() + 180
            while True:
                cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=100").json()["data"]
                if sum(x["state"] == "running" for x in cands) == 2:
                    break
                assert time.monotonic() < deadline, cands
                time.sleep(0.3)
            # both train on the warm workers of the first job, on nodes 1 and 2; node 3 is free
            time.sleep(2)  # well into their training
            victim = 1
            os.killpg(procs.procs["worker-1"].pid, signal.SIGKILL)
            done = wait_for(c, job["id"], {"succeeded", "failed"}, timeout=400)
            assert done["state"] == "succeeded", done["error"]
            cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=100").json()["data"]
        assert sorted(x["name"] for x in cands) == ["t0_c0", "t0_c1"], cands  # none lost or twice
        assert all(x["state"] == "completed" for x in cands), cands
        retried = [x for x in cands if x["attempts"] == 2]
        assert len(retried) == 1, cands  # the one on the killed node, and only it
        assert owner(str(retried[0]["node"])) == 3, retried  # on the node that was free
        other = next(x for x in cands if x is not retried[0])
        assert other["attempts"] == 1 and owner(str(other["node"])) == 2, other
        survivors = [i for i in (1, 2, 3) if i != victim]

        # SIGTERM to the service: exit 0, the cluster lives on
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.log()[-3000:]
        assert "Traceback" not in server.log(), server.log()
    finally:
        server.kill()
    first, second = (f"worker_{i}" for i in survivors)
    assert {first, second} <= {k for n in _alive_nodes(gcs, good) for k in n}

    # SIGTERM to a worker: it drains and leaves at once (not after Ray's health-check timeout)
    started = time.monotonic()
    rc = procs.signal(first.replace("_", "-"), signal.SIGTERM, timeout=60)
    assert rc == 0, procs.log(first.replace("_", "-"))[-3000:]
    nodes = _alive_nodes(gcs, good)
    assert not [n for n in nodes if first in n], nodes
    assert any(second in n for n in nodes), nodes
    assert time.monotonic() - started < 30
    assert procs.signal(second.replace("_", "-"), signal.SIGTERM, timeout=60) == 0
    assert procs.signal("head", signal.SIGTERM, timeout=60) is not None
