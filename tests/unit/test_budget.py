"""The whole-job time budget: planning iterations and the evaluation phase to fit it."""

from __future__ import annotations

import time

import pytest

from automl.budget import (
    Timing,
    estimate_evaluation,
    export_reserve,
    iteration_candidates,
    may_start_iteration,
    plan_evaluation,
)
from automl.data import load_builtin, prepare
from automl.runner import finish
from automl.search import AdaNetSearch, ResumeState, SearchCallback
from automl.spec import SearchSpec
from tests.conftest import tiny_spec_dict

FULL = {"cv_folds": 5, "sparsities": [0.25, 0.5, 0.75, 0.9], "fine_tune_epochs": 2}


def _spec(**evaluation: object) -> SearchSpec:
    return SearchSpec.from_dict(tiny_spec_dict(epochs=10, evaluation={**FULL, **evaluation}))


def test_without_a_budget_the_plan_is_the_spec() -> None:
    plan = plan_evaluation(_spec(), Timing(2.0, 10.0, 2), 3, None)
    assert (plan.cv_folds, plan.grow, plan.sparsities, plan.cuts) == (
        5,
        True,
        [0.25, 0.5, 0.75, 0.9],
        [],
    )


def test_the_estimate_counts_what_each_member_took_to_train() -> None:
    # the members a search keeps may train far slower than its mean candidate (bigger, smaller
    # batches): a phase planned on the mean ran 100 s past a 600 s budget on MNIST-1D
    mean_only = Timing(candidate_s=4.0, iteration_s=10.0, parallel=2)
    slow = Timing(candidate_s=4.0, iteration_s=10.0, parallel=2, member_s=[12.0, 12.0, 4.0])
    assert estimate_evaluation(mean_only, 3, 4, True, 2, 10, 2) == pytest.approx(
        # 12 fold trainings + 2 grown on 2 workers: 7 rounds; the width rule again; 2 levels of
        # 3 fine-tunes (4 s x 4/10) on 2 workers: 2 rounds each
        7 * 4.0 + 4.0 + 2 * 2 * 1.6
    )
    # 4 folds of 12 + 12 + 4 s and two 4 s grown members, longest first on 2 workers: 60 s;
    # the width rule 4 s; per level the 12 s members' fine-tunes (4.8 s) side by side, then
    # the 4 s one's (1.6 s)
    assert estimate_evaluation(slow, 3, 4, True, 2, 10, 2) == pytest.approx(60.0 + 4.0 + 2 * 6.4)
    # a member an iteration is about to add costs the mean candidate's time
    assert slow.members(4) == [12.0, 12.0, 4.0, 4.0] and slow.members(2) == [12.0, 12.0]
    # so the plan cuts where the mean alone would not
    spec = _spec()
    left = estimate_evaluation(mean_only, 3, 5, True, 4, 10, 2) + 1.0
    assert plan_evaluation(spec, mean_only, 3, left).cuts == []
    assert plan_evaluation(spec, slow, 3, left).cuts != []
    assert plan_evaluation(spec, slow, 3, left).estimate_s <= left


