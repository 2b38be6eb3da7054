"""Train candidates one after another in this process (TensorFlow uses every core per candidate)."""

from __future__ import annotations

from collections.abc import Iterator

from automl.executors._base import EpochReporter, Executor
from automl.training import CandidateResult, CandidateSpec, EpochCallback, train_candidate


class InProcessExecutor(Executor):
    name = "in_process"

    def run(
        self, specs: list[CandidateSpec], on_epoch: EpochReporter | None = None
    ) -> Iterator[CandidateResult]:
        for spec in specs:
            yield train_candidate(spec, self._data, _bind(on_epoch, spec))


def _bind(on_epoch: EpochReporter | None, spec: CandidateSpec) -> EpochCallback | None:
    if on_epoch is None:
        return None
    reporter = on_epoch

    def hook(epoch: int, logs: dict[str, float]) -> None:
        reporter(spec, epoch, logs)

    return hook
