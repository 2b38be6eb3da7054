"""conv1d's random shift augmentation: what it does while training, and that it is gone at
inference, in a saved model and in an export."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from automl.errors import SpecError
from automl.export import export_savedmodel
from automl.generator import CandidateGenerator, check_configuration
from automl.spec import SearchSpec
from automl.subnetworks import create_subnetwork_builder
from automl.subnetworks.families import RandomShift
from automl.training import build_subnetwork

SHAPE = {"n_features": 12, "input_shape": (12, 1), "n_outputs": 3}


def _rows(n: int, length: int = 12) -> np.ndarray:
    # each row a distinct increasing ramp: a shifted row tells its offset
    return (np.arange(n)[:, None] * 100 + np.arange(length)[None, :]).astype("float32")[..., None]


def test_random_shift_moves_each_row_within_its_bound_and_repeats_the_edge() -> None:
    keras.utils.set_random_seed(0)
    x = _rows(400)
    out = np.asarray(RandomShift(2)(x, training=True))
    length = x.shape[1]
    offsets = []
    for row, moved in zip(x[..., 0], out[..., 0], strict=True):
        matches = [
            k
            for k in range(-2, 3)
            if np.array_equal(moved, row[np.clip(np.arange(length) + k, 0, length - 1)])
        ]
        assert len(matches) == 1, (row, moved)
        offsets.append(matches[0])
    # every offset in [-2, 2] occurs, and none beyond
    assert set(offsets) == {-2, -1, 0, 1, 2}
    # at inference (and by default) it is the identity
    np.testing.assert_array_equal(np.asarray(RandomShift(2)(x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(RandomShift(2)(x)), x)
    np.testing.assert_array_equal(np.asarray(RandomShift(0)(x, training=True)), x)


def test_random_shift_is_the_same_from_the_same_seed() -> None:
    x = _rows(64)
    keras.utils.set_random_seed(7)
    first = np.asarray(RandomShift(3)(x, training=True))
    keras.utils.set_random_seed(7)
    again = np.asarray(RandomShift(3)(x, training=True))
    np.testing.assert_array_equal(first, again)
    keras.utils.set_random_seed(8)
    assert not np.array_equal(np.asarray(RandomShift(3)(x, training=True)), first)


def _conv1d(shift: int) -> dict:
    start = create_subnetwork_builder("conv1d").starting_hparams or {}
    return {"family": "conv1d", **start, "depth": 1, "filters": 4, "width": 8, "shift": shift}


def test_a_conv1d_member_with_a_shift_saves_reloads_and_exports_without_it(
    tmp_path: Path,
) -> None:
    keras.utils.set_random_seed(0)
    model = build_subnetwork(_conv1d(2), SHAPE, "m0")
    assert any(isinstance(layer, RandomShift) for layer in model.layers)
    x = _rows(16)[..., 0] / 100.0
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    export_savedmodel(model, tmp_path / "saved")
    assert (tmp_path / "saved" / "saved_model.pb").is_file()
    # no shift, no layer: a record from before the hyperparameter builds as it did
    plain = dict(_conv1d(0))
    del plain["shift"]
    assert not any(isinstance(la, RandomShift) for la in build_subnetwork(plain, SHAPE, "m").layers)


def test_the_shift_is_searched_for_conv1d_only_and_checked_against_the_space() -> None:
    spec = SearchSpec.from_dict(
        {
            "conv1d": {"shift": [0, 3]},
            "starting_configurations": False,
            "candidates_per_iteration": 12,
        }
    )
    proposed = CandidateGenerator(spec, ["dense", "conv1d"]).propose(0, None)
    shifts = [c.hparams.get("shift") for c in proposed if c.hparams["family"] == "conv1d"]
    assert set(shifts) == {0, 3}
    assert all("shift" not in c.hparams for c in proposed if c.hparams["family"] == "dense")
    assert check_configuration(spec, ["conv1d"], {"family": "conv1d", "shift": 3}) is None
    why = check_configuration(spec, ["conv1d"], {"family": "conv1d", "shift": 2})
    assert why == "shift=2 is not one of the spec's choices [0, 3]"
    why = check_configuration(spec, ["dense"], {"family": "dense", "shift": 0})
    assert why == "'shift' is not a hyperparameter of the dense family"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([-1], "values must be between 0 and 1024 steps"),
        ([2000], "values must be between 0 and 1024 steps"),
        ([], "must list at least one value"),
        ([1.5], "should be a valid integer"),
    ],
)
def test_a_shift_outside_its_bounds_is_refused_naming_the_field(
    bad: list[float], message: str
) -> None:
    with pytest.raises(SpecError) as info:
        SearchSpec.from_dict({"conv1d": {"shift": bad}})
    assert "conv1d.shift" in str(info.value) and message in str(info.value)
