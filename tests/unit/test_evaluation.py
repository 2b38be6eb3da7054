"""The evaluation/pruning phase on a small real search (iris)."""

from __future__ import annotations

import numpy as np
import pytest

from automl.data import PreparedData, load_builtin, prepare
from automl.ensemble import MixtureFit
from automl.evaluation import _Bench, evaluate, fine_tune_pruned, is_kernel, magnitude_masks
from automl.executors import InProcessExecutor
from automl.search import AdaNetSearch, SearchResult
from automl.spec import EvaluationSpec, SearchSpec
from automl.training import CandidateSpec
from automl.training_store import TrainingStore
from tests.conftest import tiny_spec_dict


@pytest.fixture(scope="module")
def searched():  # type: ignore[no-untyped-def]
    spec = SearchSpec.from_dict(
        tiny_spec_dict(
            epochs=8,
            seed=3,
            dense={"batch_norm": [False], "width": [64]},
            evaluation={"cv_folds": 3, "sparsities": [0.5, 0.75], "fine_tune_epochs": 2},
        )
    )
    data = prepare(load_builtin("iris"), seed=3)
    return spec, data, AdaNetSearch(spec, data).run()


def test_magnitude_masks_zero_the_smallest_fraction_of_each_kernel() -> None:
    kernel = np.arange(1, 21, dtype=np.float32).reshape(4, 5) * np.where(
        np.arange(20).reshape(4, 5) % 2, 1, -1
    )
    bias = np.ones(5, np.float32)
    masks = magnitude_masks((kernel, bias), 0.25)
    assert masks[1] is None  # biases are not pruned
    assert masks[0] is not None and int((~masks[0]).sum()) == 5
    assert sorted(np.abs(kernel[~masks[0]]).tolist()) == [1, 2, 3, 4, 5]


def test_the_mask_holds_through_fine_tuning(searched) -> None:  # type: ignore[no-untyped-def]
    spec, data, result = searched
    member = result.ensemble.members[0]
    tuned, masks = fine_tune_pruned(member, data, 0.6, epochs=3)
    # the whole learning rate decayed by cosine: the mask holds as well, and the rate and
    # schedule reach the training (other weights than a tenth of it held)
    ev = EvaluationSpec(fine_tune_learning_rate=1.0, fine_tune_schedule="cosine")
    cosine, same_masks = fine_tune_pruned(member, data, 0.6, epochs=3, ev=ev)
    for before, after, mask, other, other_mask in zip(
        member.weights, tuned.weights, masks, cosine.weights, same_masks, strict=True
    ):
        if mask is None:
            continue
        np.testing.assert_array_equal(mask, other_mask)
        for w in (after, other):
            assert np.all(w[~mask] == 0)  # pruned stay exactly zero...
            assert not np.allclose(w[mask], before[mask])  # ...while the rest trained
            assert np.mean(w == 0) == pytest.approx(0.6, abs=1.0 / w.size)
        assert not np.allclose(after[mask], other[mask])


