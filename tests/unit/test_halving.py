"""Successive halving within an iteration (``spec.early_stopping``, ``automl.halving``) on iris
with the in-process executor: weak candidates stop at a rung, the search still succeeds, the
same seed prunes the same candidates, a resumed search tells its sampler what the first one
did, and with it off nothing is pruned."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from optuna.trial import TrialState

from automl.data import PreparedData, load_builtin, prepare
from automl.errors import SpecError
from automl.generator import CandidateGenerator
from automl.halving import PROXY_KEY, rung_epochs, stop_after
from automl.search import AdaNetSearch, ResumeState, SearchCallback, SearchResult
from automl.spec import EarlyStoppingSpec, SearchSpec
from automl.training import CandidateResult, TrainingData, train_candidate
from tests.conftest import tiny_spec_dict

EPOCHS = 3
HALVING = {"enabled": True, "min_epochs": 1, "reduction_factor": 2}  # rungs at epochs 1 and 2

Weights = dict[str, list[np.ndarray]]


@pytest.fixture(scope="module")
def iris() -> PreparedData:
    return prepare(load_builtin("iris"), seed=0)


def _spec(**overrides: Any) -> SearchSpec:
    settings: dict[str, Any] = {
        "seed": 1,
        "candidates_per_iteration": 4,
        "epochs": EPOCHS,
        "early_stopping": HALVING,
    }
    settings.update(overrides)
    return SearchSpec.from_dict(tiny_spec_dict(**settings))


class _Keep(SearchCallback):
    def __init__(self) -> None:
        self.weights: Weights = {}
        self.specs: dict[str, Any] = {}

    def on_candidate_result(self, result: CandidateResult) -> None:
        self.weights[result.spec.name] = result.weights
        self.specs[result.spec.name] = result.spec


class _Tells:
    """Records what the generator reports to and tells its trials (a spy on the real one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[Any, ...]] = []
        report, tell = CandidateGenerator.report, CandidateGenerator.tell

        def spy_report(gen: CandidateGenerator, name: str, epoch: int, value: float) -> None:
            self.log.append(("report", name, epoch, value))
            report(gen, name, epoch, value)

        def spy_tell(gen: CandidateGenerator, name: str, *args: Any, **kwargs: Any) -> None:
            # a lost candidate is logged as such; lost=False adds nothing (a replay passes it)
            self.log.append(("tell", name, *args, *(("lost",) if kwargs.get("lost") else ())))
            tell(gen, name, *args, **kwargs)

        monkeypatch.setattr(CandidateGenerator, "report", spy_report)
        monkeypatch.setattr(CandidateGenerator, "tell", spy_tell)


