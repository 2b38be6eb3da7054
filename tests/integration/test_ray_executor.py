"""The Ray executor on real multi-node Ray clusters (``ray.cluster_utils.Cluster``: every node a
real raylet on 127.0.0.1, the head with no CPUs as in the service), training tiny digits
candidates: slots per node, retries after a lost worker or node, placement deadlines, warm
reuse, eviction and cancellation."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from automl.data import PreparedData, load_builtin, prepare  # noqa: E402
from automl.errors import SearchAbortedError, SearchCancelledError  # noqa: E402
from automl.generator import CandidateGenerator  # noqa: E402
from automl.search import AdaNetSearch, SearchCallback  # noqa: E402
from automl.spec import Resources, SearchSpec  # noqa: E402
from automl.training import CandidateResult, CandidateSpec, TrainingData  # noqa: E402
from tests.conftest import tiny_spec_dict  # noqa: E402
from workers import ray_executor  # noqa: E402
from workers.ray_executor import RayExecutor, check_feasible, shutdown_ray  # noqa: E402

# a dead node is noticed in ~2 s instead of Ray's 20-55 s
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
HOST = socket.gethostname()
# long enough (several seconds on 2 busy cores) to be killed in the middle of it
LONG_EPOCHS = 15


@contextmanager
def ray_cluster(*worker_cpus: int) -> Iterator[Cluster]:
    """A head with no CPUs and one worker node per entry; everything it started is stopped
    after, and the executor's module-level actor pools are forgotten before and after."""
    shutdown_ray()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "_system_config": FAST_HEALTH_CHECKS,
        },
    )
    try:
        for cpus in worker_cpus:
            cluster.add_node(num_cpus=cpus, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        yield cluster
    finally:
        shutdown_ray()
        cluster.shutdown()


@pytest.fixture(scope="module")
def digits() -> PreparedData:
    return prepare(load_builtin("digits"), seed=0)


@pytest.fixture(scope="module")
def data(digits: PreparedData) -> TrainingData:
    return TrainingData.from_prepared(digits)


def _spec(candidates: int, epochs: int = 1, **overrides: object) -> SearchSpec:
    return SearchSpec.from_dict(
        tiny_spec_dict(
            families=["dense"],
            candidates_per_iteration=candidates,
            epochs=epochs,
            batch_size=[32],
            **overrides,
        )
    )


def _candidates(n: int, epochs: int = 1) -> list[CandidateSpec]:
    return CandidateGenerator(_spec(n, epochs), ["dense"]).propose(0, None)


def _alive(pid: int) -> bool:
    """Whether the process runs (a killed worker nobody reaped yet is a zombie: not alive)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pid(result: CandidateResult) -> int:
    return int(result.node.rsplit(":", 1)[1])


def _later(delay_s: float, action: Callable[[], object]) -> None:
    """Run ``action`` on a timer, so the executor's loop goes on meanwhile."""
    timer = threading.Timer(delay_s, action)
    timer.daemon = True
    timer.start()


# ---- two 3-CPU worker nodes ---------------------------------------------------------------
@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    with ray_cluster(3, 3) as cluster:
        yield cluster


@pytest.mark.timeout(240)
def test_slots_count_what_fits_on_each_node_so_every_candidate_finishes(
    two_nodes: Cluster, data: TrainingData
) -> None:
    # 6 CPUs in all, but a 2-CPU worker fits once on a 3-CPU node: 2 workers, not 3 (a third
    # could never be placed and its candidate would wait forever)
    assert check_feasible(Resources(cpus=2))["slots"] == 2
    ex = RayExecutor(Resources(cpus=2))
    ex.start(data)
    started = time.perf_counter()
    results = list(ex.run(_candidates(3)))
    assert sorted(r.spec.name for r in results) == sorted(s.name for s in _candidates(3))
    assert all(r.ok and r.attempts == 1 and r.failure_kind is None for r in results)
    assert len({r.node for r in results}) == 2  # two workers shared the three candidates
    assert time.perf_counter() - started < 180


@pytest.mark.timeout(240)
def test_warm_workers_are_reused_by_the_next_job(two_nodes: Cluster, data: TrainingData) -> None:
    first = RayExecutor(Resources(cpus=2))
    assert first.warm_up() == 2
    before = {w["pid"]: w["trained"] for w in first.worker_info()}
    for _job in range(2):  # two searches, one after the other, like two jobs of the service
        ex = RayExecutor(Resources(cpus=2))
        ex.start(data)
        assert all(r.ok for r in ex.run(_candidates(2)))
    after = {w["pid"]: w["trained"] for w in first.worker_info()}
    assert set(after) == set(before)  # no new process imported TensorFlow again
    assert sum(after.values()) == sum(before.values()) + 4
    # every thread of every worker (TensorFlow's pools made while training too) trains at
    # AUTOML_WORKER_NICE's default: a request to an API on the same node goes first
    nice = [w["nice"] for w in first.worker_info()]
    assert len(nice) == 2 and all(n >= 10 for n in nice), nice


@pytest.mark.timeout(240)
def test_a_worker_that_trained_its_share_is_replaced_once_idle(
    two_nodes: Cluster, data: TrainingData
) -> None:
    # max_trainings=2: the run's two workers share three candidates (one trains two, the other
    # one); after the run, only the one that reached 2 is replaced by a fresh process
    # (a shape of its own: the warm 2-CPU workers of the tests before have trained already)
    ex = RayExecutor(Resources(cpus=1), max_parallel=2, max_trainings=2)
    ex.start(data)
    results = list(ex.run(_candidates(3)))
    assert all(r.ok for r in results)
    pids = [_pid(r) for r in results]
    [spent] = [p for p in set(pids) if pids.count(p) == 2]
    [fresh_enough] = [p for p in set(pids) if pids.count(p) == 1]
    deadline = time.monotonic() + 30
    while _alive(spent) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(spent) and _alive(fresh_enough)
    # the next run trains on a new worker in its place, or on the survivor; after it, no pooled
    # worker has trained 2 or more (the survivor, if it trained again, was replaced in turn)
    again = list(ex.run(_candidates(2)))
    assert all(r.ok for r in again)
    assert spent not in {_pid(r) for r in again}
    pooled = ex.worker_info()
    assert pooled and all(w["trained"] < 2 for w in pooled), pooled
    assert spent not in {w["pid"] for w in pooled}
    with pytest.raises(ValueError, match="max_trainings"):
        RayExecutor(max_trainings=0)


@pytest.mark.timeout(300)
def test_two_jobs_at_once_share_the_workers(two_nodes: Cluster, data: TrainingData) -> None:
    # job A starts first and takes both workers for its six candidates; job B starts while A
    # trains. B gets one of them when the first of A's candidates ends, and both of B's
    # candidates end before A's last one: B does not wait for A's whole iteration (before,
    # a run held its workers to its end, and the second job of two waited for all of it)
    finished: dict[str, list[tuple[float, int]]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def job(tag: str, candidates: int) -> None:
        try:
            ex = RayExecutor(Resources(cpus=2))
            ex.start(data)
            for r in ex.run(_candidates(candidates, LONG_EPOCHS)):
                assert r.ok, r.error
                finished[tag].append((time.monotonic(), _pid(r)))
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread below
            errors.append(exc)

    a = threading.Thread(target=job, args=("a", 6))
    a.start()
    deadline = time.monotonic() + 60
    while sum(d.held for d in ray_executor._runs.values()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not finished["a"]  # B starts while A holds both workers and none has finished
    b = threading.Thread(target=job, args=("b", 2))
    b.start()
    a.join(240)
    b.join(240)
    assert not errors, errors
    assert len(finished["a"]) == 6 and len(finished["b"]) == 2
    assert max(t for t, _ in finished["b"]) < max(t for t, _ in finished["a"])
    # A trained on both workers, and went on with one while B had the other
    assert len({pid for _, pid in finished["a"]}) == 2
    assert ray_executor._runs == {}  # each run forgot itself at its end


@pytest.mark.timeout(240)
def test_idle_workers_of_another_shape_make_room(two_nodes: Cluster, data: TrainingData) -> None:
    small = RayExecutor(Resources(cpus=2))
    assert small.warm_up() == 2
    small_pids = [w["pid"] for w in small.worker_info()]
    # a 3-CPU worker only fits where an idle 2-CPU one stood
    ex = RayExecutor(Resources(cpus=3))
    ex.start(data)
    results = list(ex.run(_candidates(2)))
    assert all(r.ok for r in results)
    assert small.worker_info() == []
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in small_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in small_pids)


@pytest.mark.timeout(300)
def test_the_evaluation_phase_trains_every_fold_grow_and_fine_tune_on_the_workers(
    two_nodes: Cluster, digits: PreparedData
) -> None:
    from automl.evaluation import evaluate

    spec = SearchSpec.from_dict(
        tiny_spec_dict(
            families=["dense"],
            candidates_per_iteration=2,
            max_iterations=2,
            epochs=2,
            batch_size=[32],
            resources={"cpus": 1},
            evaluation={"cv_folds": 3, "sparsities": [0.5, 0.8], "fine_tune_epochs": 1},
        )
    )
    ex = RayExecutor(Resources(cpus=1))
    result = AdaNetSearch(spec, digits, ex).run()
    members = [m.name for m in result.ensemble.members]
    trainings: list[dict] = []
    ev = evaluate(
        spec,
        digits,
        result.ensemble,
        executor=ex,
        on_training=lambda _res, rec: trainings.append(rec),
        member_logits=result.member_logits,
    )
    assert all(t["state"] == "completed" and t["attempts"] == 1 for t in trainings), trainings
    # nothing trained in this (the controller's) process; several workers shared the phase
    pids = {int(t["node"].rsplit(":", 1)[1]) for t in trainings}
    assert os.getpid() not in pids and len(pids) >= 2, pids
    kinds = [t["kind"] for t in trainings]
    assert kinds.count("cross_validation") == 3 * len(members)
    assert {t["name"] for t in trainings if t["kind"] == "cross_validation"} == {
        f"cv{f}_{m}" for f in range(3) for m in members
    }
    grows = [t["name"] for t in trainings if t["origin"] == "evaluation"]
    assert f"{members[-1]}_grow_depth" in grows and len(grows) in (2, 3)
    by_step = {s.step: s for s in ev.steps}
    for level in (0.5, 0.8):
        step = by_step[f"prune_weights_{level:g}"]
        tuned = [t for t in step.details["trainings"] if t["kind"] == "fine_tune"]
        assert len(tuned) == step.members and all(t["sparsity"] == level for t in tuned)
        assert step.details["kernel_sparsity"] == pytest.approx(level, abs=0.01)
    # every training is listed under the step it served, once
    listed = [t["name"] for s in ev.steps for t in s.details.get("trainings", [])]
    assert sorted(listed) == sorted(t["name"] for t in trainings)
    assert by_step["cross_validation"].kept and "prune_members" in by_step


def test_resources_no_node_has_fail_at_once(two_nodes: Cluster, data: TrainingData) -> None:
    started = time.perf_counter()
    with pytest.raises(SearchAbortedError, match="4 CPU.*largest node has 3"):
        RayExecutor(Resources(cpus=4)).start(data)
    with pytest.raises(SearchAbortedError, match="no node has a GPU"):
        RayExecutor(Resources(cpus=1, gpus=1)).start(data)
    assert time.perf_counter() - started < 10


@pytest.mark.timeout(240)
def test_cancelling_kills_the_workers_in_flight(two_nodes: Cluster, data: TrainingData) -> None:
    ex = RayExecutor(Resources(cpus=3))
    assert ex.warm_up() == 2
    pids = [w["pid"] for w in ex.worker_info()]
    stop = threading.Event()
    ex.start(data)
    started = time.perf_counter()
    with pytest.raises(SearchCancelledError):
        for _ in ex.run(
            _candidates(2, LONG_EPOCHS),
            on_start=lambda _spec: _later(1.5, stop.set),
            should_stop=stop.is_set,
        ):
            pytest.fail("a candidate finished although the search was cancelled")
    assert time.perf_counter() - started < 30  # it did not wait for the training to end
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)
    assert ex.worker_info() == []


# ---- one 2-CPU worker node: a killed worker process -----------------------------------------
@pytest.fixture(scope="module")
def one_node() -> Iterator[Cluster]:
    with ray_cluster(2) as cluster:
        yield cluster


class _KillOnFirstStart(SearchCallback):
    """SIGKILLs a worker process a moment after the first candidate started on it."""

    def __init__(self, pid: int, delay_s: float = 2.0) -> None:
        self.pid, self.delay_s = pid, delay_s
        self.starts: list[str] = []

    def on_candidate_start(self, spec: CandidateSpec) -> None:
        self.starts.append(spec.name)
        if len(self.starts) == 1:
            _later(self.delay_s, lambda: os.kill(self.pid, signal.SIGKILL))


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_training_is_retried_and_the_search_succeeds(
    one_node: Cluster, digits: PreparedData
) -> None:
    ex = RayExecutor(Resources(cpus=2))
    assert ex.warm_up() == 1
    [victim] = [w["pid"] for w in ex.worker_info()]
    killer = _KillOnFirstStart(victim)
    spec = _spec(1, LONG_EPOCHS, max_iterations=1, max_consecutive_failures=1)
    result = AdaNetSearch(spec, digits, ex, [killer]).run()
    assert not _alive(victim)
    [cand] = result.iterations[0].candidates
    assert killer.starts == [cand.name, cand.name]  # started, lost, started again
    assert cand.state == "completed" and cand.attempts == 2 and cand.failure_kind is None
    assert cand.epochs_run == LONG_EPOCHS
    # it finished on the new worker of this node, not in this process nor on the dead one
    host, pid = cand.node.rsplit(":", 1)
    assert host == HOST and int(pid) not in (victim, os.getpid())
    assert result.ensemble.members and result.ensemble.members[0].name == cand.name


@pytest.mark.timeout(240)
def test_a_candidate_whose_worker_dies_every_time_fails_as_infrastructure(
    one_node: Cluster, data: TrainingData
) -> None:
    ex = RayExecutor(Resources(cpus=2), max_retries=0)
    assert ex.warm_up() == 1
    [victim] = [w["pid"] for w in ex.worker_info()]
    killer = _KillOnFirstStart(victim)
    ex.start(data)
    [spec] = _candidates(1, LONG_EPOCHS)
    [result] = list(ex.run([spec], on_start=killer.on_candidate_start))
    assert result.state == "failed" and result.failure_kind == "infrastructure"
    assert result.attempts == 1
    assert "worker was lost 1 time" in (result.error or "")
    assert "max_retries=0" in (result.error or "")
    assert result.node == f"{HOST}:{victim}"  # where it ran, not this driver
    # the pool made a new worker in the dead one's place: the next candidate trains
    [again] = list(ex.run(_candidates(1)))
    assert again.ok and _pid(again) != victim


# ---- a node lost in the middle of a candidate ---------------------------------------------
@pytest.mark.timeout(240)
def test_a_lost_nodes_candidate_is_retried_on_the_node_left(data: TrainingData) -> None:
    with ray_cluster(2, 2) as cluster:
        ex = RayExecutor(Resources(cpus=2))
        assert ex.warm_up() == 2
        pids = {w["pid"] for w in ex.worker_info()}
        [doomed] = [n for n in cluster.worker_nodes][-1:]
        ex.start(data)
        starts: list[str] = []

        def on_start(spec: CandidateSpec) -> None:
            starts.append(spec.name)
            if len(starts) == 2:  # both nodes train one candidate each
                _later(2.0, lambda: cluster.remove_node(doomed, allow_graceful=False))

        started = time.perf_counter()
        results = list(ex.run(_candidates(2, LONG_EPOCHS), on_start=on_start))
        elapsed = time.perf_counter() - started
        assert len(results) == 2 and all(r.ok for r in results)
        assert sorted(r.attempts for r in results) == [1, 2]
        # both finished on the worker of the node left, whose process still lives; the
        # other worker went down with its node and no place was left for a replacement
        [survivor] = [p for p in pids if _alive(p)]
        assert {_pid(r) for r in results} == {survivor}
        assert elapsed < 150


# ---- no room for a worker -----------------------------------------------------------------
@pytest.mark.timeout(120)
def test_a_worker_that_cannot_be_placed_fails_its_candidates_instead_of_waiting(
    data: TrainingData, digits: PreparedData
) -> None:
    from ray.util.placement_group import placement_group, remove_placement_group

    with ray_cluster(1):
        # another tenant of the cluster holds the only CPU
        tenant = placement_group([{"CPU": 1}])
        ray.get(tenant.ready(), timeout=30)
        ex = RayExecutor(Resources(cpus=1), placement_timeout_s=3)
        ex.start(data)  # the cluster could hold one: not infeasible, only full
        started = time.perf_counter()
        results = list(ex.run(_candidates(2)))
        assert time.perf_counter() - started < 30
        assert [r.failure_kind for r in results] == ["infrastructure", "infrastructure"]
        assert all(r.attempts == 0 and r.node == "" for r in results)
        assert "placement_timeout_s=3" in (results[0].error or "")
        assert "1 CPU" in (results[0].error or "")
        # the search stops with the reason instead of concluding "no improvement"
        with pytest.raises(SearchAbortedError, match="lost to the cluster.*placement_timeout_s"):
            AdaNetSearch(_spec(2, max_iterations=1), digits, ex).run()
        remove_placement_group(tenant)
