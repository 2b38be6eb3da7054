"""The same seed gives the same search: the same candidates, losses, choices and weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tensorflow.python.framework import config as tf_config

from automl.data import PreparedData, load_builtin, prepare
from automl.generator import CandidateGenerator
from automl.runner import replay, run
from automl.search import AdaNetSearch, SearchCallback, SearchResult
from automl.spec import SearchSpec
from automl.training import CandidateResult, TrainingData, train_candidate
from tests.conftest import tiny_spec_dict


@pytest.fixture(scope="module")
def iris() -> PreparedData:
    return prepare(load_builtin("iris"), seed=0)


def _spec(**overrides: object) -> SearchSpec:
    return SearchSpec.from_dict(tiny_spec_dict(**overrides))


def test_training_a_candidate_turns_tensorflow_op_determinism_on(iris: PreparedData) -> None:
    # Op determinism is process-wide: start from a process where nothing has turned it on yet.
    tf_config.disable_op_determinism()
    spec = CandidateGenerator(_spec(), ["dense"]).propose(0, None)[0]
    data = TrainingData.from_prepared(iris)
    a = train_candidate(spec, data)
    assert a.ok, a.error
    assert tf_config.is_op_determinism_enabled()
    b = train_candidate(spec, data)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.logits_val, b.logits_val)


class _Weights(SearchCallback):
    def __init__(self) -> None:
        self.weights: dict[str, list[np.ndarray]] = {}

    def on_candidate_result(self, result: CandidateResult) -> None:
        self.weights[result.spec.name] = result.weights


def test_two_searches_with_one_seed_give_identical_losses_and_choices(iris: PreparedData) -> None:
    spec = _spec(seed=11, epochs=3, ensemble_strategies=["grow", "all"])
    runs = []
    for _ in range(2):
        keep = _Weights()
        runs.append((AdaNetSearch(spec, iris, callbacks=[keep]).run(), keep.weights))
    (a, wa), (b, wb) = runs

    def outcome(result: SearchResult) -> list[tuple]:
        return [
            (
                c.name,
                c.own_metrics["loss"],
                c.loss,
                c.complexity,
                c.objective,
                c.complexity_measure,
                c.chosen,
            )
            for it in result.iterations
            for c in it.candidates
        ] + [(it.chosen, it.best_objective) for it in result.iterations]

    # exactly, not to a tolerance: any difference could flip a close choice
    assert outcome(a) == outcome(b)
    assert a.ensemble.fit.objective == b.ensemble.fit.objective
    assert wa.keys() == wb.keys()
    for name in wa:
        for x, y in zip(wa[name], wb[name], strict=True):
            np.testing.assert_array_equal(x, y)


def test_replay_retrains_the_same_members_to_the_same_predictions(tmp_path: Path) -> None:
    spec = _spec(epochs=3, evaluation={"enabled": False})
    searched = run(spec, load_builtin("wine"), tmp_path / "run")
    assert searched.report["deterministic"] is True
    assert "op determinism" in searched.report["determinism"]
    replayed = replay(tmp_path / "run")
    assert [m["name"] for m in replayed.report["ensemble"]["members"]] == [
        m["name"] for m in searched.report["ensemble"]["members"]
    ]
    assert replayed.report["ensemble"]["objective"] == searched.report["ensemble"]["objective"]
    data = prepare(load_builtin("wine"), seed=spec.seed)
    assert data.x_test_raw is not None
    np.testing.assert_array_equal(
        replayed.model.predict(data.x_test_raw, verbose=0),
        searched.model.predict(data.x_test_raw, verbose=0),
    )
    assert (
        replayed.report["test_metrics"]["accuracy"] == searched.report["test_metrics"]["accuracy"]
    )