def test_the_phase_records_every_step_and_keeps_what_it_says(searched) -> None:  # type: ignore[no-untyped-def]
    spec, data, result = searched
    ev = evaluate(spec, data, result.ensemble)
    names = [s.step for s in ev.steps]
    assert names[0] == "baseline" and names[1] == "cross_validation"
    assert {"grow_depth", "grow_width", "prune_weights_0.5", "prune_weights_0.75"} <= set(names)
    cv = ev.cross_validation
    assert cv is not None and cv["folds"] == 3 and len(cv["per_fold"]) == 3
    assert cv["mean"] == pytest.approx(np.mean(cv["per_fold"]))
    assert 0.3 < cv["mean"] <= 1.0
    assert data.class_weights is None and ev.metric == "accuracy"  # iris is balanced
    for step in ev.steps:
        # every metric at every step and level
        assert {"accuracy", "balanced_accuracy", "macro_f1", "per_class"} <= set(
            step.validation_metrics
        )
        assert step.nonzero_params <= step.params
    for level in (0.5, 0.75):
        step = next(s for s in ev.steps if s.step == f"prune_weights_{level:g}")
        assert step.details["kernel_sparsity"] == pytest.approx(level, abs=0.01)
        assert step.nonzero_params < step.params
    # each grow step is kept exactly when it lowered F and raised the validation metric of the
    # ensemble in force before it (both branches: a discarded step must have failed one)
    previous = ev.steps[0]
    for step in ev.steps:
        if step.step.startswith("grow"):
            assert step.objective is not None and previous.objective is not None
            improved = (
                step.objective < previous.objective
                and step.validation_metrics["accuracy"] > previous.validation_metrics["accuracy"]
            )
            assert step.kept == improved, step
        if step.kept and step.step in ("baseline", "grow_depth", "grow_width"):
            previous = step
    # member pruning: every member dropped one at a time cost no validation accuracy against
    # the model before pruning, and F did not rise above it (drop_objective_tolerance: 0 by
    # default, the objective alone decides)
    f_tol = spec.evaluation.objective_tolerance
    assert spec.evaluation.drop_objective_tolerance == 0.0
    drop_tol = 0.0
    pruned = next(s for s in ev.steps if s.step == "prune_members")
    drop = next((s for s in ev.steps if s.step == "drop_members"), None)
    if pruned.kept and pruned.members == 1:
        assert drop is None  # the threshold left one member: nothing to eliminate
    else:
        assert drop is not None
        assert drop.details["reference"] == previous.validation_metrics["accuracy"]
        for r in drop.details["rounds"]:
            assert r["accuracy"] >= previous.validation_metrics["accuracy"] - 1e-12
            assert r["objective"] <= previous.objective * (1 + drop_tol) + 1e-12
        assert drop.kept == bool(drop.details["dropped"])
    # weight pruning: within tolerance of the model before any pruning, the sparsest such
    # level kept, or none (and the members stay dense) when no level was within it
    tol = spec.evaluation.accuracy_tolerance
    levels = [s for s in ev.steps if s.step.startswith("prune_weights")]
    for step in levels:
        within = (
            step.validation_metrics["accuracy"]
            >= previous.validation_metrics["accuracy"] - tol - 1e-12
        ) and step.objective <= previous.objective * (1 + f_tol) + 1e-12
        assert step.details["within_tolerance"] == within
    ok_levels = [s.details["target_sparsity"] for s in levels if s.details["within_tolerance"]]
    assert [s.details["target_sparsity"] for s in levels if s.kept] == ok_levels[-1:]
    assert ev.sparsity == (ok_levels[-1] if ok_levels else 0.0)
    # the final members carry the sparsity that was kept, counted in their weights
    kernels = [w for m in ev.members for w in m.weights if is_kernel(w)]
    zero_fraction = sum(int(np.sum(w == 0)) for w in kernels) / sum(w.size for w in kernels)
    assert zero_fraction == pytest.approx(ev.sparsity, abs=0.01)


