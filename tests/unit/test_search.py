"""The AdaNet loop on a small real dataset (iris, dense subnetworks, 2 epochs)."""

from __future__ import annotations

import copy
from pathlib import Path

import keras
import numpy as np
import pytest

from automl.data import PreparedData, load_builtin, prepare
from automl.errors import SearchAbortedError
from automl.generator import CandidateGenerator
from automl.runner import run
from automl.search import (
    AdaNetSearch,
    CandidateRecord,
    IterationRecord,
    ResumeState,
    SearchCallback,
    SearchResult,
)
from automl.spec import SearchSpec
from automl.training import CandidateResult, CandidateSpec
from tests.conftest import tiny_spec_dict


@pytest.fixture(scope="module")
def iris():  # type: ignore[no-untyped-def]
    return prepare(load_builtin("iris"), seed=0)


def _spec(**overrides: object) -> SearchSpec:
    return SearchSpec.from_dict(tiny_spec_dict(**overrides))


def _signature(result) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [
        (c.name, tuple(sorted(c.hparams.items())), c.chosen)
        for it in result.iterations
        for c in it.candidates
    ]


def test_same_seed_gives_the_same_candidates_and_choices(iris) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(seed=5, epochs=3)
    a = AdaNetSearch(spec, iris).run()
    b = AdaNetSearch(spec, iris).run()
    assert _signature(a) == _signature(b)
    fa = [c.objective for it in a.iterations for c in it.candidates]
    fb = [c.objective for it in b.iterations for c in it.candidates]
    np.testing.assert_allclose(fa, fb, rtol=1e-4)
    c = AdaNetSearch(_spec(seed=6, epochs=3), iris).run()
    assert _signature(c) != _signature(a)


def test_generator_proposes_the_papers_two_candidates_after_a_choice() -> None:
    spec = _spec(candidates_per_iteration=3)
    gen = CandidateGenerator(spec, ["dense"])
    first = gen.propose(0, None)
    assert [s.origin for s in first] == ["sampled"] * 3
    for s in first:
        gen.tell(s.name, 0.5, 0.1)
    last = dict(first[1].hparams, depth=1)
    second = gen.propose(1, last)
    assert [s.origin for s in second] == ["paper_same_depth", "paper_deeper", "sampled"]
    assert second[0].hparams == last
    assert second[1].hparams == dict(last, depth=2)
    assert len({s.seed for s in first + second}) == 6


def test_conv1d_searches_may_start_from_the_familys_starting_configuration() -> None:
    from automl.subnetworks import create_subnetwork_builder

    start = create_subnetwork_builder("conv1d").starting_hparams
    assert start is not None
    spec = _spec(candidates_per_iteration=3, batch_size=[32, 64], starting_configurations=True)
    gen = CandidateGenerator(spec, ["dense", "conv1d"])
    first = gen.propose(0, None)
    assert [s.origin for s in first] == ["default", "sampled", "sampled"]
    assert first[0].hparams == {"family": "conv1d", **start}
    # the same again from the spec alone (resume, replay)
    again = CandidateGenerator(spec, ["dense", "conv1d"]).propose(0, None)
    assert [s.hparams for s in again] == [s.hparams for s in first]
    for s in first:
        gen.tell(s.name, 0.5, 0.1)
    # only iteration 0, and never when the family is not searched or the spec turns it off
    assert "default" not in [s.origin for s in gen.propose(1, dict(first[1].hparams))]
    dense_only = CandidateGenerator(spec, ["dense"]).propose(0, None)
    assert [s.origin for s in dense_only] == ["sampled"] * 3
    off = _spec(candidates_per_iteration=3, starting_configurations=False)
    assert [s.origin for s in CandidateGenerator(off, ["conv1d"]).propose(0, None)] == [
        "sampled"
    ] * 3
    # on by default: a default conv1d search starts from it, dropout (fixed at 0.3) included
    default = CandidateGenerator(SearchSpec(), ["dense", "conv1d"]).propose(0, None)
    assert default[0].origin == "default"
    assert default[0].hparams == {"family": "conv1d", **start}
    # a value the space does not hold is sampled instead: the user's space decides
    narrow = _spec(
        candidates_per_iteration=3,
        conv1d={"filters": [16, 32]},
        batch_size=[64],
        starting_configurations=True,
    )
    [start_narrow, *_] = CandidateGenerator(narrow, ["conv1d"]).propose(0, None)
    assert start_narrow.origin == "default"
    assert start_narrow.hparams["filters"] in (16, 32) and start_narrow.hparams["batch_size"] == 64
    kept = {k: v for k, v in start.items() if k not in ("filters", "batch_size")}
    assert kept.items() <= start_narrow.hparams.items()
    # history's configurations come first
    warm = _spec(
        candidates_per_iteration=3,
        batch_size=[32, 64],
        starting_configurations=True,
        warm_start_configurations=[{"family": "dense", "depth": 1}],
    )
    origins = [s.origin for s in CandidateGenerator(warm, ["dense", "conv1d"]).propose(0, None)]
    assert origins == ["history", "default", "sampled"]


