"""Data loading and preparation: built-ins, CSV/NPZ, and one documented error per bad input."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from automl.data import explain_task, load_builtin, load_csv, load_npz, prepare
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
        # missing cells are allowed in features (tests/unit/test_columns.py), but not everywhere
        (
            "a,b,label\n1,,x\n3,nan,y\n4,NA,x\n",
            "label",
            EmptyDataError,
            "column 'b' is entirely empty .all 3 values are missing.; remove it, or ignore it",
        ),
        (
            "a,b,label\n1,2,x\n3,inf,y\n",
            "label",
            NonFiniteValueError,
            "feature 'b' in CSV line 3 is 'inf', not a finite number",
        ),
        ("a,b,label\n1,2,x\n3,4\n", "label", RaggedRowsError, "CSV line 3 has 2 values"),
        ("a,b,label\n1,2,x\n3,4,y,9\n", "label", RaggedRowsError, "CSV line 3 has 4 values"),
        (
            "a,b,label\n1,two,x\n",
            "label",
            EmptyDataError,
            "no usable feature column .'a': constant: every value is '1'; 'b': constant",
        ),
        ("a,b,label\n1,2,x\n", "target", LabelColumnNotFoundError, "columns are: a, b, label"),
        ("a,label\n1,x\n2,x\n3,x\n", "label", SingleClassError, "at least two classes"),
        ("label\nx\ny\n", "label", EmptyDataError, "only the label column"),
        ("a,label\n1,x\n2,\n", "label", EmptyDataError, "the label in CSV line 3 is empty"),
        (
            "a,label\n1,x\n2,NA\n",
            "label",
            EmptyDataError,
            "the label in CSV line 3 is 'NA', a missing value; every row needs a label",
        ),
    ],
)
def test_each_bad_csv_raises_its_documented_error(
    text: str, label: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        load_csv(_csv(text), label=label)


def test_csv_with_old_mac_cr_line_endings_reads_like_any_other() -> None:
    lf = load_csv(_csv(GOOD_CSV), label="label")
    for newline in ("\r", "\r\n"):
        ds = load_csv(_csv(GOOD_CSV.replace("\n", newline)), label="label")
        assert ds.x.shape == (40, 2) and ds.label_names == ["cat", "dog"]
        assert ds.fingerprint() == lf.fingerprint()


def test_a_quoted_label_may_hold_a_line_break() -> None:
    text = 'a,label\r\n1,"two\r\nlines"\r\n2,one\r\n3,"two\r\nlines"\r\n'
    assert load_csv(_csv(text), label="label").label_names == ["one", "two\r\nlines"]


def test_a_field_over_the_csv_readers_limit_is_a_data_error_not_a_crash() -> None:
    text = "a,label\n1,x\n2," + "y" * 140_000 + "\n"
    with pytest.raises(DataFormatError, match="CSV line 3 has a value longer than 131,072"):
        load_csv(_csv(text), label="label")
    # the usual cause: a quote that never closes swallows the rest of the file
    text = 'a,label\n1,"x\n' + "".join(f"{i},y\n" for i in range(20_000))
    with pytest.raises(DataFormatError, match="unclosed quote"):
        load_csv(_csv(text), label="label")


@pytest.mark.parametrize(
    ("header", "label", "message"),
    [
        # the second 'y' would have become a feature: the label leaking into the inputs
        ("a,y,y", "y", r"'y' \(columns 2 and 3\)"),
        ("a,b,a,y,a", "y", r"'a' \(columns 1, 3 and 5\)"),
        ("y, a,a ,y", "y", r"'y' \(columns 1 and 4\), 'a' \(columns 2 and 3\)"),
    ],
)
def test_duplicate_column_names_are_refused_with_their_names(
    header: str, label: str, message: str
) -> None:
    width = len(header.split(","))
    text = header + "\n" + "".join(",".join([str(i % 2)] * width) + "\n" for i in range(30))
    with pytest.raises(
        DataFormatError, match="the CSV header has duplicate column names: " + message
    ):
        load_csv(_csv(text), label=label)


def test_csv_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        load_csv(tmp_path / "missing.csv", label="y")


# ---- which task: classification or regression -----------------------------------------------
@pytest.mark.parametrize(
    ("y", "task", "rule"),
    [
        (np.array(["a", "b"] * 10), "classification", "text labels: classification"),
        (np.array([True, False] * 10), "classification", "true/false labels: classification"),
        (np.linspace(0, 1, 50), "regression", "non-integer values: regression"),
        (np.array([0.0, 1.0, np.nan] * 10), "regression", "NaN or infinite values: regression"),
        (np.arange(1797) % 12, "classification", "12 integer classes in 1797 rows: classification"),
        (np.arange(40) % 2, "classification", "2 integer classes in 40 rows: classification"),
        # two values are a binary label however few the rows
        (np.array([3, 7, 3]), "classification", "2 integer classes in 3 rows: classification"),
        # ages 20..69 in 2000 rows: integers, but a quantity, not 50 classes
        (
            20 + np.arange(2000) % 50,
            "regression",
            "50 distinct integers in 2000 rows: regression (more than 20 values)",
        ),
        (
            np.arange(150) % 16,
            "regression",
            "16 distinct integers in 150 rows: regression (fewer than 10 rows per value)",
        ),
        (
            np.arange(200.0) % 20,
            "classification",
            "20 integer classes in 200 rows: classification",
        ),
    ],
)
def test_the_task_rule_is_conservative_and_says_which_rule_decided(
    y: np.ndarray, task: str, rule: str
) -> None:
    assert explain_task(y) == (task, rule)


def test_sklearn_targets_are_detected_as_their_documented_task() -> None:
    from sklearn import datasets as skd

    diabetes = skd.load_diabetes().target  # 214 distinct integer values in 442 rows
    assert explain_task(diabetes) == (
        "regression",
        "214 distinct integers in 442 rows: regression (more than 20 values)",
    )
    digits = skd.load_digits().target
    assert explain_task(digits) == (
        "classification",
        "10 integer classes in 1797 rows: classification",
    )
    for load in (skd.load_wine, skd.load_iris, skd.load_breast_cancer):
        assert explain_task(load().target)[0] == "classification"


def test_the_dataset_records_the_rule_and_a_given_task_is_never_overridden() -> None:
    ages = "x,age\n" + "".join(f"{i},{20 + i % 50}\n" for i in range(2000))
    ds = load_csv(_csv(ages), label="age")
    assert (ds.task, ds.task_rule) == (
        "regression",
        "50 distinct integers in 2000 rows: regression (more than 20 values)",
    )
    given = load_csv(_csv(ages), label="age", task="classification")
    assert (given.task, given.task_rule, given.n_classes) == (
        "classification",
        "given by the user",
        50,
    )
    floats = "x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(60))
    assert load_csv(_csv(floats), label="y", task="regression").task_rule == "given by the user"
    npz = load_npz(_npz(x=np.random.rand(40, 3), y=np.arange(40) % 2))
    assert npz.task_rule == "2 integer classes in 40 rows: classification"
    assert load_builtin("diabetes").task_rule == "built-in dataset: regression"
    assert load_builtin("wine").task_rule == "built-in dataset: classification"
    assert prepare(ds).summary()["task_rule"] == ds.task_rule


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


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def write_npz_bomb(path: Path, mib: int) -> None:
    """An NPZ whose ``x.npy`` inflates to ``mib`` MiB of float32 zeros from ~1 KB per MiB.

    After a full flush the deflate compressor starts afresh, so one compressed MiB of zeros can
    be repeated; the archive is written by hand (zipfile would have to compress every byte).
    """
    head = _npy_header((mib * 256, 1024))
    zero = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH)
    stream = first + block * mib + co.flush()
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(zero, crc)
    name, size = b"x.npy", len(head) + (mib << 20)
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), size, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(stream), size, len(name), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    cd_offset = len(local) + len(name) + len(stream)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    path.write_bytes(local + name + stream + central + name + end)
    with zipfile.ZipFile(path, "a") as zf:  # a plain y next to the bomb
        buf = io.BytesIO()
        np.save(buf, (np.arange(mib * 256) % 2).astype(np.uint8))
        zf.writestr("y.npy", buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)


_PEAK_RSS = """
import resource, sys
from automl.data import load_npz
from automl.errors import DataError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_npz(sys.argv[1])
except DataError as exc:
    print("refused:", exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("peak growth MiB:", (after - before) // 1024)
"""


def test_an_npz_zip_bomb_is_refused_before_it_fills_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.npz"
    write_npz_bomb(bomb, mib=1100)  # x.npy: 1.15 GB once inflated
    assert bomb.stat().st_size < 2 << 20
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo("x.npy").file_size > 1100 << 20
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(bomb)],
        capture_output=True,
        text=True,
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "refused: array 'x' takes 1.15 GB once decompressed" in proc.stdout, proc.stdout
    assert "at most 1.00 GB" in proc.stdout
    growth = int(proc.stdout.rsplit("peak growth MiB:", 1)[1])
    assert growth < 64, proc.stdout  # the member was never inflated


def test_npz_limit_is_a_parameter_and_counts_x_and_y_together() -> None:
    raw = _npz(x=np.zeros((1000, 100), dtype=np.float32), y=np.arange(1000) % 2)
    assert load_npz(raw, max_array_bytes=410_000).n_rows == 1000  # 400 kB + 8 kB
    with pytest.raises(DataFormatError, match="arrays 'x' and 'y' take 0.41 MB once decompressed"):
        load_npz(raw, max_array_bytes=405_000)


def _npy_v3(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=(3, 0))
    return buf.getvalue()


def _npz_of_members(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "error", "message"),
    [
        # a header that claims 4 TB over 40 bytes of data: numpy would allocate the claim first
        (
            {"x.npy": _npy_header((10**12,), "<f4") + bytes(40), "y.npy": b""},
            DataFormatError,
            "array 'x' takes 4,000.00 GB once decompressed",
        ),
        (
            {"x.npy": _npy_header((100, 4)) + bytes(40), "y.npy": _npy_header((100,)) + bytes(400)},
            DataFormatError,
            "array 'x' says it holds 1600 bytes but the file has 40",
        ),
        (
            {"x.npy": b"not an array", "y.npy": b""},
            DataFormatError,
            "member 'x.npy' of the NPZ file is not a numpy array",
        ),
        (
            {"x.npy": _npy_v3(np.zeros((4, 2))), "y.npy": b""},
            DataFormatError,
            "array 'x' uses .npy format version 3.0",
        ),
        (
            {"x.npy": _npy_header((3,), "|O") + bytes(24), "y.npy": b""},
            PickledDataError,
            "pickles are never loaded",
        ),
    ],
)
def test_npz_members_are_checked_from_their_headers(
    members: dict[str, bytes], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        load_npz(_npz_of_members(members))


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