def test_time_to_spare_lengthens_the_fine_tunes_within_four_fifths_of_it() -> None:
    spec, timing = _spec(), Timing(candidate_s=4.0, iteration_s=10.0, parallel=2)
    full = estimate_evaluation(timing, 3, 5, True, 4, 10, 2)
    # twice the time the spec's phase needs: longer fine-tunes, recorded, within 80% of it
    plan = plan_evaluation(spec, timing, 3, 2 * full)
    assert plan.cuts == [] and plan.fine_tune_epochs is not None
    assert 2 < plan.fine_tune_epochs <= 10  # never past a candidate's epochs
    assert plan.estimate_s <= 0.8 * 2 * full
    one_more = estimate_evaluation(timing, 3, 5, True, 4, 10, plan.fine_tune_epochs + 1)
    assert plan.fine_tune_epochs == 10 or one_more > 0.8 * 2 * full  # as long as it fits
    assert (
        len(plan.extended) == 1
        and f"{plan.fine_tune_epochs} epochs instead of 2" in (plan.extended[0])
    )
    # plenty of time: a candidate's epochs at most
    assert plan_evaluation(spec, timing, 3, 100 * full).fine_tune_epochs == 10
    # the spec's epochs: when nothing is spare, when turned off, and without a budget
    assert plan_evaluation(spec, timing, 3, full).fine_tune_epochs == 2
    assert plan_evaluation(spec, timing, 3, 0.5 * full).fine_tune_epochs == 2
    # after a budget-filling search, cross-validation cut (it only estimates the model) does
    # not stop longer fine-tunes; a model step cut does
    filling = SearchSpec.from_dict(
        tiny_spec_dict(epochs=10, max_iterations=None, time_budget_s=600, evaluation=FULL)
    )
    short = estimate_evaluation(timing, 3, 2, True, 4, 10, 2) - 0.1  # even 2 folds too many
    cut_cv = plan_evaluation(filling, timing, 3, short)
    assert cut_cv.cv_folds == 0 and cut_cv.cuts and cut_cv.fine_tune_epochs > 2
    assert cut_cv.estimate_s <= 0.8 * short
    # nor do the grow rules cut (the search keeps no time for them); a sparsity level cut does
    no_grow = estimate_evaluation(timing, 3, 0, True, 4, 10, 2) - 0.1
    cut_grow = plan_evaluation(filling, timing, 3, no_grow)
    assert not cut_grow.grow and cut_grow.sparsities == FULL["sparsities"]
    assert cut_grow.fine_tune_epochs > 2 and cut_grow.estimate_s <= 0.8 * no_grow
    cut_level = plan_evaluation(
        filling, timing, 3, estimate_evaluation(timing, 3, 0, False, 4, 10, 2) - 0.1
    )
    assert len(cut_level.sparsities) < 4 and cut_level.fine_tune_epochs == 2
    # outside a budget-filling search a grow cut still stops it
    assert plan_evaluation(spec, timing, 3, no_grow).fine_tune_epochs == 2
    assert plan_evaluation(spec, timing, 3, short).fine_tune_epochs == 2  # not filling
    off = _spec(extend_fine_tune=False)
    assert plan_evaluation(off, timing, 3, 100 * full).fine_tune_epochs == 2
    assert plan_evaluation(spec, timing, 3, None).fine_tune_epochs == 2


def test_a_tight_budget_cuts_sparsities_then_folds_then_grow_then_cv_each_recorded() -> None:
    spec, timing = _spec(), Timing(candidate_s=4.0, iteration_s=10.0, parallel=2)
    full = estimate_evaluation(timing, 3, 5, True, 4, 10, 2)
    plans = [plan_evaluation(spec, timing, 3, full * share) for share in (1.0, 0.8, 0.5, 0.2)]
    assert plans[0].cuts == [] and plans[0].estimate_s == pytest.approx(full)
    for plan in plans[1:]:
        assert plan.cuts, plan  # something had to go, and each cut says what and why
        assert plan.estimate_s <= plan.time_left_s or "may not fit" in plan.cuts[-1]
        assert all("s left" in c or "may not fit" in c for c in plan.cuts)
    # the cuts go in order: extreme sparsities first, then folds, then grow, then CV itself
    order = ("sparsity", "folds instead", "grow rules", "cross-validation skipped", "only")

    def rank(cut: str) -> int:
        return next(i for i, word in enumerate(order) if word in cut)

    for plan in plans[1:]:
        ranks = [rank(c) for c in plan.cuts if "may not fit" not in c]
        assert ranks == sorted(ranks), plan.cuts
    assert plans[1].sparsities == [0.5, 0.75]  # the extremes went first
    assert plans[-1].cv_folds <= plans[2].cv_folds <= plans[1].cv_folds <= 5
    smallest = plan_evaluation(spec, timing, 3, 0.0)
    assert (smallest.cv_folds, smallest.grow, len(smallest.sparsities)) == (0, False, 1)
    assert "may not fit" in smallest.cuts[-1]


def test_an_iteration_starts_only_if_the_smallest_phase_and_the_export_still_fit() -> None:
    spec, timing = _spec(), Timing(candidate_s=4.0, iteration_s=20.0, parallel=1)
    assert may_start_iteration(100.0, 5.0, None, 1, spec)[0]  # nothing measured yet: it starts
    assert may_start_iteration(300.0, 50.0, timing, 2, spec)[0]
    tail = export_reserve(100.0, 2) + estimate_evaluation(timing, 2, 0, False, 1, 10, 2)
    ok, why = may_start_iteration(100.0, 100.0 - 20.0 - tail + 1.0, timing, 2, spec)
    assert not ok and "would not fit" in why
    assert may_start_iteration(100.0, 100.0 - 20.0 - tail - 1.0, timing, 2, spec)[0]