def test_a_search_fills_in_the_epochs_its_data_decides() -> None:
    spec = SearchSpec()
    seq = prepare(load_builtin("mnist1d"), seed=0)
    search = AdaNetSearch(spec, seq)
    assert spec.epochs is None and search.spec.epochs == 60  # the report records 60
    first = CandidateGenerator(search.spec, search.families).propose(0, None)
    assert {c.epochs for c in first} == {60}
    iris_data = prepare(load_builtin("iris"), seed=0)
    assert AdaNetSearch(spec, iris_data).spec.epochs == 30


def test_each_iteration_records_loss_complexity_and_objective(iris) -> None:  # type: ignore[no-untyped-def]
    events: list[str] = []

    class Recorder(SearchCallback):
        def on_iteration_start(self, iteration, specs):  # type: ignore[no-untyped-def]
            events.append(f"start{iteration}:{len(specs)}")

        def on_epoch_end(self, spec, epoch, logs):  # type: ignore[no-untyped-def]
            events.append("epoch")

        def on_candidate_end(self, record: CandidateRecord) -> None:
            events.append(f"done:{record.name}")

        def on_ensemble_chosen(self, record, ensemble):  # type: ignore[no-untyped-def]
            events.append(f"chosen:{record.chosen}")

    spec = _spec(ensemble_strategies=["grow", "solo", "all"], **{"lambda": 0.001})
    result = AdaNetSearch(spec, iris, callbacks=[Recorder()]).run()
    assert events[0] == "start0:2" and events.count("epoch") == 2 * 2 * len(result.iterations)
    first = result.iterations[0]
    assert {e.strategy for e in first.ensembles} == {"grow", "solo", "all"}
    for c in first.candidates:
        assert c.state == "completed"
        assert c.objective == pytest.approx(c.loss + c.complexity)
        assert c.complexity > 0 and c.duration_s > 0
    # the previous ensemble is a candidate: F must have fallen for anything to be chosen
    for it in result.iterations:
        if it.chosen:
            assert it.best_objective < it.previous_objective
    assert result.ensemble.fit.objective == min(
        it.best_objective for it in result.iterations if it.chosen
    )


def test_search_stops_when_nothing_beats_the_previous_ensemble(iris) -> None:  # type: ignore[no-untyped-def]
    # A huge λ makes every mixture weight 0: no candidate beats the empty ensemble.
    with pytest.raises(SearchAbortedError, match="no candidate ensemble beat the empty ensemble"):
        AdaNetSearch(_spec(**{"lambda": 100.0}), iris).run()
    forced = AdaNetSearch(_spec(**{"lambda": 100.0, "force_grow": True}), iris).run()
    assert forced.stop_reason == "max_iterations" and len(forced.iterations) == 2


