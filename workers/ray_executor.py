"""Train candidates in parallel on Ray, through a pool of warm actors kept for the process's life.

A fresh actor per candidate would spend 7-9 s importing TensorFlow on a 2-core machine, more
than a small candidate trains; actors here are created once per resource shape and reused by
every later iteration and job of this process.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from automl.errors import SearchAbortedError, SearchCancelledError
from automl.executors import EpochReporter, Executor, StartReporter, StopCheck, executors
from automl.spec import Resources
from automl.training import (
    CandidatePrunedError,
    CandidateResult,
    CandidateSpec,
    TrainingData,
    node_name,
)

_lock = threading.RLock()  # re-entrant: _acquire evicts other shapes while holding it
_pools: dict[tuple[float, float], list[Any]] = {}
_busy: set[Any] = set()
_warm: set[Any] = set()  # actors that answered once: placed, TensorFlow imported
_trainings: dict[Any, int] = {}  # trainings started on each live actor
_runs: dict[object, _Demand] = {}  # the runs going on in this process (jobs share the pools)
_started_local = False

DEFAULT_MAX_RETRIES = 2
# a new worker is placed and imports TensorFlow in seconds; minutes mean it has no place
DEFAULT_PLACEMENT_TIMEOUT_S = 180.0
# training yields the CPU to requests on a node it shares with the API (Linux nice)
DEFAULT_WORKER_NICE = 10
# a worker is replaced (when idle) after this many trainings: Keras 3 on TensorFlow 2.21 keeps
# every fitted model's traced graphs reachable (~5,900 objects per model.fit, which neither
# gc nor keras.backend.clear_session frees), so a warm worker's memory grows with each
# candidate, per fit and not per epoch (benchmarks/worker_memory.py: ~11 MB per fit of a tiny
# dense digits model, ~19 MB per fit of the 63k conv1d starting configuration on MNIST-1D at 2
# and at 8 epochs alike, so 50 trainings add ~0.5-0.9 GB); a new worker costs seconds
# (placement, TensorFlow's import)
DEFAULT_MAX_TRAININGS = 50
# a training past its timeout_s stops itself after its next batch; past this multiple (+10 s)
# it is stuck, and its worker is killed
TIMEOUT_GRACE = 1.5
# how often the driver asks training workers for their new epochs (on_epoch), and how long it
# waits for their answers (a worker answers between two batches; one that does not is busy
# dying, and its train call says so)
EPOCH_POLL_S = 0.5
EPOCH_POLL_WAIT_S = 2.0


def _ray_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local single-node Ray bound to 127.0.0.1."""
    global _started_local
    import ray

    if ray.is_initialized():
        return
    _ray_env()
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        ray.init(
            # "local": always a Ray of our own; without it ray.init() joins any cluster that
            # `ray start` left on this host (and then refuses num_cpus)
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
        _started_local = True


def shutdown_ray() -> None:
    """Forget the actor pools and disconnect (stopping the local Ray if this process started
    it; never a cluster it only joined)."""
    import ray

    with _lock:
        _pools.clear()
        _busy.clear()
        _warm.clear()
        _trainings.clear()
    if ray.is_initialized():
        ray.shutdown()


def ray_reachable() -> bool:
    import ray

    if not ray.is_initialized():
        return False
    try:
        return bool(ray.cluster_resources().get("CPU", 0) > 0)
    except Exception:  # noqa: BLE001 - health check: any failure means unreachable
        return False


def _fits(node_resources: dict[str, float], resources: Resources) -> int:
    """How many workers of this shape one node holds: a worker is placed whole on one node."""
    # the epsilon keeps e.g. 0.3 CPUs x 10 from rounding down to 9
    n = math.floor(node_resources.get("CPU", 0.0) / resources.cpus + 1e-9)
    if resources.gpus > 0:
        n = min(n, math.floor(node_resources.get("GPU", 0.0) / resources.gpus + 1e-9))
    return max(0, n)


def cluster_slots(resources: Resources) -> int:
    """How many candidates of this shape the alive nodes can train at once, counted node by
    node (two 3-CPU nodes hold two 2-CPU workers, not three)."""
    import ray

    return sum(_fits(n["Resources"], resources) for n in ray.nodes() if n.get("Alive"))


def check_feasible(resources: Resources) -> dict[str, float]:
    """Fail at once when no node can ever run one candidate: never wait forever."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    best_cpu = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
    best_gpu = max((n["Resources"].get("GPU", 0.0) for n in nodes), default=0.0)
    slots = sum(_fits(n["Resources"], resources) for n in nodes)
    if slots == 0:
        what = []
        if resources.gpus > best_gpu:
            what.append(
                f"{resources.gpus:g} GPU(s) but "
                + ("no node has a GPU" if best_gpu == 0 else f"the largest node has {best_gpu:g}")
            )
        if resources.cpus > best_cpu:
            what.append(f"{resources.cpus:g} CPU(s) but the largest node has {best_cpu:g}")
        raise SearchAbortedError(
            "no node of the Ray cluster can run a candidate: each asks for "
            + " and ".join(what or ["more than any node offers"])
            + f" ({len(nodes)} node(s)); lower spec.resources or add a bigger worker"
        )
    return {
        "slots": slots,
        "cpu": sum(n["Resources"].get("CPU", 0.0) for n in nodes),
        "gpu": sum(n["Resources"].get("GPU", 0.0) for n in nodes),
    }


def _whereabouts(worker: Any) -> str:
    """Runs inside an actor (``__ray_call__``): its node, named as its results name it. An
    answer also means the actor was placed and has imported TensorFlow."""
    return node_name()


def _why(exc: BaseException) -> str:
    """One line for a Ray error (its messages run to a screenful)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:300]}"