def test_an_iteration_that_does_not_fit_whole_trains_the_rounds_that_do() -> None:
    """4 candidates on 2 workers are 2 rounds of trainings: where the whole iteration does not
    fit but one round does, 2 candidates train (and why is said); where not even one round
    fits, none (the search stops with may_start_iteration's reason)."""
    spec = _spec()
    timing = Timing(candidate_s=4.0, iteration_s=20.0, parallel=2)
    tail = export_reserve(100.0, 2) + estimate_evaluation(timing, 2, 0, False, 1, 10, 2)
    assert iteration_candidates(100.0, 5.0, None, 1, spec, 4) == (4, "")  # nothing measured
    assert iteration_candidates(100.0, 100.0 - 20.0 - tail - 1.0, timing, 2, spec, 4) == (4, "")
    count, why = iteration_candidates(100.0, 100.0 - 10.0 - tail - 1.0, timing, 2, spec, 4)
    assert count == 2 and why.startswith("2 of 4 candidates: a whole iteration (~20 s)")
    assert "1 round(s) of 2 training(s) at once (~10 s)" in why
    count, why = iteration_candidates(100.0, 100.0 - 10.0 - tail + 1.0, timing, 2, spec, 4)
    assert count == 0 and "would not fit" in why
    # 6 candidates on 4 workers: 2 rounds; the one round that fits trains 4 of them
    wide = Timing(candidate_s=4.0, iteration_s=20.0, parallel=4)
    tail = export_reserve(100.0, 2) + estimate_evaluation(wide, 2, 0, False, 1, 10, 2)
    assert iteration_candidates(100.0, 100.0 - 10.0 - tail - 1.0, wide, 2, spec, 6)[0] == 4
    # one worker: each candidate is a round
    one = Timing(candidate_s=4.0, iteration_s=20.0, parallel=1)
    tail = export_reserve(100.0, 2) + estimate_evaluation(one, 2, 0, False, 1, 10, 2)
    assert iteration_candidates(100.0, 100.0 - 15.0 - tail - 0.5, one, 2, spec, 4)[0] == 3


class _Clock:
    """The search's clock, advanced by the test: 10 s per candidate trained (the trainings
    themselves take a second or so), so the budget's decisions do not depend on the
    machine's speed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


def test_a_shortened_iteration_is_recorded_and_replayed_on_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Iris, 2 candidates per iteration on one worker, a 60 s budget on a clock that counts 10 s
    per training: after iteration 0 (20 s) a whole iteration and the phase would not fit, one
    candidate does. Iteration 1 trains one, says why (event hook, result, report), and a
    search resumed from both iterations replays that one candidate rather than refusing the
    record (it would propose two: 'cannot resume')."""
    import automl.search as search_module

    clock = _Clock()
    monkeypatch.setattr(search_module, "time", clock)

    class Tick(SearchCallback):
        def __init__(self) -> None:
            self.notes: list[str] = []
            self.weights: dict[str, list] = {}

        def on_candidate_result(self, result) -> None:  # type: ignore[no-untyped-def]
            clock.now += 10.0
            self.weights[result.spec.name] = result.weights

        def on_note(self, message: str) -> None:
            self.notes.append(message)

    spec = SearchSpec.from_dict(
        tiny_spec_dict(max_iterations=2, time_budget_s=60.0, force_grow=True, seed=4)
    )
    data = prepare(load_builtin("iris"), seed=4)
    tick = Tick()
    result = AdaNetSearch(spec, data, callbacks=[tick]).run()
    assert [len(it.candidates) for it in result.iterations] == [2, 1]
    assert tick.notes == result.iteration_notes
    assert len(tick.notes) == 1 and tick.notes[0].startswith("iteration 1 trains 1 of 2 candidates")
    assert result.iterations[1].candidates[0].origin == "paper_same_depth"  # the enqueued first
    outcome = finish(result)
    assert outcome.report["budget"]["shortened_iterations"] == tick.notes

    members = next(e.members for e in result.iterations[1].ensembles if e.chosen)
    resumed = AdaNetSearch(spec, data).run(
        resume=ResumeState(result.iterations, {m: tick.weights[m] for m in members})
    )
    assert [len(it.candidates) for it in resumed.iterations] == [2, 1]
    assert resumed.iteration_notes == ["iteration 1 trained 1 of 2 candidates (the time budget)"]
    assert [m.name for m in resumed.ensemble.members] == members


