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
from collections.abc import Iterator
from typing import Any

from automl.errors import SearchAbortedError, SearchCancelledError
from automl.executors import EpochReporter, Executor, StartReporter, StopCheck, executors
from automl.spec import Resources
from automl.training import CandidateResult, CandidateSpec, TrainingData, node_name

_lock = threading.RLock()  # re-entrant: _acquire evicts other shapes while holding it
_pools: dict[tuple[float, float], list[Any]] = {}
_busy: set[Any] = set()
_started_local = False


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


def check_feasible(resources: Resources) -> dict[str, float]:
    """Fail at once when no node can ever run one candidate: never wait forever."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    best_cpu = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
    best_gpu = max((n["Resources"].get("GPU", 0.0) for n in nodes), default=0.0)
    fits = [
        n
        for n in nodes
        if n["Resources"].get("CPU", 0.0) >= resources.cpus
        and n["Resources"].get("GPU", 0.0) >= resources.gpus
    ]
    if not fits:
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
    total = ray.cluster_resources()
    slots = math.floor(total.get("CPU", 0.0) / resources.cpus)
    if resources.gpus > 0:
        slots = min(slots, math.floor(total.get("GPU", 0.0) / resources.gpus))
    return {"slots": max(1, slots), "cpu": total.get("CPU", 0.0), "gpu": total.get("GPU", 0.0)}


def _kill(pool: list[Any], actor: Any) -> None:
    import ray

    if actor in pool:
        pool.remove(actor)
    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001 - it may be gone already
        pass


class RayExecutor(Executor):
    """Candidates train on warm Ray actors, as many at once as the cluster has room for.

    Args:
        resources: What each candidate asks for (``spec.resources``).
        address: Ray cluster to join; ``None`` starts a local one if none is connected.
        max_parallel: Cap on candidates training at once (default: what the cluster fits).
    """

    name = "ray"

    def __init__(
        self,
        resources: Resources | None = None,
        address: str | None = None,
        max_parallel: int | None = None,
    ) -> None:
        self.resources = resources or Resources()
        self.address = address
        self.max_parallel = max_parallel
        self._data_ref: Any = None
        self._slots = 1

    def start(self, data: TrainingData) -> None:
        import ray

        ensure_ray(self.address)
        info = check_feasible(self.resources)
        self._slots = int(info["slots"])
        if self.max_parallel:
            self._slots = min(self._slots, self.max_parallel)
        self._data_ref = ray.put(data)  # once per search, shared by every candidate

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

    def _acquire(self, limit: int) -> list[Any]:
        """Idle actors for this resource shape, creating new ones up to ``limit``."""
        from workers.actor import CandidateWorker

        with _lock:
            pool = _pools.setdefault(self._key(), [])
            idle = [a for a in pool if a not in _busy][:limit]
            if len(idle) < limit and len(pool) < self._slots:
                self._evict_idle_others()
            while len(idle) < limit and len(pool) < self._slots:
                actor = CandidateWorker.options(  # type: ignore[attr-defined]
                    num_cpus=self.resources.cpus,
                    num_gpus=self.resources.gpus,
                    max_concurrency=1,
                ).remote(max(1, int(self.resources.cpus)))
                pool.append(actor)
                idle.append(actor)
            _busy.update(idle)
            return idle

    def _release(self, actor: Any, dead: bool = False) -> None:
        with _lock:
            _busy.discard(actor)
            if dead:
                _kill(_pools.get(self._key(), []), actor)

    def run(
        self,
        specs: list[CandidateSpec],
        on_epoch: EpochReporter | None = None,
        on_start: StartReporter | None = None,
        should_stop: StopCheck | None = None,
    ) -> Iterator[CandidateResult]:
        import ray

        pending = list(specs)
        actors = self._acquire(min(len(specs), self._slots))
        free = list(actors)
        inflight: dict[Any, tuple[CandidateSpec, Any, float]] = {}
        try:
            while pending or inflight:
                if pending and not free and not inflight:
                    # every pooled actor is busy with another job: wait for one
                    got = self._acquire(1)
                    if not got:
                        if should_stop is not None and should_stop():
                            raise SearchCancelledError("the search was cancelled")
                        time.sleep(0.2)
                        continue
                    actors.extend(got)
                    free.extend(got)
                while pending and free:
                    spec, actor = pending.pop(0), free.pop(0)
                    ref = actor.train.remote(spec.to_dict(), self._data_ref)
                    inflight[ref] = (spec, actor, time.perf_counter())
                    if on_start is not None:
                        on_start(spec)
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
                if not ready:
                    # an actor of ours may still wait for resources that another shape's
                    # workers went idle holding
                    self._evict_idle_others()
                if should_stop is not None and should_stop():
                    raise SearchCancelledError("the search was cancelled")
                for ref in ready:
                    spec, actor, t0 = inflight.pop(ref)
                    try:
                        result: CandidateResult = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - the worker died: a failed candidate
                        self._release(actor, dead=True)
                        actors.remove(actor)
                        replacement = self._acquire(1)
                        actors.extend(replacement)
                        free.extend(replacement)
                        yield CandidateResult(
                            spec=spec,
                            state="failed",
                            duration_s=time.perf_counter() - t0,
                            node=node_name(),
                            error=f"the Ray worker failed: {type(exc).__name__}: {exc}",
                        )
                        continue
                    free.append(actor)
                    yield result
        except BaseException:
            # cancelled or the consumer stopped: stop what is in flight; those actors are
            # killed (an actor task cannot be interrupted) and replaced on the next acquire
            for _spec, actor, _t0 in inflight.values():
                self._release(actor, dead=True)
                actors.remove(actor)
            raise
        finally:
            for actor in actors:
                self._release(actor)

    def warm_up(self) -> int:
        """Create this resource shape's actors now (each imports TensorFlow), so the first job
        does not wait for them; return how many are warm."""
        import ray

        ensure_ray(self.address)
        self._slots = int(check_feasible(self.resources)["slots"])
        actors = self._acquire(self._slots)
        try:
            ray.get([a.info.remote() for a in actors])
        finally:
            for actor in actors:
                self._release(actor)
        return len(actors)

    def worker_info(self) -> list[dict[str, Any]]:
        """pid, TensorFlow import time and candidates trained, for every pooled actor."""
        import ray

        with _lock:
            pool = list(_pools.get(self._key(), []))
        return list(ray.get([a.info.remote() for a in pool]))


executors.register("ray")(RayExecutor)
