"""The evaluation/pruning phase on a small real search (iris)."""

from __future__ import annotations

import numpy as np
import pytest

from automl.data import load_builtin, prepare
from automl.evaluation import evaluate, fine_tune_pruned, is_kernel, magnitude_masks
from automl.search import AdaNetSearch
from automl.spec import SearchSpec
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
    for before, after, mask in zip(member.weights, tuned.weights, masks, strict=True):
        if mask is None:
            continue
        assert np.all(after[~mask] == 0)  # pruned stay exactly zero...
        assert not np.allclose(after[mask], before[mask])  # ...while the rest trained
        assert np.mean(after == 0) == pytest.approx(0.6, abs=1.0 / after.size)


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
    for step in ev.steps:
        assert "accuracy" in step.validation_metrics  # a metric at every step and level
        assert step.nonzero_params <= step.params
    for level in (0.5, 0.75):
        step = next(s for s in ev.steps if s.step == f"prune_weights_{level:g}")
        assert step.details["kernel_sparsity"] == pytest.approx(level, abs=0.01)
        assert step.nonzero_params < step.params
    # kept grow steps improved both the objective and the validation metric
    previous = ev.steps[0]
    for step in ev.steps:
        if step.step.startswith("grow") and step.kept:
            assert step.objective < previous.objective
            assert step.validation_metrics["accuracy"] > previous.validation_metrics["accuracy"]
        if step.kept and step.step != "cross_validation":
            previous = step
    # the final members carry the sparsity that was kept, counted in their weights
    kernels = [w for m in ev.members for w in m.weights if is_kernel(w)]
    zero_fraction = sum(int(np.sum(w == 0)) for w in kernels) / sum(w.size for w in kernels)
    assert zero_fraction == pytest.approx(ev.sparsity, abs=0.01)
    kept_levels = [s for s in ev.steps if s.step.startswith("prune_weights") and s.kept]
    assert len(kept_levels) <= 1
    if ev.sparsity:
        assert kept_levels[0].details["target_sparsity"] == ev.sparsity
        assert kept_levels[0].details["within_tolerance"]
