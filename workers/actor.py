"""The warm worker: TensorFlow is imported once per actor process, then it trains candidate after
candidate.

It runs two calls at once (``max_concurrency=2``): ``train`` in one thread and, while it trains,
the driver's ``epochs`` (the logs of the epochs run so far) and ``prune`` (stop this candidate
after its next epoch) in the other. That is how epoch reports and successive halving reach a
candidate training on Ray; the driver polls, so nothing here needs to reach the driver.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import ray

from automl.training import (
    CandidatePrunedError,
    CandidateResult,
    CandidateSpec,
    TrainingData,
    enable_determinism,
    train_candidate,
)


def thread_nice_values() -> list[int]:
    """The nice value of each thread of this process (Linux; empty elsewhere)."""
    values = []
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return []
    for tid in tids:
        try:
            values.append(os.getpriority(os.PRIO_PROCESS, tid))
        except OSError:
            continue
    return values


def lower_priority(nice: int) -> int:
    """Raise the nice value of every thread of this process to at least ``nice`` (Linux keeps
    one per thread, and a new thread inherits its creator's: Ray's threads exist before this
    runs, TensorFlow's pools are made later). Training is batch work: on a machine it shares
    with the API, a request should not wait behind it. Returns how many threads were
    changed; never fails (lowering a nice value needs privileges, raising it does not)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return 0
    changed = 0
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed += 1
        except OSError:  # the thread ended meanwhile
            continue
    return changed


@ray.remote
class CandidateWorker:
    def __init__(self, threads: int, nice: int = 0) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.nice = nice
        lower_priority(nice)
        started = time.perf_counter()
        import tensorflow as tf

        # Ray gives this actor `threads` CPUs: keep TensorFlow's pools to that many so that
        # several actors on one node do not oversubscribe its cores.
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        # Before any op runs: the thread pools above must be sized before TensorFlow starts its
        # runtime (which enabling determinism does not do), and no kernel may be built without
        # it. train_candidate enables it again and resets every seed for each candidate.
        enable_determinism()
        import keras  # noqa: F401 - warm the import

        self.import_s = time.perf_counter() - started
        self.trained = 0
        self._lock = threading.Lock()
        self._current: str | None = None  # the candidate training now
        self._epochs: list[tuple[int, dict[str, float]]] = []  # its epochs' logs so far
        self._prune = False  # the driver asked to stop it

    def train(
        self,
        spec: dict[str, Any],
        data: TrainingData,
        init_weights: list[Any] | None = None,
        report_epochs: bool = False,
    ) -> CandidateResult:
        """Train one candidate; with ``report_epochs`` keep its epochs' logs for ``epochs`` and
        stop it after the epoch during which ``prune`` was called for it."""
        self.trained += 1
        lower_priority(self.nice)  # threads started since (TensorFlow's, Ray's) too
        candidate = CandidateSpec.from_dict(spec)
        with self._lock:
            self._current, self._epochs, self._prune = candidate.name, [], False
        try:
            hook = self._on_epoch if report_epochs else None
            return train_candidate(candidate, data, hook, init_weights)
        finally:
            with self._lock:
                self._current = None

    def _on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        with self._lock:
            self._epochs.append((epoch, logs))
            prune = self._prune
        if prune:
            raise CandidatePrunedError(f"pruned after epoch {epoch} by the driver")

    def epochs(self, name: str, since: int) -> list[tuple[int, dict[str, float]]]:
        """The logs of candidate ``name``'s epochs after the first ``since``; none once it is
        no longer training here (its result has them all)."""
        with self._lock:
            return list(self._epochs[since:]) if self._current == name else []

    def prune(self, name: str) -> bool:
        """Stop candidate ``name`` after its current epoch; False if it is not training here
        (finished already: the flag must not stop the next candidate)."""
        with self._lock:
            if self._current != name:
                return False
            self._prune = True
            return True

    def info(self) -> dict[str, Any]:
        from tensorflow.python.framework import config

        return {
            "pid": os.getpid(),
            "import_s": self.import_s,
            "trained": self.trained,
            "op_determinism": bool(config.is_op_determinism_enabled()),
            # the lowest nice value among its threads: what its training yields at
            "nice": min(thread_nice_values() or [os.getpriority(os.PRIO_PROCESS, 0)]),
        }