def test_members_are_dropped_until_any_further_drop_would_cost_validation_accuracy(
    searched: tuple[SearchSpec, PreparedData, SearchResult],
) -> None:
    """Backward elimination on the real search's ensemble, judged by a bench of its own: each
    round's ensemble is what dropping that member and refitting gives, and from the ensemble
    it ends with, every further single drop loses validation accuracy or takes F past the
    tolerance (the rule stopped because it had to, not early). Run with none (F may not rise,
    the default) and with objective_tolerance's 10% (``null``): the looser one drops at least as
    many."""
    _, data, result = searched
    members = list(result.ensemble.members)
    assert len(members) >= 2, "the fixture's search must give an ensemble to prune"
    by_name = {m.name: m for m in members}
    kept: dict[float, int] = {}
    for tolerance in (0.0, None):  # 0: the default; None (null): objective_tolerance's
        spec = SearchSpec.from_dict(
            tiny_spec_dict(
                epochs=8,
                seed=3,
                dense={"batch_norm": [False], "width": [64]},
                evaluation={
                    "cv_folds": 0,
                    "grow": False,
                    "prune_members_threshold": 0.0,  # elimination alone decides
                    "drop_objective_tolerance": tolerance,
                    "sparsities": [0.5],
                    "fine_tune_epochs": 1,
                },
            )
        )
        ev = evaluate(spec, data, result.ensemble)
        steps = {s.step: s for s in ev.steps}
        judge = _Bench(spec, data)
        ref_fit = judge.fit(members)
        ref = judge.val_metrics(members, ref_fit)["accuracy"]
        effective = spec.evaluation.objective_tolerance if tolerance is None else tolerance
        limit = ref_fit.objective * (1 + effective) + 1e-12
        drop = steps["drop_members"]
        assert not steps["prune_members"].kept
        left = list(members)
        for r in drop.details["rounds"]:
            left = [m for m in left if m.name != r["dropped"]]
            f = judge.fit(left)
            assert f.objective == pytest.approx(r["objective"], rel=1e-6)
            assert judge.val_metrics(left, f)["accuracy"] == pytest.approx(r["accuracy"])
            assert r["accuracy"] >= ref - 1e-12 and r["objective"] <= limit
        assert [m.name for m in ev.members] == [m.name for m in left]
        assert drop.members == len(left) and drop.kept == bool(drop.details["rounds"])
        if len(left) > 1:
            for i in range(len(left)):
                trial = [by_name[m.name] for m in left[:i] + left[i + 1 :]]
                f = judge.fit(trial)
                assert judge.val_metrics(trial, f)["accuracy"] < ref - 1e-12 or f.objective > limit
        kept[effective] = len(left)
    assert kept[SearchSpec().evaluation.objective_tolerance] <= kept[0.0], kept


def test_the_threshold_drops_members_only_when_f_and_the_validation_metric_allow(
    searched: tuple[SearchSpec, PreparedData, SearchResult],
) -> None:
    """A threshold between the members' |w|₁ drops all but the largest; the step is kept
    exactly when the refitted rest has F no higher and validation accuracy no lower than the
    ensemble before it, and a kept step's members are the phase's members after it."""
    _, data, result = searched
    members = list(result.ensemble.members)
    assert len(members) >= 2, "the fixture's search must give an ensemble to prune"
    plain = SearchSpec.from_dict(tiny_spec_dict(epochs=8, seed=3))
    l1 = _Bench(plain, data).fit(members).l1_per_member()
    spec = SearchSpec.from_dict(
        tiny_spec_dict(
            epochs=8,
            seed=3,
            dense={"batch_norm": [False], "width": [64]},
            evaluation={
                "cv_folds": 0,
                "grow": False,
                "prune_members_threshold": max(l1),
                "drop_members": False,
                "sparsities": [0.5],
                "fine_tune_epochs": 1,
            },
        )
    )
    ev = evaluate(spec, data, result.ensemble)
    step = next(s for s in ev.steps if s.step == "prune_members")
    judge = _Bench(spec, data)
    fit = judge.fit(members)
    biggest = members[int(np.argmax(l1))]
    assert step.details["dropped"] == [m.name for m in members if m is not biggest]
    rest_fit = judge.fit([biggest])
    rest = judge.val_metrics([biggest], rest_fit)["accuracy"]
    before = judge.val_metrics(members, fit)["accuracy"]
    assert step.details["reference"] == pytest.approx(before)
    assert step.validation_metrics["accuracy"] == pytest.approx(rest)
    assert step.kept == (rest_fit.objective <= fit.objective + 1e-9 and rest >= before)
    assert [m.name for m in ev.members] == (
        [biggest.name] if step.kept else [m.name for m in members]
    )


