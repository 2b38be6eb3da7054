"""Data loading and preparation: built-ins, CSV/NPZ, and one documented error per bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from automl.data import load_builtin, load_csv, load_npz, prepare
from automl.errors import (
    DataFormatError,
    EmptyDataError,
    LabelColumnNotFoundError,
    NonFiniteValueError,
    NonNumericFeatureError,
    PickledDataError,
    RaggedRowsError,
    SingleClassError,
    TooFewRowsError,
    UnknownDatasetError,
)


def _csv(text: str) -> bytes:
    return text.encode()


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


GOOD_CSV = "a,b,label\n" + "".join(f"{i},{i % 3},{'cat' if i % 2 else 'dog'}\n" for i in range(40))


# ---- built-in datasets ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "rows", "features", "task", "kind"),
    [
        ("digits", 1797, 64, "classification", "image"),
        ("breast_cancer", 569, 30, "classification", "table"),
        ("wine", 178, 13, "classification", "table"),
        ("diabetes", 442, 10, "regression", "table"),
    ],
)
def test_builtin_datasets_load(name: str, rows: int, features: int, task: str, kind: str) -> None:
    ds = load_builtin(name)
    assert (ds.n_rows, ds.n_features, ds.task, ds.kind) == (rows, features, task, kind)


def test_mnist1d_is_generated_offline_with_its_own_test_split() -> None:
    ds = load_builtin("mnist1d")
    assert ds.x.shape == (4000, 40) and ds.x_test is not None and ds.x_test.shape == (1000, 40)
    assert ds.kind == "sequence" and ds.n_classes == 10
    assert ds.fingerprint() == load_builtin("mnist1d").fingerprint()  # deterministic


def test_unknown_builtin_lists_the_valid_names() -> None:
    with pytest.raises(UnknownDatasetError, match="built-in datasets are: breast_cancer, diabetes"):
        load_builtin("cifar10")


# ---- CSV -----------------------------------------------------------------------------------
def test_csv_with_string_labels_is_classification() -> None:
    ds = load_csv(_csv(GOOD_CSV), label="label")
    assert ds.task == "classification" and ds.label_names == ["cat", "dog"]
    assert ds.feature_names == ["a", "b"] and ds.x.shape == (40, 2)


def test_csv_with_continuous_labels_is_regression_and_task_can_be_declared(tmp_path: Path) -> None:
    text = "x,y\n" + "".join(f"{i},{i * 0.37 + 0.11}\n" for i in range(50))
    path = tmp_path / "reg.csv"
    path.write_text(text)
    ds = load_csv(path, label="y")
    assert ds.task == "regression" and ds.source["path"] == str(path.resolve())
    ints = "x,y\n" + "".join(f"{i},{i % 4}\n" for i in range(50))
    assert load_csv(_csv(ints), label="y").task == "classification"
    assert load_csv(_csv(ints), label="y", task="regression").task == "regression"


@pytest.mark.parametrize(
    ("text", "label", "error", "message"),
    [
        ("", "label", EmptyDataError, "the CSV file is empty"),
        ("a,label\n", "label", EmptyDataError, "has a header but no data rows"),
        ("a,b,label\n1,2,x\n3,nan,y\n", "label", NonFiniteValueError, "feature 'b' in row 2"),
        (
            "a,b,label\n1,2,x\n3,inf,y\n",
            "label",
            NonFiniteValueError,
            "row 2 is inf; 1 value.s. are NaN or infinite",
        ),
        ("a,b,label\n1,2,x\n3,4\n", "label", RaggedRowsError, "CSV line 3 has 2 values"),
        ("a,b,label\n1,2,x\n3,4,y,9\n", "label", RaggedRowsError, "CSV line 3 has 4 values"),
        ("a,b,label\n1,two,x\n", "label", NonNumericFeatureError, "feature 'b' in CSV line 2"),
        ("a,b,label\n1,2,x\n", "target", LabelColumnNotFoundError, "columns are: a, b, label"),
        ("a,label\n1,x\n2,x\n3,x\n", "label", SingleClassError, "at least two classes"),
        ("label\nx\ny\n", "label", EmptyDataError, "only the label column"),
        ("a,label\n1,x\n2,\n", "label", EmptyDataError, "the label in CSV line 3 is empty"),
    ],
)
def test_each_bad_csv_raises_its_documented_error(
    text: str, label: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        load_csv(_csv(text), label=label)


def test_csv_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        load_csv(tmp_path / "missing.csv", label="y")


# ---- NPZ -----------------------------------------------------------------------------------
def test_npz_keeps_the_per_row_shape() -> None:
    x = np.random.rand(30, 8, 8, 1).astype(np.float32)
    ds = load_npz(_npz(x=x, y=np.arange(30) % 3))
    assert ds.kind == "image" and ds.input_shape == (8, 8, 1) and ds.x.shape == (30, 64)
    seq = load_npz(_npz(x=np.random.rand(30, 12, 2), y=np.arange(30) % 2))
    assert seq.kind == "sequence" and seq.input_shape == (12, 2)


def test_npz_with_pickled_objects_is_refused() -> None:
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.zeros(2), np.zeros(3), np.zeros(1)]
    with pytest.raises(PickledDataError, match="pickles are never loaded"):
        load_npz(_npz(x=ragged, y=np.array([0, 1, 0])))


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        ({"x": np.zeros((4, 2))}, DataFormatError, "no array named 'y'"),
        (
            {"x": np.zeros((4, 2)), "y": np.zeros(5)},
            RaggedRowsError,
            "'x' has 4 rows but 'y' has 5",
        ),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, EmptyDataError, "no rows"),
        ({"x": np.array([["a", "b"]]), "y": np.zeros(1)}, NonNumericFeatureError, "dtype <U1"),
        (
            {"x": np.array([[1.0, np.nan], [1.0, 2.0]]), "y": np.array([0, 1])},
            NonFiniteValueError,
            "row 1",
        ),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4)}, SingleClassError, "at least two classes"),
    ],
)
def test_each_bad_npz_raises_its_documented_error(
    arrays: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        load_npz(_npz(**arrays))


def test_a_file_that_is_not_npz_is_refused() -> None:
    with pytest.raises(DataFormatError, match="not an NPZ archive"):
        load_npz(b"this is text")


# ---- preparation ---------------------------------------------------------------------------
def test_split_is_stratified_seeded_and_scaled_on_train_only() -> None:
    ds = load_builtin("digits")
    a = prepare(ds, seed=3)
    b = prepare(ds, seed=3)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, prepare(ds, seed=4).y_test)
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797
    # every class keeps its share in each split (±2 rows)
    total = np.bincount(ds.y) / len(ds.y)
    for split in (a.y_train, a.y_val, a.y_test):
        share = np.bincount(split, minlength=10) / len(split)
        assert np.all(np.abs(share - total) * len(split) <= 2)
    # scaling: fitted on train (mean 0 there), the same statistics applied elsewhere
    np.testing.assert_allclose(a.x_train.mean(axis=0), 0, atol=1e-4)
    assert a.x_test_raw is not None
    np.testing.assert_allclose(
        a.x_test, (a.x_test_raw - a.feature_mean) / a.feature_std, rtol=1e-5, atol=1e-5
    )
    assert a.class_weights is None  # digits is balanced
    report = a.balance_report()
    assert sum(report["test"].values()) == len(a.y_test)


def test_mnist1d_keeps_its_test_split_untouched() -> None:
    ds = load_builtin("mnist1d")
    data = prepare(ds)
    assert ds.y_test is not None
    np.testing.assert_array_equal(data.y_test, ds.y_test)
    assert len(data.y_train) + len(data.y_val) == 4000


def test_imbalanced_classes_get_class_weights() -> None:
    y = np.array([0] * 90 + [1] * 30)
    x = np.random.rand(120, 3)
    text = "a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{c}\n" for r, c in zip(x, y, strict=True))
    data = prepare(load_csv(_csv(text), label="y"))
    assert data.class_weights is not None
    assert data.class_weights[1] > 2.5 * data.class_weights[0]


def test_regression_targets_are_scaled_and_kept_for_unscaling() -> None:
    data = prepare(load_builtin("diabetes"))
    assert abs(float(data.y_train.mean())) < 1e-5
    assert data.target_std > 1 and data.y_test_raw is not None
    np.testing.assert_allclose(
        data.y_test * data.target_std + data.target_mean, data.y_test_raw, rtol=1e-4
    )


def test_a_class_too_small_for_the_split_is_reported() -> None:
    text = "a,y\n" + "".join(f"{i},{'big' if i < 50 else 'tiny'}\n" for i in range(53))
    with pytest.raises(TooFewRowsError, match="class 'tiny' has 3 row.s.; .* at least 7 rows"):
        prepare(load_csv(_csv(text), label="y"))