def _by_trial(log: list[tuple[Any, ...]], prefix: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each trial's reports and tell in order (the order across trials does not matter)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for entry in log:
        if entry[1].startswith(prefix):
            out.setdefault(entry[1], []).append(entry)
    return out


@pytest.fixture(scope="module")
def halved(iris: PreparedData) -> tuple[SearchResult, _Keep, list[tuple[Any, ...]]]:
    """A 2-iteration search with successive halving, its weights and what its trials heard."""
    keep = _Keep()
    with pytest.MonkeyPatch.context() as mp:
        tells = _Tells(mp)
        result = AdaNetSearch(_spec(), iris, callbacks=[keep]).run()
    return result, keep, tells.log


def _decisions(result: SearchResult, iteration: int) -> list[tuple[Any, ...]]:
    return [
        (c.name, c.state, c.epochs_run, c.stop_reason, c.history.get(PROXY_KEY), c.objective)
        for c in result.iterations[iteration].candidates
    ]


def test_weak_candidates_stop_at_a_rung_and_the_search_succeeds(halved: Any) -> None:
    result, _keep, _log = halved
    candidates = [c for it in result.iterations for c in it.candidates]
    pruned = [c for c in candidates if c.stop_reason == "pruned"]
    assert pruned, "successive halving stopped no candidate"
    rungs = rung_epochs(EarlyStoppingSpec(**HALVING), EPOCHS)
    for c in pruned:
        assert c.state == "stopped_early"
        assert c.epochs_run in rungs and c.epochs_run < EPOCHS
        # what it reported each epoch, up to the one it stopped at
        assert len(c.history[PROXY_KEY]) == len(c.history["loss"]) == c.epochs_run
        # a pruned subnetwork is trained: it joins the iteration's scoring
        assert c.objective is not None and np.isfinite(c.objective)
    # every iteration's first candidate leads its rungs and trains to the end
    assert all(it.candidates[0].epochs_run == EPOCHS for it in result.iterations)
    assert [c for c in candidates if c.state == "completed"]
    assert result.ensemble.members and np.isfinite(result.ensemble.fit.objective)
    assert len(result.iterations) == 2 and result.iterations[0].chosen


def test_the_sampler_is_told_pruned_with_the_last_reported_proxy(halved: Any) -> None:
    result, _keep, log = halved
    told = {entry[1]: entry for entry in log if entry[0] == "tell"}
    for c in (c for it in result.iterations for c in it.candidates):
        pruned = told[c.name][-1]
        assert pruned == (c.stop_reason == "pruned")
        reported = [e[3] for e in log if e[0] == "report" and e[1] == c.name]
        assert reported == c.history[PROXY_KEY]


def test_the_same_seed_prunes_the_same_candidates(iris: PreparedData, halved: Any) -> None:
    first, _keep, _log = halved
    again = AdaNetSearch(_spec(max_iterations=1), iris).run()
    # exactly: the proxies and decisions of iteration 0 do not depend on the run
    assert _decisions(again, 0) == _decisions(first, 0)


def test_a_resumed_search_tells_its_sampler_what_the_first_one_did(
    iris: PreparedData, halved: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, keep, log = halved
    done = first.iterations[:1]
    chosen = [m for e in done[0].ensembles if e.chosen for m in e.members]
    tells = _Tells(monkeypatch)
    resumed = AdaNetSearch(_spec(), iris).run(
        ResumeState(done, {m: keep.weights[m] for m in chosen})
    )
    # iteration 0 replayed: the same reports, then the same tells (pruned or not) as live
    assert _by_trial(tells.log, "t0_") == _by_trial(log, "t0_")
    assert [(c.name, c.hparams) for c in resumed.iterations[1].candidates] == [
        (c.name, c.hparams) for c in first.iterations[1].candidates
    ]
    assert _decisions(resumed, 1) == _decisions(first, 1)


def test_a_pruned_candidate_retrains_to_its_recorded_weights(
    iris: PreparedData, halved: Any
) -> None:
    result, keep, _log = halved
    c = next(c for it in result.iterations for c in it.candidates if c.stop_reason == "pruned")
    again = train_candidate(
        keep.specs[c.name], TrainingData.from_prepared(iris), stop_after(c.epochs_run)
    )
    assert again.state == "stopped_early" and again.epochs_run == c.epochs_run
    for a, b in zip(again.weights, keep.weights[c.name], strict=True):
        np.testing.assert_array_equal(a, b)


def test_with_it_off_nothing_is_pruned(iris: PreparedData) -> None:
    spec = _spec(max_iterations=1, candidates_per_iteration=3, early_stopping={"enabled": False})
    result = AdaNetSearch(spec, iris).run()
    for c in result.iterations[0].candidates:
        assert (c.state, c.epochs_run, c.stop_reason) == ("completed", EPOCHS, None)
        assert PROXY_KEY not in c.history


def test_it_is_off_by_default_and_refused_with_two_objectives() -> None:
    assert SearchSpec().early_stopping.enabled is False
    assert SearchSpec.from_dict({"sampler": "nsga2"}).early_stopping.enabled is False
    with pytest.raises(SpecError, match="early_stopping: successive halving ranks"):
        SearchSpec.from_dict({"sampler": "nsga2", "early_stopping": {"enabled": True}})
    with pytest.raises(SpecError, match="early_stopping.reduction_factor"):
        SearchSpec.from_dict({"early_stopping": {"enabled": True, "reduction_factor": 1}})


def test_candidates_compete_only_within_their_iteration() -> None:
    spec = _spec()
    gen = CandidateGenerator(spec, ["dense"])
    # iteration 0: a candidate with a very low proxy at the rung
    (a, *_rest) = gen.propose(0, None)
    gen.report(a.name, 1, 0.01)
    assert not gen.should_prune(a.name)
    for s in _rest:
        gen.tell(s.name, None, None)
    gen.tell(a.name, 0.01, 0.0)
    # iteration 1: its first candidate is judged among iteration 1's only, where it leads
    b, c, *rest = gen.propose(1, None)
    gen.report(b.name, 1, 0.5)
    assert not gen.should_prune(b.name)
    gen.report(c.name, 1, 0.9)
    assert gen.should_prune(c.name)
    gen.tell(c.name, None, None, True)
    trial = next(t for t in gen.study.trials if t.number == c.trial_number)
    assert trial.state == TrialState.PRUNED and trial.value == 0.9