def _out_of_memory(exc: BaseException) -> bool:
    """Whether Ray stopped the work for exhausting memory: an ``OutOfMemoryError`` for a task,
    or an actor's death whose cause says the node ran low on memory."""
    from ray.exceptions import OutOfMemoryError

    if isinstance(exc, OutOfMemoryError):
        return True
    # the raylet's words for a worker its memory monitor killed (a plain death's message also
    # names the kernel's OOM killer among possible causes: that is not evidence)
    return "running low on memory" in str(exc).lower()


def _kill(pool: list[Any], actor: Any) -> None:
    import ray

    if actor in pool:
        pool.remove(actor)
    _warm.discard(actor)
    _trainings.pop(actor, None)
    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001 - it may be gone already
        pass


@dataclass
class _Attempt:
    """A candidate of one ``run`` and what happened to it so far."""

    spec: CandidateSpec
    attempts: int = 0  # times a worker started training it
    node: str = ""  # where it last ran
    lost: str = ""  # why its last worker was lost
    started: float | None = None
    attempt_started: float = 0.0  # when its current attempt started (monotonic)
    reported: int = 0  # epochs of its current attempt passed to on_epoch
    prune_sent: bool = False  # its worker was asked to stop it (successive halving)


@dataclass
class _Demand:
    """What one ``run`` holds and wants, seen by the others of its shape: jobs running at once
    share the workers, each its share (the slots / the runs) while another wants more."""

    key: tuple[float, float]
    since: float  # when the run started: the longest waiting is served first
    held: int = 0  # workers it holds (starting, idle or training)
    wants: bool = False  # it has candidates no worker of its own will take


def _share(key: tuple[float, float], slots: int) -> int:
    return max(1, slots // max(1, sum(1 for d in _runs.values() if d.key == key)))


def _hungry(token: object, key: tuple[float, float], share: int) -> list[_Demand]:
    """The other runs of this shape that want a worker and hold less than their share."""
    return [
        d
        for t, d in _runs.items()
        if t is not token and d.key == key and d.wants and d.held < share
    ]


def worker_nice() -> int:
    """``AUTOML_WORKER_NICE`` (0–19, default 10): the nice value workers train at."""
    raw = os.environ.get("AUTOML_WORKER_NICE", str(DEFAULT_WORKER_NICE))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"AUTOML_WORKER_NICE must be an integer 0-19, not {raw!r}") from None
    if not 0 <= value <= 19:
        raise ValueError(f"AUTOML_WORKER_NICE must be between 0 and 19, not {value}")
    return value


