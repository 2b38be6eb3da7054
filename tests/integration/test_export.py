"""Exported models predict what the in-memory model predicts; the CLI predicts from raw CSV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from automl.data import load_builtin, prepare
from automl.runner import run
from automl.spec import SearchSpec
from tests.conftest import tiny_spec_dict

FRESH = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
out = loaded.serve(tf.constant(x)).numpy()
sig = loaded.signatures["serving_default"]
out2 = list(sig(tf.constant(x)).values())[0].numpy()
np.save(sys.argv[3], np.stack([out, out2]))
"""


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("export") / "wine"
    spec = SearchSpec.from_dict(tiny_spec_dict(epochs=6, seed=5))
    outcome = run(spec, load_builtin("wine"), out)
    data = prepare(load_builtin("wine"), seed=5)
    return out, outcome, data


def test_savedmodel_in_a_fresh_process_and_keras_file_predict_the_same(
    wine_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import keras

    out, outcome, data = wine_run
    x = data.x_test_raw.astype(np.float32)
    expected = np.asarray(outcome.model.predict(x, verbose=0))
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH,
            str(out / "savedmodel"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(served[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served[1], expected, rtol=1e-5, atol=1e-6)
    reloaded = keras.saving.load_model(out / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)


def test_the_model_card_describes_the_model(wine_run) -> None:  # type: ignore[no-untyped-def]
    out, outcome, _ = wine_run
    card = json.loads((out / "model_card.json").read_text())
    assert card["dataset"] == "wine" and card["task"] == "classification"
    assert card["inputs"]["n_features"] == 13 and len(card["inputs"]["features"]) == 13
    assert card["preprocessing"]["label_names"] == ["class_0", "class_1", "class_2"]
    assert len(card["preprocessing"]["feature_mean"]) == 13
    assert card["members"] and all("mixture_weight" in m for m in card["members"])
    assert card["nonzero_params"] <= card["params"]
    assert card["test_metrics"] == outcome.report["test_metrics"]
    assert card["sparsity"] == outcome.report["evaluation"]["sparsity"]
    assert card["latency"]["batch_1_s_per_row"] > 0 and card["latency"]["batch_256_s_per_row"] > 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_predict_takes_raw_rows_matched_by_feature_name(wine_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, outcome, data = wine_run
    names = data.dataset.feature_names
    x = data.x_test_raw[:7]
    # columns in another order plus the label column: matched by name, label ignored
    header = ["target", *reversed(names)]
    lines = [",".join(header)] + [
        ",".join(["0", *[repr(float(v)) for v in reversed(row)]]) for row in x
    ]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    proc = _cli("predict", str(out), str(tmp_path / "rows.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = [line.split(",") for line in proc.stdout.strip().splitlines()]
    assert got[0] == ["label", "p_class_0", "p_class_1", "p_class_2"]
    probs = np.array([[float(v) for v in r[1:]] for r in got[1:]])
    np.testing.assert_allclose(probs, outcome.model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    (tmp_path / "bad.csv").write_text(",".join(names) + "\n" + ",".join(["1"] * 12 + ["x"]) + "\n")
    bad = _cli("predict", str(out), str(tmp_path / "bad.csv"))
    assert bad.returncode == 2 and f"CSV line 2, column '{names[-1]}'" in bad.stderr
    assert _cli("predict", str(tmp_path), str(tmp_path / "rows.csv")).returncode == 2


def test_cli_export_writes_a_loadable_savedmodel(wine_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = wine_run
    proc = _cli("export", str(out), "--format", "savedmodel", "--out", str(tmp_path / "sm"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "sm" / "saved_model.pb").is_file()
    bad = _cli("export", str(out), "--format", "onnx")
    assert bad.returncode == 2 and "--format must be savedmodel or keras" in bad.stderr
