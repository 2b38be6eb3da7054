"""Failed candidates of two kinds: a training failure (the candidate's own code) counts toward
max_consecutive_failures; an infrastructure failure (its worker or node lost) does not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automl.data import PreparedData, load_builtin, prepare
from automl.errors import SearchAbortedError
from automl.executors import EpochReporter, Executor, StartReporter, StopCheck
from automl.search import AdaNetSearch
from automl.spec import SearchSpec
from automl.training import CandidateResult, CandidateSpec, train_candidate
from tests.conftest import tiny_spec_dict


class LossyExecutor(Executor):
    """Trains in this process, except that the first ``lose`` candidates come back failed
    with ``kind`` after ``attempts`` tries, as a distributed executor reports them."""

    def __init__(self, lose: int, kind: str | None, attempts: int = 3) -> None:
        self.lose, self.kind, self.attempts = lose, kind, attempts
        self.seen = 0

    def run(
        self,
        specs: list[CandidateSpec],
        on_epoch: EpochReporter | None = None,
        on_start: StartReporter | None = None,
        should_stop: StopCheck | None = None,
    ) -> Iterator[CandidateResult]:
        for spec in specs:
            self.seen += 1
            if self.seen <= self.lose:
                yield CandidateResult(
                    spec=spec,
                    state="failed",
                    node="worker-7:4242",
                    error=f"{self.kind} failure of {spec.name}",
                    attempts=self.attempts,
                    failure_kind=self.kind,
                )
            else:
                yield train_candidate(spec, self._data)


@pytest.fixture(scope="module")
def iris() -> PreparedData:
    return prepare(load_builtin("iris"), seed=0)


def _spec(**overrides: object) -> SearchSpec:
    return SearchSpec.from_dict(
        tiny_spec_dict(
            **{"max_iterations": 1, "candidates_per_iteration": 3, "epochs": 20, **overrides}
        )
    )


def test_lost_workers_do_not_count_toward_max_consecutive_failures(iris: PreparedData) -> None:
    result = AdaNetSearch(
        _spec(max_consecutive_failures=1), iris, LossyExecutor(2, "infrastructure")
    ).run()
    lost, trained = result.iterations[0].candidates[:2], result.iterations[0].candidates[2]
    assert [c.failure_kind for c in lost] == ["infrastructure", "infrastructure"]
    assert all(c.state == "failed" and c.attempts == 3 for c in lost)
    assert lost[0].node == "worker-7:4242"
    assert trained.state == "completed" and trained.failure_kind is None
    assert trained.attempts == 1
    assert [m.name for m in result.ensemble.members] == [trained.name]


def test_training_failures_still_abort_the_search(iris: PreparedData) -> None:
    with pytest.raises(SearchAbortedError, match="1 candidates in a row failed"):
        AdaNetSearch(_spec(max_consecutive_failures=1), iris, LossyExecutor(1, "training")).run()


def test_a_failure_reported_without_a_kind_is_recorded_as_a_training_one(
    iris: PreparedData,
) -> None:
    # what train_candidate returns when training raised: failed, with no kind
    result = AdaNetSearch(
        _spec(max_consecutive_failures=2), iris, LossyExecutor(1, None, attempts=1)
    ).run()
    failed = result.iterations[0].candidates[0]
    assert failed.state == "failed" and failed.failure_kind == "training"
    assert all(c.failure_kind is None for c in result.iterations[0].candidates[1:])


def test_an_iteration_lost_entirely_to_the_cluster_stops_the_search_with_the_reason(
    iris: PreparedData,
) -> None:
    with pytest.raises(SearchAbortedError, match="3 of 3 were lost to the cluster") as info:
        AdaNetSearch(_spec(), iris, LossyExecutor(3, "infrastructure")).run()
    assert "infrastructure failure of" in str(info.value)


def test_a_candidate_past_its_timeout_fails_as_timeout_with_the_reason(
    iris: PreparedData,
) -> None:
    """candidate_timeout_s: a training still running is stopped after its next batch and
    recorded as failed (kind timeout, the reason in its error); timeouts count like training
    failures, so a search whose every candidate times out stops with the reason rather than
    running on."""
    from automl.generator import CandidateGenerator
    from automl.search import SearchCallback
    from automl.training import TrainingData

    spec = _spec(epochs=1000, candidate_timeout_s=0.5)
    first = CandidateGenerator(spec, spec.resolve_families(iris.dataset.kind)).propose(0, None)[0]
    assert first.timeout_s == 0.5  # the spec's limit travels with every candidate
    res = train_candidate(first, TrainingData.from_prepared(iris))
    assert res.state == "failed" and res.failure_kind == "timeout", res.error
    assert "candidate_timeout_s" in (res.error or "")
    assert res.duration_s < 60  # stopped, not run to its 1000 epochs

    class Records(SearchCallback):
        def __init__(self) -> None:
            self.records: list[object] = []

        def on_candidate_end(self, record: object) -> None:
            self.records.append(record)

    seen = Records()
    with pytest.raises(SearchAbortedError, match="max_consecutive_failures"):
        AdaNetSearch(spec, iris, callbacks=[seen]).run()
    kinds = [getattr(r, "failure_kind", None) for r in seen.records]
    assert kinds == ["timeout"] * 3, kinds