class _Starts(InProcessExecutor):
    """The in-process executor, keeping the weights each training started from and ended
    with."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, tuple[np.ndarray, ...]] = {}
        self.ended: dict[str, tuple[np.ndarray, ...]] = {}
        self.specs: dict[str, CandidateSpec] = {}

    def run(self, specs, on_epoch=None, on_start=None, should_stop=None, init_weights=None):  # type: ignore[no-untyped-def]
        for s in specs:
            self.specs[s.name] = s
            if init_weights and s.name in init_weights:
                self.started[s.name] = tuple(init_weights[s.name])
        for res in super().run(specs, on_epoch, on_start, should_stop, init_weights):
            self.ended[res.spec.name] = tuple(res.weights)
            yield res


def test_each_sparsity_level_prunes_the_weights_the_level_before_left(searched) -> None:  # type: ignore[no-untyped-def]
    """Gradual pruning: a member's 0.75 fine-tune starts from its 0.5 fine-tune's weights
    (not the dense ones), so every weight zero at 0.5 is zero at 0.75 too."""
    spec, data, result = searched
    spec = spec.model_copy(
        update={
            "evaluation": spec.evaluation.model_copy(
                # every member kept, so every member is pruned; nothing else trained
                update={
                    "drop_members": False,
                    "prune_members_threshold": 0.0,
                    "cv_folds": 0,
                    "grow": False,
                    "fine_tune_learning_rate": 0.5,
                    "fine_tune_schedule": "cosine",
                }
            )
        }
    )
    ex = _Starts()
    evaluate(spec, data, result.ensemble, executor=ex)
    assert len(ex.started) == 2 * len(result.ensemble.members)
    # every fine-tune at the spec's learning rate and schedule
    assert {(s.tune_lr_scale, s.tune_schedule) for s in ex.specs.values()} == {(0.5, "cosine")}
    for m in result.ensemble.members:
        half, three = f"{m.name}_prune0.5", f"{m.name}_prune0.75"
        for a, b in zip(ex.started[half], m.weights, strict=True):
            np.testing.assert_array_equal(a, b)  # the first level starts dense
        for a, b in zip(ex.started[three], ex.ended[half], strict=True):
            np.testing.assert_array_equal(a, b)
        for w_half, w_three in zip(ex.ended[half], ex.ended[three], strict=True):
            if is_kernel(w_half):
                assert np.all(w_three[w_half == 0] == 0)
                assert np.mean(w_three == 0) == pytest.approx(0.75, abs=1.0 / w_three.size)


class KeepEveryGrowth(_Bench):
    """The real phase with one rule forced: every grown member is kept, so the test controls
    which grow steps are in force (the training, fitting and recording stay real)."""

    def keep_grown(
        self,
        trial_fit: MixtureFit,
        trial_metrics: dict,
        fit: MixtureFit,
        metrics: dict,
    ) -> bool:
        return True


def test_grow_rules_stack_on_the_member_as_the_kept_step_left_it(
    searched: tuple[SearchSpec, PreparedData, SearchResult],
) -> None:
    _, data, result = searched
    spec = SearchSpec.from_dict(
        tiny_spec_dict(
            epochs=2,
            seed=3,
            dense={"batch_norm": [False], "width": [64]},
            # no member pruning (it may drop a grown member that was forced in), and
            # tolerances this wide keep the sparsest level whatever it costs
            evaluation={
                "grow": True,
                "prune_members_threshold": 0.0,
                "drop_members": False,
                "sparsities": [0.5],
                "fine_tune_epochs": 1,
                "accuracy_tolerance": 1.0,
                "objective_tolerance": 100.0,
            },
        )
    )
    last = result.ensemble.members[-1]
    depth, width = int(last.hparams["depth"]), int(last.hparams["width"])
    ev = evaluate(spec, data, result.ensemble, bench=KeepEveryGrowth(spec, data))
    steps = {s.step: s for s in ev.steps}
    assert steps["grow_depth"].kept and steps["grow_width"].kept
    assert steps["grow_depth"].details["hparams"]["depth"] == depth + 1
    assert steps["grow_depth"].details["hparams"]["width"] == width
    # the width step widens the deeper member: keeping it must not undo the depth step
    assert steps["grow_width"].details["hparams"]["depth"] == depth + 1
    assert steps["grow_width"].details["hparams"]["width"] == 2 * width
    assert [m.name for m in ev.members[:-1]] == [m.name for m in result.ensemble.members[:-1]]
    final = ev.members[-1]
    assert final.name == f"{last.name}_grow_depth_grow_width"
    assert final.hparams["depth"] == depth + 1 and final.hparams["width"] == 2 * width
    # ...and the trained weights are those of that network: depth + 1 hidden kernels of twice
    # the width, then the logits
    kernels = [w for w in final.weights if is_kernel(w)]
    assert len(kernels) == depth + 2
    assert kernels[0].shape == (data.x_train.shape[1], 2 * width)
    assert kernels[-1].shape == (2 * width, data.n_outputs)
    # the kept sparsity is the one the members carry
    assert ev.sparsity == 0.5 and steps["prune_weights_0.5"].kept
    zeros = sum(int(np.sum(w == 0)) for m in ev.members for w in m.weights if is_kernel(w))
    size = sum(w.size for m in ev.members for w in m.weights if is_kernel(w))
    assert zeros / size == pytest.approx(0.5, abs=0.01)


class _Counting(InProcessExecutor):
    """The in-process executor, counting the trainings it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.trained: list[str] = []

    def run(self, specs, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.trained += [s.name for s in specs]
        yield from super().run(specs, *args, **kwargs)


def test_a_phase_run_again_with_its_store_trains_nothing_twice(searched, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The phase interrupted in its last batch, as its first fine-tune comes back, then run
    again with the same store: every training that had come back (the folds, the grow rules,
    that fine-tune) is reused, not trained again (each reported with ``reused``), and the
    phase ends exactly as an uninterrupted one does."""
    spec, data, result = searched
    store = TrainingStore(tmp_path / "trainings")

    class Interrupted(Exception):
        pass

    first = _Counting()

    def stop_at_the_first_fine_tune(_res, record) -> None:  # type: ignore[no-untyped-def]
        if record["kind"] == "fine_tune":
            raise Interrupted

    with pytest.raises(Interrupted):
        evaluate(
            spec,
            data,
            result.ensemble,
            executor=first,
            store=store,
            on_training=stop_at_the_first_fine_tune,
        )
    came_back = [n for n in first.trained if "_prune" not in n] + [
        next(n for n in first.trained if "_prune" in n)
    ]
    assert any(n.startswith("cv") for n in came_back), came_back
    assert len(list((tmp_path / "trainings").glob("*.json"))) == len(came_back)

    again = _Counting()
    reported: list[dict] = []
    ev = evaluate(
        spec,
        data,
        result.ensemble,
        executor=again,
        store=store,
        on_training=lambda _res, record: reported.append(record),
    )
    assert not set(again.trained) & set(came_back)  # nothing trained twice
    assert sorted(r["name"] for r in reported if r.get("reused")) == sorted(came_back)
    assert again.trained and all("_prune" in n for n in again.trained)  # the fine-tunes left

    fresh = evaluate(spec, data, result.ensemble)  # no store, never interrupted
    assert [s.step for s in ev.steps] == [s.step for s in fresh.steps]
    assert [s.kept for s in ev.steps] == [s.kept for s in fresh.steps]
    for a, b in zip(ev.members, fresh.members, strict=True):
        for wa, wb in zip(a.weights, b.weights, strict=True):
            np.testing.assert_array_equal(wa, wb)
    store.clear()
    assert not (tmp_path / "trainings").exists()


def test_a_stored_training_is_used_only_for_the_same_spec_and_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from automl.training import CandidateResult, CandidateSpec

    spec = CandidateSpec("m_prune0.5", 0, 0, {"family": "dense"}, 1, 2, kind="fine_tune")
    start = [np.ones((3, 2), np.float32), np.zeros(2, np.float32)]
    done = CandidateResult(
        spec, "completed", 1, 8, [np.full((3, 2), 2.0, np.float32)], np.ones((4, 2)), None
    )
    store = TrainingStore(tmp_path)
    store.put(done, start)
    got = store.get(spec, start)
    assert got is not None and got.state == "completed" and got.params == 8
    np.testing.assert_array_equal(got.weights[0], done.weights[0])
    assert got.logits_val is None and got.logits_train is not None
    assert store.get(spec, [w * 2 for w in start]) is None  # another start
    other = CandidateSpec("m_prune0.5", 0, 0, {"family": "dense"}, 1, 3, kind="fine_tune")
    assert store.get(other, start) is None  # another spec (epochs)
    timed = CandidateSpec(
        "m_prune0.5", 0, 0, {"family": "dense"}, 1, 2, kind="fine_tune", timeout_s=60.0
    )
    assert store.get(timed, start) is not None  # the timeout does not change the training
    failed = CandidateResult(other, "failed", error="boom")
    store.put(failed, start)
    assert store.get(other, start) is None  # a failure is tried again, not kept
    # a damaged file is trained again, never half read
    next(tmp_path.glob("*.npz")).write_bytes(b"not a zip")
    assert store.get(spec, start) is None


def test_the_refit_fine_tunes_the_final_members_on_training_and_validation_rows(
    searched, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """evaluation.refit: last, each final member is fine-tuned from its final (pruned) weights
    on the training and validation rows together, its zeros held; the exported members are
    the refitted ones and the mixture weights stay as the validation rows fitted them."""
    import keras

    spec, data, result = searched
    spec = spec.model_copy(
        update={
            "evaluation": spec.evaluation.model_copy(
                update={"refit": True, "cv_folds": 0, "grow": False, "sparsities": [0.5]}
            )
        }
    )
    rows: dict[str, int] = {}
    fit = keras.Model.fit

    def counting_fit(model, x=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        rows[model.name] = len(x)
        return fit(model, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counting_fit)
    ex = _Starts()
    ev = evaluate(spec, data, result.ensemble, executor=ex)
    refit = ev.steps[-1]
    assert refit.step == "refit" and refit.kept and refit.details["held_out"] is False
    assert refit.members == len(ev.members) >= 1
    level = next(s for s in ev.steps if s.step == "prune_weights_0.5")
    n_train, n_val = len(data.x_train), len(data.x_val)
    for m in ev.members:
        name = m.name
        start = ex.started[f"{name}_refit"]
        # from the weights the phase chose: the 0.5 level's when it was kept, else dense
        before = (
            ex.ended[f"{name}_prune0.5"]
            if level.kept
            else next(x.weights for x in result.ensemble.members if x.name == name)
        )
        for a, b in zip(start, before, strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(m.weights, ex.ended[f"{name}_refit"], strict=True):
            np.testing.assert_array_equal(a, b)  # the members kept are the refitted ones
        trained = False
        for w_start, w_end in zip(start, m.weights, strict=True):
            if is_kernel(w_start):
                assert np.all(w_end[w_start == 0] == 0)  # the zeros are held
                trained |= not np.allclose(w_end[w_start != 0], w_start[w_start != 0])
        assert trained
        # the pruning fine-tunes saw the training rows; the refit saw both splits
        assert rows[f"{name}_refit"] == n_train + n_val
        assert rows[f"{name}_prune0.5"] == n_train


def _goal_spec(spec: SearchSpec, **evaluation: object) -> SearchSpec:
    """The fixture's spec with only member drops and weight pruning left in the phase."""
    settings = {"drop_members": False, "prune_members_threshold": 0.0, "cv_folds": 0}
    return spec.model_copy(
        update={
            "evaluation": spec.evaluation.model_copy(
                update={**settings, "grow": False, **evaluation}
            )
        }
    )


def test_goal_sparsity_is_the_level_that_meets_the_goal() -> None:
    from automl.ensemble import Member
    from automl.evaluation import count_nonzero, goal_sparsity

    weights = (np.ones((10, 10), np.float32), np.ones(10, np.float32))
    member = Member("m", 0, {"family": "dense"}, 0, 1, 110, 1.0, weights)
    # 110 non-zero: 100 in the kernel, 10 biases (never pruned)
    assert count_nonzero([member]) == 110
    assert goal_sparsity([member], 60) == pytest.approx(0.51)  # 50 of 100 kernel weights, + margin
    assert goal_sparsity([member], 10) is None  # the biases alone hold 10
    assert goal_sparsity([member], 11) is None  # 99% of the kernel: too far to prune
    assert goal_sparsity([member], 200) == 0.0


def test_a_size_goal_is_met_at_the_lowest_f_of_a_sparser_level_or_fewer_members(searched) -> None:  # type: ignore[no-untyped-def]
    """With no loss allowed by the tolerances and a goal between the listed levels, the phase
    adds the level that just meets the goal in its place among them; then every model at hand
    (before pruning, each level) is brought to the goal by dropping members where needed, and
    the one of lowest F is kept."""
    from automl.evaluation import count_nonzero, goal_sparsity

    spec, data, result = searched
    members = list(result.ensemble.members)
    dense = count_nonzero(members)
    goal = dense // 3
    expected = goal_sparsity(members, goal)
    assert expected is not None and 0.25 < expected < 0.9
    spec = _goal_spec(
        spec,
        sparsities=[0.25, 0.9],
        max_nonzero_params=goal,
        accuracy_tolerance=0.0,
        objective_tolerance=0.0,
    )
    ev = evaluate(spec, data, result.ensemble)
    names = [s.step for s in ev.steps]
    # gradual pruning from the least sparse: the goal's level between the listed two
    levels = [n for n in names if n.startswith("prune_weights_")]
    assert levels == ["prune_weights_0.25", f"prune_weights_{expected:g}", "prune_weights_0.9"]
    assert names[-1] == "size_goal"
    goal_step = ev.steps[-1]
    details = goal_step.details
    assert details["met"] is True and details["goal"] == goal and goal_step.kept
    # the model the tolerances alone kept: dense, or the 0.25 level if it lost nothing
    quarter = next(s for s in ev.steps if s.step == "prune_weights_0.25")
    by_tolerance = quarter.nonzero_params if quarter.details["within_tolerance"] else dense
    assert details["nonzero_before"] == by_tolerance > goal
    # one option per model at hand; the goal's own level meets it without a drop
    options = details["options"]
    assert [o["sparsity"] for o in options] == [0.0, 0.25, expected, 0.9]
    assert options[2]["dropped"] == [] and options[2]["nonzero_params"] <= goal
    for o in options:  # members were dropped only while over the goal
        assert o["members"] == len(members) - len(o["dropped"])
        if o["dropped"]:
            assert o["nonzero_params"] <= goal or o["members"] == 1
    meeting = [o for o in options if o["nonzero_params"] <= goal]
    best = min(meeting, key=lambda o: (o["objective"], o["nonzero_params"]))
    assert goal_step.objective == pytest.approx(best["objective"])
    assert details["sparsity"] == best["sparsity"] == ev.sparsity
    assert details["dropped"] == best["dropped"]
    assert count_nonzero(ev.members) == goal_step.nonzero_params == best["nonzero_params"] <= goal
    assert len(ev.members) == len(members) - len(best["dropped"])
    # the kept level, if any, is the one the goal chose, whatever the tolerances said of it
    kept_levels = [s.step for s in ev.steps if s.step.startswith("prune_weights") and s.kept]
    assert kept_levels == ([f"prune_weights_{ev.sparsity:g}"] if ev.sparsity else [])


def test_a_goal_no_model_can_meet_keeps_the_smallest_and_says_it_is_missed(searched) -> None:  # type: ignore[no-untyped-def]
    from automl.evaluation import count_nonzero

    spec, data, result = searched
    ev = evaluate(_goal_spec(spec, sparsities=[0.5], max_nonzero_params=1), data, result.ensemble)
    goal_step = ev.steps[-1]
    assert goal_step.step == "size_goal" and goal_step.details["met"] is False
    assert "missed" in goal_step.change
    # every way down to one member; the fewest non-zero parameters of them kept
    options = goal_step.details["options"]
    assert [o["sparsity"] for o in options] == [0.0, 0.5]
    assert all(o["members"] == 1 for o in options)
    assert len(ev.members) == 1
    assert count_nonzero(ev.members) == goal_step.nonzero_params > 1
    smallest = min(options, key=lambda o: o["nonzero_params"])
    assert goal_step.nonzero_params == smallest["nonzero_params"]
    assert ev.sparsity == goal_step.details["sparsity"] == smallest["sparsity"]


def test_a_goal_the_dense_model_meets_keeps_the_lowest_f_not_the_sparsest(searched) -> None:  # type: ignore[no-untyped-def]
    """Tolerances wide enough to keep the sparsest level, and a goal every model meets: the
    goal weighs the model before weight pruning and each level, and keeps the one of lowest
    F; the tolerances' choice is recorded beside it. The steps before are the phase's own."""
    from automl.evaluation import count_nonzero

    spec, data, result = searched
    loose = {"accuracy_tolerance": 1.0, "objective_tolerance": 100.0, "sparsities": [0.5, 0.9]}
    plain = evaluate(_goal_spec(spec, **loose), data, result.ensemble)
    assert plain.sparsity == 0.9  # the tolerances alone keep the sparsest level
    with_goal = evaluate(_goal_spec(spec, max_nonzero_params=10**9, **loose), data, result.ensemble)
    goal_step = with_goal.steps[-1]
    assert goal_step.step == "size_goal" and goal_step.details["met"] is True
    assert [s.step for s in with_goal.steps[:-1]] == [s.step for s in plain.steps]
    details = goal_step.details
    assert details["tolerance_sparsity"] == 0.9 and details["nonzero_before"] < 10**9
    options = details["options"]
    assert [o["sparsity"] for o in options] == [0.0, 0.5, 0.9]
    assert all(o["dropped"] == [] for o in options)  # nothing was over the goal
    best = min(options, key=lambda o: (o["objective"], o["nonzero_params"]))
    # a level with 90% of each kernel zeroed after 2 epochs of fine-tuning is worse on F than
    # the model before pruning: what the tolerances kept is not what the goal keeps
    assert best["sparsity"] < 0.9
    assert with_goal.sparsity == details["sparsity"] == best["sparsity"]
    assert goal_step.kept and goal_step.objective == pytest.approx(best["objective"])
    assert count_nonzero(with_goal.members) == best["nonzero_params"]
    assert [m.name for m in with_goal.members] == [m.name for m in plain.members]
    # only the level the goal kept is marked kept among the levels
    kept_levels = [s.step for s in with_goal.steps if s.step.startswith("prune_weights") and s.kept]
    assert kept_levels == ([f"prune_weights_{best['sparsity']:g}"] if best["sparsity"] else [])


def test_a_goal_met_where_the_tolerances_chose_lowest_f_changes_nothing(searched) -> None:  # type: ignore[no-untyped-def]
    """No loss allowed: the tolerances keep the dense model, which also has the lowest F of
    the options (the level's F is higher): the goal step records it and changes nothing."""
    spec, data, result = searched
    strict = {"accuracy_tolerance": 0.0, "objective_tolerance": 0.0, "sparsities": [0.9]}
    plain = evaluate(_goal_spec(spec, **strict), data, result.ensemble)
    with_goal = evaluate(
        _goal_spec(spec, max_nonzero_params=10**9, **strict), data, result.ensemble
    )
    goal_step = with_goal.steps[-1]
    assert plain.sparsity == 0.0 == with_goal.sparsity == goal_step.details["sparsity"]
    assert goal_step.details["met"] is True and not goal_step.kept
    options = goal_step.details["options"]
    assert options[0]["objective"] < options[1]["objective"]
    assert [m.name for m in with_goal.members] == [m.name for m in plain.members]
