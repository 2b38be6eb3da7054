"""Train candidates one after another in this process (TensorFlow uses every core per candidate)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from automl.errors import SearchCancelledError
from automl.executors._base import EpochReporter, Executor, StartReporter, StopCheck
from automl.training import CandidateResult, CandidateSpec, EpochCallback, train_candidate


class InProcessExecutor(Executor):
    name = "in_process"

    def run(
        self,
        specs: list[CandidateSpec],
        on_epoch: EpochReporter | None = None,
        on_start: StartReporter | None = None,
        should_stop: StopCheck | None = None,
        init_weights: Mapping[str, Sequence[np.ndarray]] | None = None,
    ) -> Iterator[CandidateResult]:
        for spec in specs:
            if should_stop is not None and should_stop():
                raise SearchCancelledError("the search was cancelled")
            if on_start is not None:
                on_start(spec)
            yield train_candidate(
                spec,
                self._data,
                _bind(on_epoch, should_stop, spec),
                (init_weights or {}).get(spec.name),
            )


def _bind(
    on_epoch: EpochReporter | None, should_stop: StopCheck | None, spec: CandidateSpec
) -> EpochCallback | None:
    if on_epoch is None and should_stop is None:
        return None

    def hook(epoch: int, logs: dict[str, float]) -> None:
        # on_epoch may raise CandidatePrunedError (successive halving): the training stops
        # after this epoch; a cancellation still wins over it
        try:
            if on_epoch is not None:
                on_epoch(spec, epoch, logs)
        finally:
            if should_stop is not None and should_stop():
                raise SearchCancelledError("the search was cancelled")

    return hook
