from __future__ import annotations

import json

import pytest

from automl.errors import SpecError
from automl.spec import SearchSpec


def test_default_spec_round_trips_through_json() -> None:
    spec = SearchSpec()
    again = SearchSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["lambda"] == spec.lambda_


def test_a_custom_spec_round_trips_through_json() -> None:
    data = {
        "families": ["dense", "conv1d"],
        "dense": {"depth": {"low": 2, "high": 5}, "width": [8, 16], "activation": ["tanh"]},
        "optimizers": ["sgd", "adagrad"],
        "schedules": ["inverse_time"],
        "decay_power": {"low": 0.5, "high": 0.5},
        "lambda": 0.3,
        "beta": 0.02,
        "complexity_measure": "log_params",
        "mixture_weight_type": "vector",
        "ensemble_strategies": ["grow", "solo", "all"],
        "selection": "train",
        "sampler": "nsga2",
        "seed": 11,
    }
    spec = SearchSpec.from_dict(data)
    assert spec.lambda_ == 0.3 and spec.dense.depth.high == 5
    assert SearchSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optimizers": ["lion"]}, "optimizers.0: must be one of 'sgd', 'momentum'"),
        ({"dense": {"depth": {"low": 4, "high": 2}}}, "dense.depth: low (4) must not exceed high"),
        ({"lambda": -1}, "lambda: Input should be greater than or equal to 0"),
        ({"epochs": 0}, "epochs: Input should be greater than or equal to 1"),
        ({"complexity_measure": "vc"}, "complexity_measure: unknown complexity measure 'vc'"),
        ({"sampler": "grid"}, "sampler: must be one of 'tpe', 'random', 'nsga2' or 'rl'"),
        ({"learning_rat": 0.1}, "learning_rat: is not a spec field"),
        ({"batch_size": []}, "batch_size: must list at least one value"),
        ({"learning_rate": {"low": 0, "high": 1, "log": True}}, "a log-scaled range needs low > 0"),
        ({"conv1d": {"filters": [0]}}, "conv1d.filters: values must be between 1 and 1024"),
        (
            {"evaluation": {"max_nonzero_params": 0}},
            "evaluation.max_nonzero_params: Input should be greater than or equal to 1",
        ),
        (
            {"evaluation": {"goal_search_sparsity": 1}},
            "evaluation.goal_search_sparsity: Input should be less than 1",
        ),
        (
            {"evaluation": {"fine_tune_learning_rate": 0}},
            "evaluation.fine_tune_learning_rate: Input should be greater than 0",
        ),
        (
            {"evaluation": {"fine_tune_schedule": "linear"}},
            "evaluation.fine_tune_schedule: must be one of 'constant' or 'cosine'",
        ),
    ],
)
def test_a_bad_spec_names_the_field_and_what_is_allowed(data: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        SearchSpec.from_dict(data)
    assert message in str(info.value)


def test_spec_that_is_not_json_is_rejected() -> None:
    with pytest.raises(SpecError, match="not valid JSON"):
        SearchSpec.from_json("{nope")
    with pytest.raises(SpecError, match="must be a JSON object"):
        SearchSpec.from_json("[1, 2]")


def test_epochs_left_unset_follow_the_data_and_a_stored_spec_keeps_them() -> None:
    spec = SearchSpec()
    assert spec.epochs is None
    assert spec.for_data("sequence").epochs == 60
    assert spec.for_data("image").epochs == 30 and spec.for_data("table").epochs == 30
    # once resolved (or set), the number stays: a stored spec runs again as it ran
    resolved = SearchSpec.from_dict(spec.for_data("sequence").to_dict())
    assert resolved.epochs == 60 and resolved.for_data("table").epochs == 60
    assert SearchSpec(epochs=5).for_data("sequence").epochs == 5
    # the pruned members' fine-tunes the same way: 8 epochs for sequences, 3 otherwise, and
    # a number given or stored stays
    assert spec.evaluation.fine_tune_epochs is None and spec.evaluation.tune_epochs == 3
    assert spec.for_data("sequence").evaluation.fine_tune_epochs == 8
    assert spec.for_data("image").evaluation.fine_tune_epochs == 3
    assert resolved.evaluation.fine_tune_epochs == 8
    assert resolved.for_data("table").evaluation.fine_tune_epochs == 8
    given = SearchSpec.from_dict({"evaluation": {"fine_tune_epochs": 0}})
    assert given.for_data("sequence").evaluation.fine_tune_epochs == 0
    assert given.for_data("sequence").evaluation.cv_folds == given.evaluation.cv_folds
    assert given.for_data("sequence").epochs == 60
    # conv1d's default space fixes dropout at 0.3, also when other conv1d fields are given
    assert (spec.conv1d.dropout.low, spec.conv1d.dropout.high) == (0.3, 0.3)
    partial = SearchSpec.from_dict({"conv1d": {"filters": [16]}})
    assert (partial.conv1d.dropout.low, partial.conv1d.dropout.high) == (0.3, 0.3)
    assert spec.dense.dropout.low == 0.0 and spec.conv2d.dropout.low == 0.0
    # conv2d's default kernel (3) and depth (1-3) survive a partial conv2d object too; the
    # fields given replace only themselves
    assert spec.conv2d.kernel_size == [3] and spec.conv2d.depth.high == 3
    image = SearchSpec.from_dict({"conv2d": {"filters": [8]}})
    assert image.conv2d.kernel_size == [3] and image.conv2d.depth.high == 3
    assert image.conv2d.filters == [8] and image.conv2d.width == [64, 128]
    assert SearchSpec.from_dict({"conv2d": {"kernel_size": [5]}}).conv2d.kernel_size == [5]


def test_families_follow_the_data_unless_chosen() -> None:
    spec = SearchSpec()
    assert spec.resolve_families("image") == ["dense", "conv2d"]
    assert spec.resolve_families("sequence") == ["dense", "conv1d"]
    assert spec.resolve_families("table") == ["dense"]
    with pytest.raises(SpecError, match="families: 'conv2d' does not apply to table data"):
        SearchSpec(families=["conv2d"]).resolve_families("table")
