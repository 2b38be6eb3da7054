"""The warm worker: TensorFlow is imported once per actor process, then it trains candidate after
candidate."""

from __future__ import annotations

import os
import time
from typing import Any

import ray

from automl.training import (
    CandidateResult,
    CandidateSpec,
    TrainingData,
    enable_determinism,
    train_candidate,
)


@ray.remote
class CandidateWorker:
    def __init__(self, threads: int) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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

    def train(
        self, spec: dict[str, Any], data: TrainingData, init_weights: list[Any] | None = None
    ) -> CandidateResult:
        self.trained += 1
        return train_candidate(CandidateSpec.from_dict(spec), data, None, init_weights)

    def info(self) -> dict[str, Any]:
        from tensorflow.python.framework import config

        return {
            "pid": os.getpid(),
            "import_s": self.import_s,
            "trained": self.trained,
            "op_determinism": bool(config.is_op_determinism_enabled()),
        }
