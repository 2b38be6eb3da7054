"""How candidates get trained: the engine hands specs to an Executor and reads results back."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from automl.training import CandidateResult, CandidateSpec, TrainingData

EpochReporter = Callable[[CandidateSpec, int, dict[str, float]], None]
StartReporter = Callable[[CandidateSpec], None]
StopCheck = Callable[[], bool]


class Executor(abc.ABC):
    """Trains candidate subnetworks; implementations decide where (this process, Ray...).

    ``start`` is called once per search with the data, ``run`` once per iteration, ``close``
    at the end. ``run`` yields results in the order they finish; it yields a failed result
    rather than raising when a candidate fails. It calls ``on_start`` when a candidate starts
    training (again for each retry) and polls ``should_stop``; when that returns true it stops
    what is in flight and raises ``SearchCancelledError``.

    It calls ``on_epoch`` with each epoch's logs (``automl.training.EpochCallback``) while the
    candidate trains, or soon after where the epochs run elsewhere; when ``on_epoch`` raises
    ``CandidatePrunedError`` the executor stops that candidate after an epoch (the one reported
    in process; a later one where the news has to travel to a worker) and its result comes back
    ``stopped_early`` with ``stop_reason="pruned"``, unless it finished first.

    A failed result says why in ``failure_kind``: ``"training"`` when the candidate's own
    training raised (it counts toward ``max_consecutive_failures``), ``"infrastructure"`` when
    its worker or node was lost or no worker could be placed (it does not). An executor that
    retries a candidate on another worker records how often it started in ``attempts``.

    The evaluation phase runs its trainings (cross-validation folds, grown members, pruned
    fine-tunes) through the same ``run``: a spec's ``kind`` and ``folds`` say what to do, and
    ``init_weights`` maps a fine-tune's name to the weights it starts from.
    """

    name: str = ""

    @property
    def parallelism(self) -> int:
        """How many candidates it trains at once (what time estimates divide by)."""
        return 1

    def start(self, data: TrainingData) -> None:
        self._data = data

    @abc.abstractmethod
    def run(
        self,
        specs: list[CandidateSpec],
        on_epoch: EpochReporter | None = None,
        on_start: StartReporter | None = None,
        should_stop: StopCheck | None = None,
        init_weights: Mapping[str, Sequence[np.ndarray]] | None = None,
    ) -> Iterator[CandidateResult]:
        """Train every spec; yield each result as it finishes."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers or other resources."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