class RayExecutor(Executor):
    """Candidates train on warm Ray actors, as many at once as the cluster's nodes have room for.

    A candidate whose worker dies (its process killed, its node lost) is started again on
    another worker; one that still has no result after ``max_retries`` retries, or for which
    no worker could be placed, comes back failed with ``failure_kind="infrastructure"``, apart
    from candidates whose own training failed (``failure_kind="training"``).

    Args:
        resources: What each candidate asks for (``spec.resources``).
        address: Ray cluster to join; ``None`` starts a local one if none is connected.
        max_parallel: Cap on candidates training at once (default: what the cluster fits).
        max_retries: How many times a candidate whose worker died is started again.
        placement_timeout_s: How long a new worker may take to be placed on a node and to
            start (it imports TensorFlow), counted while no other job of this process holds
            busy workers; a worker that misses it is given up, and when this run then has no
            worker at all its candidates fail instead of waiting forever.
        nice: The CPU priority workers train at (Linux nice, 0–19; default
            ``AUTOML_WORKER_NICE``, 10): on a node shared with the API, requests go first.
        max_trainings: Trainings after which a worker is replaced by a fresh one, once it is
            idle (Keras leaks memory per ``fit``; see ``DEFAULT_MAX_TRAININGS``).
    """

    name = "ray"

    def __init__(
        self,
        resources: Resources | None = None,
        address: str | None = None,
        max_parallel: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        placement_timeout_s: float = DEFAULT_PLACEMENT_TIMEOUT_S,
        nice: int | None = None,
        max_trainings: int = DEFAULT_MAX_TRAININGS,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        if placement_timeout_s <= 0:
            raise ValueError(f"placement_timeout_s must be positive, not {placement_timeout_s}")
        if max_trainings < 1:
            raise ValueError(f"max_trainings must be 1 or more, not {max_trainings}")
        self.resources = resources or Resources()
        self.address = address
        self.max_parallel = max_parallel
        self.max_retries = max_retries
        self.placement_timeout_s = placement_timeout_s
        self.nice = worker_nice() if nice is None else nice
        self.max_trainings = max_trainings
        self._data_ref: Any = None
        self._slots = 1

    def start(self, data: TrainingData) -> None:
        import ray

        ensure_ray(self.address)
        self._set_slots(int(check_feasible(self.resources)["slots"]))
        self._data_ref = ray.put(data)  # once per search, shared by every candidate

    @property
    def parallelism(self) -> int:
        return max(1, self._slots)

    def _set_slots(self, slots: int) -> None:
        self._slots = min(slots, self.max_parallel) if self.max_parallel else slots

    def _refresh_slots(self) -> None:
        """Count again what the alive nodes hold (a node may have joined or been lost)."""
        slots = cluster_slots(self.resources)
        if slots > 0:
            self._set_slots(slots)
        # none right now (a worker node restarting?): keep the count; the placement deadline
        # bounds the wait if none comes back

    def _key(self) -> tuple[float, float]:
        return (self.resources.cpus, self.resources.gpus)

    def _evict_idle_others(self) -> None:
        """Kill idle actors of other resource shapes: warm workers must never hold the CPUs or
        GPUs this job's candidates need (that would make it wait forever)."""
        with _lock:
            for key, pool in _pools.items():
                if key != self._key():
                    for actor in [a for a in pool if a not in _busy]:
                        _kill(pool, actor)

    def _acquire(self, limit: int, token: object = None) -> list[Any]:
        """Idle actors for this resource shape, creating new ones up to ``limit``.

        While another run of this process (another job) wants a worker and holds less than its
        share, this one takes no more than its own share, and leaves an idle worker to each
        such run that holds fewer than it or has waited longer."""
        from workers.actor import CandidateWorker

        with _lock:
            pool = _pools.setdefault(self._key(), [])
            me = _runs.get(token)
            if me is not None:
                share = _share(self._key(), self._slots)
                hungry = _hungry(token, self._key(), share)
                if hungry:
                    limit = min(limit, share - me.held)
                ahead = sum(1 for d in hungry if (d.held, d.since) < (me.held, me.since))
            else:
                ahead = 0
            if limit <= 0:
                return []
            idle = [a for a in pool if a not in _busy][ahead:][:limit]
            if len(idle) < limit and len(pool) < self._slots:
                self._evict_idle_others()
            while len(idle) < limit and len(pool) + ahead < self._slots:
                actor = CandidateWorker.options(  # type: ignore[attr-defined]
                    num_cpus=self.resources.cpus,
                    num_gpus=self.resources.gpus,
                    # train in one thread; the driver's epoch polls and prune in the other
                    max_concurrency=2,
                ).remote(max(1, int(self.resources.cpus)), self.nice)
                pool.append(actor)
                idle.append(actor)
            _busy.update(idle)
            if me is not None:
                me.held += len(idle)
            return idle

    def _release(self, actor: Any, dead: bool = False) -> None:
        with _lock:
            _busy.discard(actor)
            # a worker that has trained its share is replaced now, while it is idle; the next
            # acquire starts a fresh one (placed, TensorFlow imported: seconds)
            if dead or _trainings.get(actor, 0) >= self.max_trainings:
                _kill(_pools.get(self._key(), []), actor)

    @staticmethod
    def _others_working(ours: list[Any]) -> bool:
        """Whether another job of this process has started workers busy with candidates: they
        hold resources that come free, so waiting for a place is not waiting forever."""
        with _lock:
            return any(a in _warm and a not in ours for a in _busy)

    def _placement_error(self) -> str:
        import ray

        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        ask = f"{self.resources.cpus:g} CPU(s)" + (
            f" and {self.resources.gpus:g} GPU(s)" if self.resources.gpus else ""
        )
        offer = ", ".join(
            f"{r.get('CPU', 0.0):g} CPU" + (f"/{r.get('GPU', 0.0):g} GPU" if "GPU" in r else "")
            for r in nodes
            if r.get("CPU", 0.0) or r.get("GPU", 0.0)
        )
        free = ray.available_resources()
        return (
            f"no Ray worker could be placed for it within placement_timeout_s="
            f"{self.placement_timeout_s:g}: each asks for {ask}; the alive node(s) offer "
            f"[{offer or 'nothing'}], {free.get('CPU', 0.0):g} CPU(s) free now (a node may "
            "have been lost, or other work holds them); add workers or lower spec.resources"
        )

    def _failed(self, att: _Attempt, error: str) -> CandidateResult:
        if att.lost and att.lost not in error:
            error += f" (before that, its worker was lost: {att.lost})"
        return CandidateResult(
            spec=att.spec,
            state="failed",
            duration_s=0.0 if att.started is None else time.perf_counter() - att.started,
            node=att.node,
            error=error,
            attempts=att.attempts,
            failure_kind="infrastructure",
        )

    def run(
        self,
        specs: list[CandidateSpec],
        on_epoch: EpochReporter | None = None,
        on_start: StartReporter | None = None,
        should_stop: StopCheck | None = None,
        init_weights: Mapping[str, Sequence[Any]] | None = None,
    ) -> Iterator[CandidateResult]:
        import ray
        from ray.exceptions import RayTaskError

        self._refresh_slots()
        # a fine-tune's starting weights go to the object store once, whatever the retries
        weights_refs = {name: ray.put(list(w)) for name, w in (init_weights or {}).items()}
        pending = deque(_Attempt(s) for s in specs)
        # how many workers this run tries to hold; one that never becomes ready lowers it
        want = min(len(specs), self._slots)
        ours: list[Any] = []  # every actor this run holds (all in _busy)
        starting: dict[Any, tuple[Any, float]] = {}  # probe ref -> (actor, waiting since)
        free: list[tuple[Any, str]] = []  # ready actors and their node
        inflight: dict[Any, tuple[_Attempt, Any, str]] = {}
        never_ready = ""  # why the last new worker was given up
        last_poll = 0.0
        token = object()  # this run, among the runs of this process that share the pools
        with _lock:
            _runs[token] = me = _Demand(self._key(), time.monotonic())
        try:
            while pending or inflight:
                if should_stop is not None and should_stop():
                    raise SearchCancelledError("the search was cancelled")
                for actor in self._surplus(token, me, len(ours), pending, free):
                    self._release(actor)
                    ours.remove(actor)
                short = len(pending) - len(free) - len(starting)
                with _lock:
                    me.held, me.wants = len(ours), short > 0 and len(ours) < want
                if short > 0 and len(ours) < want:
                    for actor in self._acquire(min(short, want - len(ours)), token):
                        ours.append(actor)
                        probe = actor.__ray_call__.remote(_whereabouts)
                        starting[probe] = (actor, time.monotonic())
                if pending and not ours:
                    if want <= 0:
                        # not one worker could be placed or started: fail what is left
                        # rather than wait forever
                        while pending:
                            yield self._failed(pending.popleft(), never_ready)
                        break
                    # every pooled actor of this shape is busy with another job: wait for one
                    time.sleep(0.2)
                    continue
                while pending and free:
                    att, (actor, node) = pending.popleft(), free.pop(0)
                    att.attempts += 1
                    att.node = node
                    att.started = att.started or time.perf_counter()
                    att.attempt_started = time.monotonic()
                    att.reported, att.prune_sent = 0, False
                    with _lock:
                        _trainings[actor] = _trainings.get(actor, 0) + 1
                    ref = actor.train.remote(
                        att.spec.to_dict(),
                        self._data_ref,
                        weights_refs.get(att.spec.name),
                        on_epoch is not None,
                    )
                    inflight[ref] = (att, actor, node)
                    if on_start is not None:
                        on_start(att.spec)
                waiting = [*inflight, *starting]
                if not waiting:  # every actor of ours is in one of them: cannot happen
                    time.sleep(0.2)
                    continue
                ready, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
                if not ready and any(a not in _warm for a, _t in starting.values()):
                    # a new actor of ours may wait for resources that another shape's workers
                    # went idle holding
                    self._evict_idle_others()
                if should_stop is not None and should_stop():
                    raise SearchCancelledError("the search was cancelled")
                for ref in ready:
                    if ref in starting:
                        actor, _since = starting.pop(ref)
                        try:
                            node = str(ray.get(ref))
                        except Exception as exc:  # noqa: BLE001 - it died before any candidate
                            was_warm = actor in _warm
                            self._release(actor, dead=True)
                            ours.remove(actor)
                            if not was_warm:
                                # a new worker that cannot start: do not make another forever
                                want -= 1
                                never_ready = f"its Ray worker died while starting: {_why(exc)}"
                            continue
                        with _lock:
                            _warm.add(actor)
                        free.append((actor, node))
                        continue
                    att, actor, node = inflight.pop(ref)
                    try:
                        result: CandidateResult = ray.get(ref)
                    except RayTaskError as exc:
                        # the worker lives; the call itself raised: the candidate's failure
                        free.append((actor, node))
                        yield CandidateResult(
                            spec=att.spec,
                            state="failed",
                            duration_s=time.perf_counter() - (att.started or 0.0),
                            node=node,
                            error=str(exc),
                            attempts=att.attempts,
                            failure_kind="training",
                        )
                        continue
                    except Exception as exc:  # noqa: BLE001 - the worker or its node was lost
                        self._release(actor, dead=True)
                        ours.remove(actor)
                        if _out_of_memory(exc):
                            # Ray's memory monitor killed it (the error or the actor's death
                            # says so): the candidate's own doing, it would do it again anywhere
                            yield CandidateResult(
                                spec=att.spec,
                                state="failed",
                                duration_s=time.perf_counter() - (att.started or 0.0),
                                node=node,
                                error=f"it ran out of memory and Ray stopped it: {_why(exc)}",
                                attempts=att.attempts,
                                failure_kind="out_of_memory",
                            )
                            continue
                        att.lost = _why(exc)
                        if att.attempts <= self.max_retries:
                            pending.appendleft(att)  # on another worker, made in its place
                        else:
                            yield self._failed(
                                att,
                                f"its Ray worker was lost {att.attempts} time(s) (max_retries="
                                f"{self.max_retries}), an infrastructure failure, not a "
                                f"training one; the last time: {att.lost}",
                            )
                        continue
                    free.append((actor, node))
                    result.attempts = att.attempts
                    if not result.ok and result.failure_kind is None:
                        result.failure_kind = "training"
                    if on_epoch is not None:
                        _report_rest(att, result, on_epoch)
                    yield result
                now = time.monotonic()
                if on_epoch is not None and inflight and now - last_poll >= EPOCH_POLL_S:
                    last_poll = now
                    _poll_epochs(list(inflight.values()), on_epoch)
                for ref, (att, actor, node) in list(inflight.items()):
                    # the training stops itself after timeout_s; one stuck inside a single
                    # step (or hung) is stopped from here, its worker killed, after a grace
                    limit = att.spec.timeout_s
                    if limit and now - att.attempt_started > limit * TIMEOUT_GRACE + 10:
                        del inflight[ref]
                        self._release(actor, dead=True)
                        ours.remove(actor)
                        yield CandidateResult(
                            spec=att.spec,
                            state="failed",
                            duration_s=time.perf_counter() - (att.started or 0.0),
                            node=node,
                            error=f"{att.spec.name} was still training after {limit:g} s "
                            "(candidate_timeout_s) and did not stop itself; its worker was "
                            "killed",
                            attempts=att.attempts,
                            failure_kind="timeout",
                        )
                others_working = bool(starting) and self._others_working(ours)
                for probe, (actor, since) in list(starting.items()):
                    if others_working:
                        starting[probe] = (actor, now)  # the deadline counts from when they stop
                    elif now - since > self.placement_timeout_s:
                        del starting[probe]
                        self._release(actor, dead=True)
                        ours.remove(actor)
                        want -= 1
                        never_ready = self._placement_error()
        except BaseException:
            # cancelled or the consumer stopped: stop what is in flight; those actors are
            # killed (an actor task cannot be interrupted) and replaced on the next acquire
            for _att, actor, _node in inflight.values():
                self._release(actor, dead=True)
                ours.remove(actor)
            raise
        finally:
            for actor in ours:
                self._release(actor)
            with _lock:
                _runs.pop(token, None)

    def _surplus(
        self,
        token: object,
        me: _Demand,
        held: int,
        pending: deque[_Attempt],
        free: list[tuple[Any, str]],
    ) -> list[Any]:
        """Idle workers of this run that it gives back now (taken off ``free``): every one
        when no candidate is left for them, and, while another job's run wants a worker and
        holds less than its share, those over this run's share. A run otherwise keeps its
        workers to its end, and a job that started second would wait for the first's whole
        iteration."""
        with _lock:
            share = _share(self._key(), self._slots)
            give = len(free) if not pending else 0
            if pending and _hungry(token, self._key(), share):
                give = min(len(free), max(0, held - share))
            me.held = held - give
        return [free.pop()[0] for _ in range(give)]

    def warm_up(self) -> int:
        """Create this resource shape's actors now (each imports TensorFlow), so the first job
        does not wait for them; return how many are warm. Those that cannot be placed within
        ``placement_timeout_s`` are given up."""
        import ray

        ensure_ray(self.address)
        self._set_slots(int(check_feasible(self.resources)["slots"]))
        actors = self._acquire(self._slots)
        probes = {actor.__ray_call__.remote(_whereabouts): actor for actor in actors}
        if not probes:  # every pooled actor is busy with a job: warm already
            return 0
        warm = 0
        try:
            ready, late = ray.wait(
                list(probes), num_returns=len(probes), timeout=self.placement_timeout_s
            )
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception:  # noqa: BLE001 - died while starting
                    self._release(probes[ref], dead=True)
                    continue
                with _lock:
                    _warm.add(probes[ref])
                warm += 1
            for ref in late:
                self._release(probes[ref], dead=True)
        finally:
            for actor in actors:
                self._release(actor)
        return warm

    def worker_info(self) -> list[dict[str, Any]]:
        """pid, TensorFlow import time, candidates trained and nice value, for every pooled
        actor."""
        import ray

        with _lock:
            pool = list(_pools.get(self._key(), []))
        return list(ray.get([a.info.remote() for a in pool]))


def _deliver(
    att: _Attempt, actor: Any, epoch: int, logs: dict[str, float], on_epoch: EpochReporter
) -> None:
    """Pass one epoch's logs on; when successive halving prunes the candidate, tell its worker
    (once; it stops after the epoch it is in), unless it is done already (``actor`` None)."""
    att.reported = max(att.reported, epoch)
    try:
        on_epoch(att.spec, epoch, logs)
    except CandidatePrunedError:
        if actor is not None and not att.prune_sent:
            att.prune_sent = True
            actor.prune.remote(att.spec.name)


def _poll_epochs(running: list[tuple[_Attempt, Any, str]], on_epoch: EpochReporter) -> None:
    """Ask every training worker for its candidate's new epochs and pass them on."""
    import ray

    polls = {
        actor.epochs.remote(att.spec.name, att.reported): (att, actor)
        for att, actor, _node in running
    }
    ready, _late = ray.wait(list(polls), num_returns=len(polls), timeout=EPOCH_POLL_WAIT_S)
    for ref in ready:
        att, actor = polls[ref]
        try:
            epochs = ray.get(ref)
        except Exception:  # noqa: BLE001 - its worker is lost; its train call will say so
            continue
        for epoch, logs in epochs:
            _deliver(att, actor, int(epoch), logs, on_epoch)


def _report_rest(att: _Attempt, result: CandidateResult, on_epoch: EpochReporter) -> None:
    """Pass on the epochs of a finished candidate that no poll caught, from its history (the
    same numbers its worker logged); pruning it now changes nothing."""
    for i in range(att.reported, result.epochs_run):
        logs = {k: vals[i] for k, vals in result.history.items() if i < len(vals)}
        logs["params"] = float(result.params)
        _deliver(att, None, i + 1, logs, on_epoch)


executors.register("ray")(RayExecutor)