def test_a_budget_shorter_than_the_job_still_ends_with_a_model_and_says_what_it_cut() -> None:
    """One second for the whole job: the first iteration runs (a job must have a model), no
    second one starts, the evaluation phase is cut to its least and its fine-tunes skipped —
    each recorded — and the model is built and reported."""
    spec = SearchSpec.from_dict(
        tiny_spec_dict(epochs=3, max_iterations=5, time_budget_s=1.0, seed=2, evaluation=FULL)
    )
    data = prepare(load_builtin("iris"), seed=2)
    result = AdaNetSearch(spec, data).run()
    assert result.stop_reason == "time_budget" and len(result.iterations) == 1
    assert result.stop_detail and result.budget_left_s is not None and result.budget_left_s < 0
    outcome = finish(result)
    steps = {s["step"]: s for s in outcome.report["evaluation"]["steps"]}
    plan = steps["time_plan"]
    assert "to fit the time budget" in plan["change"] and plan["details"]["cuts"]
    assert plan["details"]["cv_folds"] == 0 and plan["details"]["grow"] is False
    assert "cross_validation" not in steps and "grow_depth" not in steps
    assert not any(name.startswith("prune_weights_") for name in steps)  # no time left to try
    assert steps["prune_weights"]["kept"] is False
    assert outcome.report["budget"]["time_budget_s"] == 1.0
    assert outcome.report["test_metrics"]["accuracy"] > 0  # a model all the same


def test_without_an_iteration_count_the_budget_decides_how_many_iterations_run() -> None:
    plain = SearchSpec()
    assert plain.max_iterations is None and plain.iteration_limit == 5 and not plain.fills_budget
    budgeted = SearchSpec(time_budget_s=600)
    assert budgeted.fills_budget and budgeted.iteration_limit == 100
    capped = SearchSpec(time_budget_s=600, max_iterations=3)
    assert not capped.fills_budget and capped.iteration_limit == 3
    # the stored spec says so, and reads back the same
    assert SearchSpec.from_dict(budgeted.to_dict()).fills_budget


def test_a_budget_filling_search_keeps_time_for_every_sparsity_but_not_the_grow_rules() -> None:
    """With the budget deciding, the search stops earlier than with a count: after its last
    iteration the phase's steps that shrink the model (all sparsity levels) still fit, not only
    its least. The grow rules, which retrain a member at full length, get what is left."""
    timing = Timing(candidate_s=4.0, iteration_s=20.0, parallel=1)
    counted = _spec()
    filling = SearchSpec.from_dict(
        {**counted.to_dict(), "max_iterations": None, "time_budget_s": 300}
    )
    assert filling.fills_budget
    essential = export_reserve(300.0, 2) + estimate_evaluation(timing, 2, 0, False, 4, 10, 2)
    smallest = export_reserve(300.0, 2) + estimate_evaluation(timing, 2, 0, False, 1, 10, 2)
    with_grow = export_reserve(300.0, 2) + estimate_evaluation(timing, 2, 0, True, 4, 10, 2)
    assert with_grow > essential > smallest
    # the time the grow rules would take goes to the search instead
    assert may_start_iteration(
        300.0, 300.0 - 20.0 - (with_grow + essential) / 2, timing, 2, filling
    )[0]
    between = 300.0 - 20.0 - (essential + smallest) / 2
    assert may_start_iteration(300.0, between, timing, 2, counted)[0]
    ok, why = may_start_iteration(300.0, between, timing, 2, filling)
    assert not ok and "would not fit" in why
    assert may_start_iteration(300.0, 300.0 - 20.0 - essential - 1.0, timing, 2, filling)[0]


def test_a_budgeted_search_without_a_count_runs_past_the_default_five_iterations() -> None:
    """Iris with one tiny candidate per iteration and ``force_grow`` (so F's plateau does not end
    it): the budget, not the default count of 5, ends the search, and it says so."""
    spec = SearchSpec.from_dict(
        tiny_spec_dict(
            max_iterations=None,
            candidates_per_iteration=1,
            epochs=1,
            force_grow=True,
            # the export keeps 15 s + 3% + 1 s per member: at 40 s, five iterations of ~3 s
            # (the first one's TensorFlow start included) left no room for a sixth on a slow
            # machine; at 60 s a machine 3.6x slower (iterations of ~7-9 s, the phase and
            # export estimated at ~23 s) ran exactly five; 90 s leaves ~60 s to search there
            time_budget_s=90.0,
            seed=3,
            evaluation={"enabled": False},
        )
    )
    data = prepare(load_builtin("iris"), seed=3)
    result = AdaNetSearch(spec, data).run()
    assert len(result.iterations) > 5, len(result.iterations)
    assert result.stop_reason == "time_budget" and "would not fit" in result.stop_detail


