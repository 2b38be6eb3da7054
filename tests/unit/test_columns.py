"""Tables with text, numbers and blanks: column types, the preprocessing fitted on the training
split only, and models that take raw rows and survive the .keras and SavedModel round trips."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl.data import load_csv, prepare
from automl.data._columns import MISSING_TOKENS, category_token, fit_columns
from automl.errors import ColumnTypeError, EmptyDataError, NonFiniteValueError

CITIES = ["Paris", "Lyon", "Nice", "Lille"]


def mixed_table_csv(n: int = 600, seed: int = 0, noise: float = 0.05) -> str:
    """A churn-like table: a numeric column with blanks (several spellings), a text category
    with missing cells, whole-number codes, a free-text column, and a Yes/No label that depends
    on the city, the plan and the age (so a model can beat the majority class)."""
    rng = np.random.default_rng(seed)
    lines = ["age,city,plan,income,note,churn"]
    blanks = ["", "NA", "?", "nan"]
    for i in range(n):
        age = rng.uniform(18, 80)
        city = CITIES[int(rng.integers(len(CITIES)))]
        plan = int(rng.integers(1, 5))
        income = rng.normal(3000, 800)
        score = (city in ("Paris", "Nice")) * 1.5 + (plan >= 3) * 1.2 + (age - 50) / 15
        churn = (score > 1.3) ^ (rng.random() < noise)
        age_cell = blanks[i % 4] if rng.random() < 0.1 else f"{age:.1f}"
        city_cell = "" if rng.random() < 0.08 else city
        lines.append(
            f"{age_cell},{city_cell},{plan},{income:.2f},customer {i} says hi,"
            f"{'Yes' if churn else 'No'}"
        )
    return "\n".join(lines) + "\n"


def _csv(header: str, rows: list[str]) -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


def _types(ds: Any) -> dict[str, str]:
    return {c.name: c.type for c in ds.columns}


# ---- type detection ------------------------------------------------------------------------
def test_each_column_gets_a_type_and_the_rule_that_chose_it() -> None:
    rows = [
        f"{i * 0.5},{CITIES[i % 3]},{i % 4 + 1},{i % 2},id{i},7,{'' if i % 3 else 'x'},{i % 2}"
        for i in range(40)
    ]
    ds = load_csv(_csv("num,city,code,flag,id,const,sparse,y", rows), label="y")
    assert _types(ds) == {
        "num": "numeric",
        "city": "categorical",
        "code": "categorical",  # 4 whole numbers, 10 rows each
        "flag": "numeric",  # a 0/1 flag stays one number
        "id": "ignore",  # free text: every value its own
        "const": "ignore",
        "sparse": "categorical",  # one value plus blanks: whether it is there is information
    }
    reasons = {c.name: c.reason for c in ds.columns}
    assert reasons["city"] == "3 text values: categorical"
    assert reasons["code"] == "4 whole-number values in 40 rows: categorical"
    assert reasons["id"] == "free text: 40 distinct values in 40 rows (most values are unique)"
    assert reasons["const"] == "constant: every value is '7'"
    sparse = next(c for c in ds.columns if c.name == "sparse")
    assert sparse.missing_rate == pytest.approx(26 / 40, abs=1e-6) and sparse.distinct == 1
    assert ds.raw_cells and ds.x.shape == (40, 7) and ds.x[0, 1] == "Paris"


def test_few_rows_per_code_or_many_texts_decide_the_type() -> None:
    # 4 whole numbers in 12 rows: under 5 rows a value, a quantity rather than codes
    few = load_csv(_csv("code,y", [f"{i % 4},{i % 2}" for i in range(12)]), label="y")
    assert _types(few) == {"code": "numeric"}
    assert "fewer than 5 rows per value" in few.columns[0].reason
    # 60 distinct words, each in 5 rows: more than 50 categories is free text
    many = load_csv(_csv("word,n,y", [f"w{i % 60},{i},{i % 2}" for i in range(300)]), label="y")
    assert _types(many) == {"word": "ignore", "n": "numeric"}
    assert many.columns[0].reason == "free text: 60 distinct values (more than 50)"


@pytest.mark.parametrize("token", [*MISSING_TOKENS, " NA ", "N/A", "NaN", "NULL", "None"])
def test_every_missing_spelling_is_a_missing_cell(token: str) -> None:
    rows = [f"{token if i % 5 == 0 else i},{i % 2}" for i in range(30)]
    ds = load_csv(_csv("a,y", rows), label="y")
    assert _types(ds) == {"a": "numeric"} and ds.columns[0].missing_rate == pytest.approx(0.2)
    assert ds.raw_cells  # a numeric column with blanks takes the raw-cell path


def test_an_all_numeric_table_without_blanks_keeps_the_float_path() -> None:
    ds = load_csv(_csv("a,b,y", [f"{i},{i * 0.3},{i % 2}" for i in range(40)]), label="y")
    assert not ds.raw_cells and ds.x.dtype == np.float32
    assert _types(ds) == {"a": "numeric", "b": "numeric"}
    data = prepare(ds)
    assert data.fitted_columns is None  # the float path of built-in data: standardised only


@pytest.mark.parametrize(
    ("header", "rows", "error", "message"),
    [
        ("a,b,y", ["1,,x", "2,NA,y", "3,?,x"], EmptyDataError, "column 'b' is entirely empty"),
        (
            "a,b,y",
            ["1,p,x", "1,q,y", "1,r,x", "1,s,y"],
            EmptyDataError,
            "no usable feature column ('a': constant: every value is '1'; 'b': free text",
        ),
        ("a,y", ["1,x", "2,", "3,y"], EmptyDataError, "the label in CSV line 3 is empty"),
        ("a,y", ["1,x", "2,?", "3,y"], EmptyDataError, "CSV line 3 is '?', a missing value"),
        ("a,y", ["1,x", "-inf,y", "3,y"], NonFiniteValueError, "'a' in CSV line 3 is '-inf'"),
        ("a,y", ["1,x", "1e999,y", "3,y"], NonFiniteValueError, "is '1e999', not a finite"),
    ],
)
def test_what_is_still_refused(header: str, rows: list[str], error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        load_csv(_csv(header, rows), label="y")


def test_column_types_override_the_rule() -> None:
    rows = [f"{i % 4},{CITIES[i % 3]},id{i},{i % 2}" for i in range(40)]
    text = _csv("code,city,id,y", rows)
    ds = load_csv(
        text, label="y", column_types={"code": "numeric", "id": "categorical", "city": "ignore"}
    )
    assert _types(ds) == {"code": "numeric", "city": "ignore", "id": "categorical"}
    code = ds.columns[0]
    assert code.given and code.reason == (
        "given by the user (detected: 4 whole-number values in 40 rows: categorical)"
    )
    assert ds.source["column_types"] == {"code": "numeric", "city": "ignore", "id": "categorical"}
    # an entirely empty column may be ignored instead of refused
    empty = _csv("a,b,y", [f"{i},,{i % 2}" for i in range(20)])
    assert _types(load_csv(empty, label="y", column_types={"b": "ignore"}))["b"] == "ignore"


@pytest.mark.parametrize(
    ("types", "column", "message"),
    [
        ({"city": "numeric"}, "city", "column 'city' cannot be numeric: CSV line 2 holds 'Paris'"),
        ({"town": "numeric"}, "town", "there is no column 'town'; the feature columns are: a"),
        ({"y": "categorical"}, "y", "'y' is the label column"),
        ({"a": "number"}, "a", "'number' is not a column type; use numeric, categorical or"),
        ({"b": "numeric"}, "b", "column 'b' is entirely empty .* it can only be ignored"),
    ],
)
def test_a_bad_override_names_its_column(types: dict, column: str, message: str) -> None:
    rows = [f"{i},{CITIES[i % 3]},,{i % 2}" for i in range(30)]
    with pytest.raises(ColumnTypeError, match=message) as info:
        load_csv(_csv("a,city,b,y", rows), label="y", column_types=types)
    assert info.value.column == column


def test_a_stored_record_reads_the_file_with_its_own_types() -> None:
    text = _csv("code,y", [f"{i % 4},{i % 2}" for i in range(40)])
    first = load_csv(text, label="y")
    stored = [dict(c.to_dict(), type="numeric", reason="kept") for c in first.columns]
    again = load_csv(text, label="y", columns=stored)
    assert _types(again) == {"code": "numeric"} and again.columns[0].reason == "kept"


def test_category_tokens_read_whole_numbers_in_their_plain_form() -> None:
    assert [category_token(c) for c in ["3", "03", "+3", "3.0", "3.", "-0", "3.5", "x"]] == [
        "3", "3", "3", "3", "3", "0", "3.5", "x",
    ]  # fmt: skip


# ---- the preprocessing, fitted on the training split only --------------------------------------
def test_statistics_come_from_the_training_rows_alone() -> None:
    train = np.array([["1", "a"], ["", "a"], ["3", "b"], ["NA", ""]], dtype=object)
    ds = load_csv(_csv("n,c,y", [f"{i},{'ab'[i % 2]},{i % 2}" for i in range(20)]), label="y")
    assert ds.columns is not None
    fitted = fit_columns(train, ds.columns)
    n, c = fitted
    assert n["fill"] == 2.0 and n["indicator"] and n["missing_rate"] == 0.5
    filled = np.array([1, 2, 3, 2], np.float32)  # the median fills the blanks
    assert n["mean"] == pytest.approx(filled.mean()) and n["std"] == pytest.approx(filled.std())
    assert c["vocabulary"] == ["a", "b"] and c["fill"] == "a" and c["indicator"]


def test_a_category_seen_only_outside_the_training_split_goes_out_of_vocabulary() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(300):
        city = f"rare{i}" if i < 20 else CITIES[int(rng.integers(4))]  # 20 seen once each
        rows.append(f"{rng.normal():.3f},{city},{int(city in ('Paris', 'Nice'))}")
    ds = load_csv(_csv("x,city,y", rows), label="y", column_types={"city": "categorical"})
    data = prepare(ds, seed=0)
    assert data.fitted_columns is not None and data.x_test_raw is not None
    vocabulary = data.fitted_columns[1]["vocabulary"]
    test_cities = [str(c) for c in data.x_test_raw[:, 1]]
    only_in_test = [c for c in test_cities if c.startswith("rare") and c not in vocabulary]
    assert only_in_test, "the seed puts some rare cities in the test split"
    # the vocabulary holds the training split's cities: the 4 common ones and the rare ones
    # drawn into training, never one that only the test split has
    assert set(CITIES) <= set(vocabulary) and len(vocabulary) < 24
    # the encoded test rows of those cities light up the out-of-vocabulary bucket alone
    oov = 1  # encoded layout: x, then the city's one-hot with its OOV bucket first
    for row, city in zip(data.x_test, test_cities, strict=True):
        one_hot = row[oov : oov + 1 + len(vocabulary)]
        assert one_hot.sum() == 1
        assert (one_hot[0] == 1) == (city not in vocabulary)


# ---- models that take raw rows ---------------------------------------------------------------
@pytest.fixture(scope="module")
def table_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    """A one-member ensemble over the table's preprocessing (untrained weights are enough for
    a round trip), saved as .keras and as a SavedModel."""
    from automl.ensemble import Member, MixtureFit
    from automl.export import export_savedmodel
    from automl.model import build_ensemble_model, data_info
    from automl.runner import save_model
    from automl.training import build_subnetwork

    data = prepare(load_csv(mixed_table_csv(200).encode(), label="churn"), seed=1)
    info = data_info(data)
    hparams = {"family": "dense", "depth": 2, "width": 16, "activation": "relu", "dropout": 0.0}
    hparams.update(l2=0.0, batch_norm=False)
    net = build_subnetwork(hparams, {**info, "n_features": info["n_encoded"]}, "m0")
    member = Member("m0", 0, hparams, 0, 2, net.count_params(), 1.0, tuple(net.get_weights()))
    fit = MixtureFit(np.array([1.0]), np.zeros(2), 0.0, 0.0, 0.0, {})
    model = build_ensemble_model([member], fit, info, "scalar")
    out = tmp_path_factory.mktemp("table-model")
    save_model(model, out / "model.keras")
    export_savedmodel(model, out / "savedmodel")
    return data, model, out


RAW_ROWS = [
    ["41.5", "Paris", "3", "2500", "hello"],
    ["", "Lyon", "1", "3100.5", ""],  # a blank number
    ["NA", "Atlantis", "9", "?", "x"],  # an unseen city, an unseen plan, missing income
    ["  62 ", "", "02", "1000", "whatever"],  # spaces, a missing city, a zero-padded code
]


def test_the_model_takes_raw_rows_with_text_and_blanks(table_model: Any) -> None:
    from automl.export import model_input

    data, model, _ = table_model
    assert model.inputs[0].dtype == "string" and model.input_shape == (None, 5)
    probs = np.asarray(model.predict(model_input(np.array(RAW_ROWS, dtype=object)), verbose=0))
    assert probs.shape == (4, 2) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # the encoded matrix the candidates train on is what the model's first layers compute
    from automl.preprocessing import encode_cells

    assert data.x_test_raw is not None
    np.testing.assert_array_equal(encode_cells(data.fitted_columns, data.x_test_raw), data.x_test)


def test_keras_file_and_savedmodel_round_trips_predict_identically(table_model: Any) -> None:
    import keras
    import tensorflow as tf

    from automl.export import model_input

    data, model, out = table_model
    rows = np.concatenate([np.array(RAW_ROWS, dtype=object), data.x_test_raw])
    expected = np.asarray(model.predict(model_input(rows), verbose=0))
    reloaded = keras.saving.load_model(out / "model.keras")
    np.testing.assert_array_equal(
        np.asarray(reloaded.predict(model_input(rows), verbose=0)), expected
    )
    served = tf.saved_model.load(str(out / "savedmodel"))
    raw = tf.constant(rows.astype(str))
    np.testing.assert_allclose(served.serve(raw).numpy(), expected, rtol=1e-6, atol=1e-7)
    signature = served.signatures["serving_default"]
    np.testing.assert_allclose(
        next(iter(signature(raw).values())).numpy(), expected, rtol=1e-6, atol=1e-7
    )


def test_predictor_checks_each_cell_and_names_the_bad_one(table_model: Any) -> None:
    import json

    from automl.export import PredictionInputError, Predictor
    from automl.model import data_info

    data, model, out = table_model
    (out / "preprocessing.json").write_text(json.dumps(data_info(data)))
    predictor = Predictor(out)
    assert predictor.input_dtype == "string"
    # JSON-like cells: numbers, text and null are all fine where they fit
    rows = [[41.5, "Paris", 3, 2500, None], [None, "Atlantis", "9", "", "x"]]
    got = predictor.predict(rows)
    assert [set(p["probabilities"]) for p in got] == [{"No", "Yes"}] * 2
    from automl.export import model_input, parse_table_rows

    cells = parse_table_rows(rows, data_info(data)["columns"])
    expected = np.asarray(model.predict(model_input(cells), verbose=0))
    assert [p["probabilities"]["Yes"] for p in got] == pytest.approx(expected[:, 1].tolist())
    for bad, (row, column), message in [
        (
            [["4x", "Paris", 3, 1, ""]],
            (0, 0),
            "row 0, column 0 ('age'): '4x' is not a valid number",
        ),
        ([RAW_ROWS[0], RAW_ROWS[1][:4]], (1, None), "row 1 has 4 values; the model takes 5"),
        ([[1, "Paris", True, 1, ""]], (0, 2), "True is not a text, a finite number or null"),
        ([[1, "Paris", 3, float("inf"), ""]], (0, 3), "inf is not a text, a finite number"),
    ]:
        with pytest.raises(PredictionInputError, match=re.escape(message)) as info:
            predictor.predict(bad)
        assert (info.value.row, info.value.column) == (row, column)


def test_a_numeric_csv_reads_and_prepares_exactly_as_the_built_in_data() -> None:
    from automl.data import load_builtin

    wine = load_builtin("wine")
    assert wine.label_names is not None
    lines = [",".join([*wine.feature_names, "cultivar"])] + [
        ",".join([*(repr(float(v)) for v in row), wine.label_names[int(t)]])
        for row, t in zip(wine.x, wine.y, strict=True)
    ]
    ds = load_csv(("\n".join(lines) + "\n").encode(), label="cultivar")
    assert not ds.raw_cells and {c.type for c in ds.columns or []} == {"numeric"}
    assert ds.fingerprint() == wine.fingerprint()
    a, b = prepare(ds, seed=3), prepare(wine, seed=3)
    for name in ("x_train", "x_val", "x_test", "x_test_raw", "feature_mean", "feature_std"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