def test_failed_candidates_are_recorded_and_too_many_abort(iris) -> None:  # type: ignore[no-untyped-def]
    diverging = {
        "optimizers": ["sgd"],
        "learning_rate": {"low": 1e12, "high": 1e13, "log": True},
        "schedules": ["constant"],
        "dense": {"batch_norm": [False]},
    }
    seen: list[CandidateRecord] = []

    class Keep(SearchCallback):
        def on_candidate_end(self, record: CandidateRecord) -> None:
            seen.append(record)

    with pytest.raises(SearchAbortedError, match="2 candidates in a row failed.*diverged"):
        AdaNetSearch(_spec(max_consecutive_failures=2, **diverging), iris, callbacks=[Keep()]).run()
    assert [r.state for r in seen] == ["failed", "failed"]
    assert all("FloatingPointError" in (r.error or "") for r in seen)


def test_final_model_saves_and_reloads_with_identical_predictions(tmp_path: Path) -> None:
    spec = _spec(mixture_weight_type="vector")
    outcome = run(spec, load_builtin("wine"), tmp_path / "run")
    reloaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    data = prepare(load_builtin("wine"), seed=spec.seed)
    assert data.x_test_raw is not None
    np.testing.assert_allclose(
        reloaded.predict(data.x_test_raw, verbose=0),
        outcome.model.predict(data.x_test_raw, verbose=0),
        rtol=1e-6,
        atol=1e-6,
    )
    probs = reloaded.predict(data.x_test_raw, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert outcome.report["test_metrics"]["accuracy"] > 0.5


def test_regression_search_reports_mse_in_target_units(tmp_path: Path) -> None:
    outcome = run(_spec(epochs=3), load_builtin("diabetes"))
    metrics = outcome.report["test_metrics"]
    assert set(metrics) == {"mse", "mae", "r2"}
    # the target's variance is ~5900: a model in the right units is far below it and above 0
    assert 0 < metrics["mse"] < 10000


@pytest.mark.parametrize(
    "overrides",
    [
        {"sampler": "random", "selection": "train"},
        {"sampler": "nsga2", "mixture_weight_type": "vector", "complexity_measure": "log_params"},
        {"sampler": "tpe", "ensemble_strategies": ["solo"], "mixture_bias": True},
    ],
)
def test_samplers_selection_and_strategies_all_run(iris, overrides: dict) -> None:  # type: ignore[no-untyped-def]
    result = AdaNetSearch(_spec(epochs=4, **overrides), iris).run()
    assert result.ensemble.members
    names = {m.name for m in result.ensemble.members}
    if overrides.get("ensemble_strategies") == ["solo"]:
        assert len(names) == 1  # solo ensembles hold one member
    chosen = [it for it in result.iterations if it.chosen]
    assert chosen and all(it.best_objective < it.previous_objective for it in chosen)


def test_a_resumed_search_matches_an_uninterrupted_one(iris) -> None:  # type: ignore[no-untyped-def]
    from automl.errors import SearchCancelledError

    spec = _spec(seed=9, epochs=3, max_iterations=3, candidates_per_iteration=2)
    straight = AdaNetSearch(spec, iris).run()

    class StopAfterFirstIteration(SearchCallback):
        def __init__(self) -> None:
            self.weights: dict[str, list] = {}
            self.completed: list = []
            self.trained_later: list[str] = []

        def on_candidate_result(self, result: CandidateResult) -> None:
            self.weights[result.spec.name] = result.weights
            if self.completed:
                self.trained_later.append(result.spec.name)

        def on_ensemble_chosen(self, record, ensemble):  # type: ignore[no-untyped-def]
            self.completed.append(record)

        def should_stop(self) -> bool:
            return bool(self.completed)  # "kill" the search once iteration 0 is stored

    class Trained(SearchCallback):
        def __init__(self) -> None:
            self.names: list[str] = []

        def on_candidate_result(self, result: CandidateResult) -> None:
            self.names.append(result.spec.name)

    stopper = StopAfterFirstIteration()
    with pytest.raises(SearchCancelledError):
        AdaNetSearch(spec, iris, callbacks=[stopper]).run()
    assert len(stopper.completed) == 1
    # the kill took effect at once: no candidate of iteration 1 finished training after it
    assert stopper.trained_later == []
    members = [m for e in stopper.completed[0].ensembles if e.chosen for m in e.members]
    resume = ResumeState(stopper.completed, {m: stopper.weights[m] for m in members})
    trained = Trained()
    resumed = AdaNetSearch(spec, iris, callbacks=[trained]).run(resume=resume)
    assert _signature(resumed) == _signature(straight)
    # the resumed search trains only what the killed one had not finished: no candidate of
    # iteration 0 again, every later one once
    assert trained.names == [c.name for it in straight.iterations[1:] for c in it.candidates]
    np.testing.assert_allclose(
        resumed.ensemble.fit.objective, straight.ensemble.fit.objective, rtol=1e-4
    )


def test_resume_refuses_a_record_that_does_not_match_the_spec(iris) -> None:  # type: ignore[no-untyped-def]
    first = AdaNetSearch(_spec(seed=1, max_iterations=1), iris).run()
    with pytest.raises(SearchAbortedError, match="cannot resume: candidate t0_c0"):
        AdaNetSearch(_spec(seed=2, max_iterations=2), iris).run(
            resume=ResumeState(first.iterations, {})
        )


Weights = dict[str, list[np.ndarray]]


@pytest.fixture(scope="module")
def two_iterations(iris: PreparedData) -> tuple[SearchSpec, SearchResult, Weights]:
    """An uninterrupted 2-iteration search and every candidate's trained weights."""

    class KeepWeights(SearchCallback):
        def __init__(self) -> None:
            self.weights: Weights = {}

        def on_candidate_result(self, result: CandidateResult) -> None:
            self.weights[result.spec.name] = result.weights

    spec = _spec(seed=3, max_iterations=2)
    keep = KeepWeights()
    result = AdaNetSearch(spec, iris, callbacks=[keep]).run()
    assert len(result.iterations) == 2 and result.iterations[0].chosen
    return spec, result, keep.weights


def _resume_from_first(result: SearchResult, weights: Weights) -> ResumeState:
    """Resume after iteration 0 the way the service does: iteration and candidate records as
    its database keeps them (every field but r(h), which has no column) plus the weights of
    the members of the last chosen ensemble."""
    stored = copy.deepcopy(result.iterations[0])
    first = IterationRecord(
        iteration=stored.iteration,
        previous_objective=stored.previous_objective,
        candidates=[
            CandidateRecord(**{k: v for k, v in c.to_dict().items() if k != "complexity_measure"})
            for c in stored.candidates
        ],
        ensembles=stored.ensembles,
        chosen=stored.chosen,
        best_objective=stored.best_objective,
        improved=stored.improved,
        duration_s=stored.duration_s,
    )
    members = next(e.members for e in first.ensembles if e.name == first.chosen)
    return ResumeState([first], {m: weights[m] for m in members})


def _complexity_measures(result: SearchResult) -> dict[str, float]:
    return {c.name: c.complexity_measure for it in result.iterations for c in it.candidates}


def test_a_resumed_search_reports_every_candidates_complexity_measure(
    iris: PreparedData, two_iterations: tuple[SearchSpec, SearchResult, Weights]
) -> None:
    spec, straight, weights = two_iterations
    resumed = AdaNetSearch(spec, iris).run(resume=_resume_from_first(straight, weights))
    expected = _complexity_measures(straight)
    assert len(expected) == 4 and all(v > 0 for v in expected.values())
    # the resumed iteration's candidates included, not only the ones trained after the resume
    assert _complexity_measures(resumed) == pytest.approx(expected)


def test_a_resumed_search_counts_the_time_its_completed_iterations_took(
    iris: PreparedData, two_iterations: tuple[SearchSpec, SearchResult, Weights]
) -> None:
    spec, straight, weights = two_iterations
    resume = _resume_from_first(straight, weights)
    resume.iterations[0].duration_s = 120.0  # the interrupted run already spent 2 minutes
    started: list[str] = []

    class Started(SearchCallback):
        def on_candidate_start(self, spec: CandidateSpec) -> None:
            started.append(spec.name)

    budget = SearchSpec.from_dict(dict(spec.to_dict(), time_budget_s=60))
    resumed = AdaNetSearch(budget, iris, callbacks=[Started()]).run(resume=resume)
    assert resumed.stop_reason == "time_budget"
    assert started == [] and len(resumed.iterations) == 1
    # it ends with the ensemble the completed iteration chose
    first = straight.iterations[0]
    chosen = next(e for e in first.ensembles if e.name == first.chosen)
    assert [m.name for m in resumed.ensemble.members] == chosen.members
    # and its wall time counts the earlier run's completed iteration too
    assert resumed.wall_s >= 120.0


# members of one fixed shape (2 × 64 units, no batch norm): each has the same parameter count
SAME_SHAPE = {
    "seed": 3,
    "max_iterations": 3,
    "epochs": 3,
    "dense": {"depth": {"low": 2, "high": 2}, "width": [64], "batch_norm": [False]},
    "ensemble_strategies": ["grow", "solo"],
}


@pytest.fixture(scope="module")
def free(iris):  # type: ignore[no-untyped-def]
    """The search of SAME_SHAPE without a size goal."""
    return AdaNetSearch(_spec(**SAME_SHAPE), iris).run()


@pytest.mark.parametrize(
    ("goal_per_member", "goal_search_sparsity", "stops_on_the_cap"),
    [
        # cap = the goal: one member fits, two do not (solo ensembles replace it instead)
        (1.0, 0.0, False),
        # cap = goal / (1 - 0.5): the phase may prune two members to the goal; three do not fit
        (1.0, 0.5, False),
        # nothing fits: the search still ends with a member (the phase then says missed), and
        # stops when the only way to lower F is over the cap
        (0.5, 0.0, True),
    ],
)
def test_a_size_goal_keeps_the_searchs_choices_within_its_cap(  # type: ignore[no-untyped-def]
    iris, free, goal_per_member: float, goal_search_sparsity: float, stops_on_the_cap: bool
) -> None:
    sizes = {m.params for m in free.ensemble.members}
    assert len(sizes) == 1
    per_member = sizes.pop()
    # what makes the cap matter: without a goal the search grows to three members
    assert len(free.ensemble.members) == 3
    goal = int(per_member * goal_per_member)
    evaluation = dict(
        tiny_spec_dict()["evaluation"],  # type: ignore[call-overload]
        max_nonzero_params=goal,
        goal_search_sparsity=goal_search_sparsity,
    )
    spec = _spec(**SAME_SHAPE, evaluation=evaluation)
    cap = spec.evaluation.search_param_cap
    assert cap == int(goal / (1 - goal_search_sparsity))
    capped = AdaNetSearch(spec, iris).run()
    assert len(capped.ensemble.members) <= max(1, cap // per_member)
    overruled = 0
    for it in capped.iterations:
        # every candidate ensemble is recorded with its size, those over the cap included
        for e in it.ensembles:
            assert e.params == per_member * len(e.members)
        within = [e for e in it.ensembles if e.params <= cap]
        best = min(it.ensembles, key=lambda e: e.objective)
        if it.chosen:
            chosen = next(e for e in it.ensembles if e.name == it.chosen)
            # over the cap only when nothing fits and the ensemble is still empty
            assert chosen.objective == min(e.objective for e in within or it.ensembles)
            assert within or it.iteration == 0
        overruled += best.params > cap and bool(within or it.iteration)
        # a candidate's F (what the sampler is told) is its best ensemble within the cap
        for c in it.candidates:
            mine = [e for e in it.ensembles if c.name in e.new_members]
            fits = [e for e in mine if e.params <= cap] or mine
            assert c.objective == min(e.objective for e in fits)
    # the cap changed at least one choice: an ensemble over it had the lowest F
    assert overruled
    if stops_on_the_cap:
        assert capped.stop_reason == "no_improvement"
        assert capped.iterations[-1].chosen is None
        assert "the size goal" in capped.stop_detail and f"{cap:,}" in capped.stop_detail
    else:
        assert capped.stop_reason == "max_iterations" and capped.stop_detail == ""