def test_after_a_budget_filling_search_cross_validation_is_cut_before_the_model_steps() -> None:
    timing = Timing(candidate_s=4.0, iteration_s=10.0, parallel=2)
    filling = SearchSpec.from_dict(
        {**_spec().to_dict(), "max_iterations": None, "time_budget_s": 300}
    )
    with_grow = estimate_evaluation(timing, 3, 0, True, 4, 10, 2)
    plan = plan_evaluation(filling, timing, 3, with_grow + 1.0)
    assert (plan.cv_folds, plan.grow, plan.sparsities) == (0, True, [0.25, 0.5, 0.75, 0.9])
    assert plan.cuts[-1].startswith("cross-validation skipped")
    # the same time after a counted search cuts sparsity levels first
    counted = plan_evaluation(_spec(), timing, 3, with_grow + 1.0)
    assert counted.cuts[0].startswith("sparsity")
    # with less time, the grow rules go next, before any sparsity level
    essential = estimate_evaluation(timing, 3, 0, False, 4, 10, 2)
    short = plan_evaluation(filling, timing, 3, essential + 1.0)
    assert (short.cv_folds, short.grow, short.sparsities) == (0, False, [0.25, 0.5, 0.75, 0.9])
    assert short.cuts[-1].startswith("grow rules skipped")


def test_with_a_deadline_the_sparsity_levels_train_one_by_one_and_stop_when_it_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plan whose estimate was short: the phase tries the least sparse level, finds the
    deadline passed, and records the sparser levels as skipped instead of overrunning."""
    from automl.budget import EvaluationPlan
    from automl.evaluation import evaluate

    spec = SearchSpec.from_dict(
        tiny_spec_dict(epochs=3, seed=4, evaluation={**FULL, "cv_folds": 0, "grow": False})
    )
    data = prepare(load_builtin("iris"), seed=4)
    result = AdaNetSearch(spec, data).run()
    levels = [0.25, 0.5, 0.75]
    tight = EvaluationPlan(0, False, levels, estimate_s=0.0, time_left_s=1e-9)
    ev = evaluate(spec, data, result.ensemble, plan=tight)
    steps = {s.step: s for s in ev.steps}
    # the phase started already past its deadline: nothing was fine-tuned, each level says so
    assert "skipped" in steps["prune_weights"].change and ev.sparsity == 0.0
    roomy = EvaluationPlan(0, False, levels, estimate_s=0.0, time_left_s=3600.0)
    ev = evaluate(spec, data, result.ensemble, plan=roomy)
    tried = [s for s in ev.steps if s.step.startswith("prune_weights_")]
    assert [s.step for s in tried] == [f"prune_weights_{v:g}" for v in levels]
    assert all("skipped" not in s.change for s in tried)

    # the hour passes while the first level fine-tunes (the phase's clock jumps): that level is
    # judged, the sparser ones are skipped, each recorded
    import automl.evaluation as evaluation_module

    class Clock:
        offset = 0.0

        def perf_counter(self) -> float:
            return time.perf_counter() + self.offset

    clock = Clock()

    def hour_passes(_res: object, record: dict) -> None:
        if record["kind"] == "fine_tune":
            clock.offset = 7200.0

    monkeypatch.setattr(evaluation_module, "time", clock)
    ev = evaluate(spec, data, result.ensemble, plan=roomy, on_training=hour_passes)
    tried_now = {s.step: s for s in ev.steps if s.step.startswith("prune_weights_")}
    assert list(tried_now) == [f"prune_weights_{v:g}" for v in levels]
    assert "skipped" not in tried_now["prune_weights_0.25"].change
    assert all("skipped" in tried_now[f"prune_weights_{v:g}"].change for v in (0.5, 0.75))


def test_a_size_goal_counts_one_level_more_in_the_plan() -> None:
    timing = Timing(candidate_s=4.0, iteration_s=10.0, parallel=2)
    plain = _spec(extend_fine_tune=False)
    with_goal = _spec(extend_fine_tune=False, max_nonzero_params=1000)
    # 5 levels' fine-tunes where the spec lists 4: the goal's level may be added to them
    assert plan_evaluation(with_goal, timing, 3, 1e9).estimate_s == pytest.approx(
        estimate_evaluation(timing, 3, 5, True, 5, 10, 2)
    )
    assert plan_evaluation(plain, timing, 3, 1e9).estimate_s == pytest.approx(
        estimate_evaluation(timing, 3, 5, True, 4, 10, 2)
    )
    # so a budget the spec's phase just fits cuts something with the goal
    left = estimate_evaluation(timing, 3, 5, True, 4, 10, 2) + 0.5
    assert plan_evaluation(plain, timing, 3, left).cuts == []
    assert plan_evaluation(with_goal, timing, 3, left).cuts != []
