"""A table with text, numbers and blanks, as a new user has one: through the service (upload →
job → predict raw rows → model card) and through the command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.conftest import TINY, Server, wait_for
from tests.unit.test_columns import mixed_table_csv

TABLE = mixed_table_csv(800, seed=4).encode()
COLUMNS = ["age", "city", "plan", "income", "note"]
# raw rows as a user sends them: numbers as text or JSON numbers, blanks, nulls, a city never
# seen in training, a plan code never seen, a zero-padded code
ROWS: list[list[Any]] = [
    ["71.2", "Paris", "4", "2800.5", "hello"],
    [None, "Lyon", 1, 3100, None],
    ["", "Atlantis", "9", "?", ""],
    [23, "", "02", "NA", "anything at all"],
]


def _counts(server: Server) -> int:
    with server.client() as c:
        return int(c.get("/api/v1/datasets").json()["count"])


CHURN = {"label": "churn"}


@pytest.mark.parametrize(
    ("content", "data", "field", "message"),
    [
        (TABLE, {**CHURN, "column_types": '{"city": "numeric"}'}, "column_types.city", "'city'"),
        (TABLE, {**CHURN, "column_types": '{"town": "ignore"}'}, "column_types.town", "no column"),
        (TABLE, {**CHURN, "column_types": '{"plan": "codes"}'}, "column_types.plan", "not a col"),
        (TABLE, {**CHURN, "column_types": "{city: numeric"}, "column_types", "not valid JSON"),
        (TABLE, {**CHURN, "column_types": '["city"]'}, "column_types", "must be a JSON object"),
        (b"a,b,y\n1,x,Yes\n2,,No\n3,z,\n", {"label": "y"}, "file", "CSV line 4 is empty"),
        (b"a,b,y\n1,,Yes\n2,NA,No\n3,?,No\n", {"label": "y"}, "file", "'b' is entirely empty"),
        (b"id,y\nu1,Yes\nu2,No\nu3,No\n", {"label": "y"}, "file", "no usable feature column"),
    ],
)
def test_a_table_that_cannot_be_used_is_422_naming_the_field_and_stores_nothing(
    server: Server, content: bytes, data: dict, field: str, message: str
) -> None:
    before = _counts(server)
    with server.client() as c:
        r = c.post("/api/v1/datasets", files={"file": ("t.csv", content)}, data=data)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert message in r.json()["detail"]
    assert _counts(server) == before


def test_a_mixed_table_uploads_trains_and_predicts_from_raw_rows(
    server: Server, tmp_path: Path
) -> None:
    import keras
    import tensorflow as tf

    import automl.model  # noqa: F401 - registers the layers a downloaded .keras file holds
    from automl.export import model_input

    with server.client() as c:
        r = c.post(
            "/api/v1/datasets",
            files={"file": ("churn.csv", TABLE)},
            data={"label": "churn", "column_types": '{"income": "numeric"}'},
        )
        assert r.status_code == 201, r.text
        ds = r.json()
        assert (ds["rows"], ds["features"], ds["class_counts"].keys()) == (
            800,
            5,
            {"No", "Yes"},
        )
        columns = {col["name"]: col for col in ds["columns"]}
        assert [col["name"] for col in ds["columns"]] == COLUMNS
        assert {n: col["type"] for n, col in columns.items()} == {
            "age": "numeric",
            "city": "categorical",
            "plan": "categorical",
            "income": "numeric",
            "note": "ignore",
        }
        assert columns["note"]["reason"].startswith("free text: 800 distinct values")
        assert columns["income"]["given"] and not columns["age"]["given"]
        assert 0.05 < columns["age"]["missing_rate"] < 0.15 and columns["city"]["distinct"] == 4
        assert c.get(f"/api/v1/datasets/{ds['id']}").json()["columns"] == ds["columns"]

        job = c.post("/api/v1/jobs", json={"dataset_id": ds["id"], "spec": TINY}).json()
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done["error"]
        metrics = done["result"]["test_metrics"]
        assert metrics["accuracy"] > done["result"]["baseline_test_metrics"]["accuracy"]

        r = c.post(f"/api/v1/jobs/{job['id']}/predict", json={"rows": ROWS})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert r.json()["count"] == 4
        for p in preds:  # the text labels are kept as class names
            assert set(p["probabilities"]) == {"No", "Yes"}
            assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
            assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)

        for rows, field, message in [
            ([ROWS[0][:4]], "rows.0", "row 0 has 4 values; the model takes 5 columns"),
            ([ROWS[0], ["4x", "Paris", 1, 1, ""]], "rows.1.0", "'4x' is not a valid number"),
            ([[True, "Paris", 1, 1, ""]], "rows.0.0", "valid number, a text or null"),
            ([[1, {"a": 1}, 1, 1, ""]], "rows.0.1", "valid number, a text or null"),
        ]:
            bad = c.post(f"/api/v1/jobs/{job['id']}/predict", json={"rows": rows})
            assert bad.status_code == 422, bad.text
            assert any(
                e["field"] == field and message in e["message"] for e in bad.json()["errors"]
            ), bad.text

        card = c.get(f"/api/v1/jobs/{job['id']}/model/card").json()
        assert card["inputs"]["dtype"] == "string" and card["inputs"]["features"] == COLUMNS
        card_columns = {col["name"]: col for col in card["inputs"]["columns"]}
        assert card_columns["city"]["type"] == "categorical"
        assert card_columns["city"]["encoding"].startswith("one-hot over 4 categories + 1 out")
        assert "missing indicator" in card_columns["age"]["encoding"]
        assert 0.05 < card_columns["age"]["missing_rate"] < 0.15  # in the training split
        assert card_columns["note"]["encoding"].startswith("dropped (free text")

        # the downloaded .keras file and SavedModel take the same raw rows, giving the same
        keras_file = tmp_path / "model.keras"
        keras_file.write_bytes(c.get(f"/api/v1/jobs/{job['id']}/model?format=keras").content)
        sm = c.get(f"/api/v1/jobs/{job['id']}/model?format=savedmodel").content
        zipfile.ZipFile(io.BytesIO(sm)).extractall(tmp_path / "savedmodel")
    cells = np.array([["" if v is None else str(v) for v in row] for row in ROWS], dtype=object)
    expected = np.array([[p["probabilities"][k] for k in ("No", "Yes")] for p in preds])
    model = keras.saving.load_model(keras_file)
    got = np.asarray(model.predict(model_input(cells), verbose=0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    served = tf.saved_model.load(str(tmp_path / "savedmodel"))
    np.testing.assert_allclose(
        served.serve(tf.constant(cells.astype(str))).numpy(), expected, rtol=1e-5, atol=1e-6
    )


# ---- the command line -------------------------------------------------------------------------
def _automl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        COLUMNS="200",
        PYTHONPATH=str(Path(__file__).parents[2]),
    )
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_the_cli_searches_a_mixed_table_and_predicts_its_raw_rows(tmp_path: Path) -> None:
    (tmp_path / "churn.csv").write_bytes(TABLE)
    (tmp_path / "spec.json").write_text(json.dumps(TINY))
    base = ["search", "--csv", "churn.csv", "--label", "churn", "--spec", "spec.json"]
    proc = _automl(
        *base, "--column-types", '{"plan": "categorical"}', "--seed", "2", "--out", "run",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "columns" in proc.stdout and "free text: 800 distinct values" in proc.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["data"]["classes"] == ["No", "Yes"]
    assert [c["type"] for c in report["data"]["columns"]] == [
        "numeric", "categorical", "categorical", "numeric", "ignore",
    ]  # fmt: skip
    arch = json.loads((tmp_path / "run" / "architecture.json").read_text())
    assert arch["data"]["source"]["column_types"] == {"plan": "categorical"}

    # raw rows in another column order, without the ignored column: matched by name
    lines = ["income,plan,city,age"] + [
        ",".join("" if v is None else str(v) for v in (r[3], r[2], r[1], r[0])) for r in ROWS
    ]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    pred = _automl("predict", "run", "rows.csv", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr[-3000:]
    out = [line.split(",") for line in pred.stdout.strip().splitlines()]
    assert out[0] == ["label", "p_No", "p_Yes"] and len(out) == 5
    assert all(r[0] in ("No", "Yes") for r in out[1:])
    assert all(float(r[1]) + float(r[2]) == pytest.approx(1.0, abs=1e-5) for r in out[1:])

    (tmp_path / "bad.csv").write_text("age,city,plan,income\n30,Paris,1,12\n4x,Nice,2,5\n")
    bad = _automl("predict", "run", "bad.csv", cwd=tmp_path)
    assert bad.returncode == 2 and "CSV line 3, column 'age'" in bad.stderr
    assert "'4x' is not a valid number" in " ".join(bad.stderr.split())

    for types, message in [
        ('{"city": "numeric"}', "--column-types 'city': column 'city' cannot be numeric"),
        ('{"city": "numeric"', "--column-types is not valid JSON"),
    ]:
        refused = _automl(*base, "--column-types", types, "--out", "x", cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout
        assert message in " ".join(refused.stderr.split())
        assert "Traceback" not in refused.stderr and not (tmp_path / "x").exists()
