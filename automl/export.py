"""Artifacts of a finished run: SavedModel export, the model card, prediction from raw rows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import AutoMLError, RecordError


class PredictionInputError(AutoMLError):
    """Rows to predict that do not fit the model; names the row and column."""

    def __init__(self, message: str, row: int | None = None, column: int | str | None = None):
        super().__init__(message)
        self.row = row
        self.column = column


def export_savedmodel(model: Any, path: Path) -> Path:
    """A TensorFlow SavedModel with a ``serve`` endpoint (and ``serving_default``) that TF
    Serving loads: raw float32 features in, probabilities (or values) out."""
    import shutil

    tmp = path.with_name(path.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.export(str(tmp), format="tf_saved_model", verbose=False)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def inference_function(model: Any) -> Any:
    """The model's forward pass as a traced graph: an eager Keras call of a multi-member
    ensemble costs tens of milliseconds per call, the graph well under one."""
    import tensorflow as tf

    return tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, model.input_shape[-1]], tf.float32)],
        reduce_retracing=True,
    )


def prediction_latency(model: Any, x: np.ndarray, repeats: int = 30) -> dict[str, float]:
    """Seconds per row at batch 1 and at batch 256: the median of repeated calls of the traced
    forward pass, after a warm-up, numpy in and out (what a prediction costs in process)."""
    fn = inference_function(model)
    out: dict[str, float] = {}
    for batch in (1, 256):
        rows = np.resize(x, (batch, x.shape[1])).astype(np.float32)
        np.asarray(fn(rows))  # trace and warm up
        times = []
        for _ in range(repeats if batch == 1 else max(5, repeats // 3)):
            t0 = time.perf_counter()
            np.asarray(fn(rows))
            times.append(time.perf_counter() - t0)
        out[f"batch_{batch}_s_per_row"] = float(np.median(times) / batch)
    return out


def parse_rows(rows: Any, n_features: int) -> np.ndarray:
    """Validate raw rows: a list of lists of numbers, each of ``n_features`` values."""
    if not isinstance(rows, list) or not rows:
        raise PredictionInputError("rows must be a non-empty list of rows (lists of numbers)")
    out = np.empty((len(rows), n_features), dtype=np.float32)
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple):
            raise PredictionInputError(f"row {i} is not a list of numbers", row=i)
        if len(row) != n_features:
            raise PredictionInputError(
                f"row {i} has {len(row)} values; the model takes {n_features} features",
                row=i,
            )
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise PredictionInputError(
                    f"row {i}, column {j}: {value!r} is not a number", row=i, column=j
                )
            try:
                out[i, j] = float(value)
            except ValueError:
                raise PredictionInputError(
                    f"row {i}, column {j}: {value!r} is not a number", row=i, column=j
                ) from None
            if not np.isfinite(out[i, j]):
                raise PredictionInputError(
                    f"row {i}, column {j}: {value!r} is not a finite number", row=i, column=j
                )
    return out


class Predictor:
    """A run's model with its preprocessing: raw feature rows in, labels out."""

    def __init__(self, run_dir: Path) -> None:
        import keras

        import automl.model  # noqa: F401 - registers the custom layers
        import automl.optimizers  # noqa: F401 - registers the schedules

        model_path, info_path = run_dir / "model.keras", run_dir / "preprocessing.json"
        if not model_path.is_file() or not info_path.is_file():
            raise RecordError(f"{str(run_dir)!r} holds no model (model.keras, preprocessing.json)")
        self.model = keras.saving.load_model(model_path)
        self.info = json.loads(info_path.read_text())
        self._forward = inference_function(self.model)

    @property
    def n_features(self) -> int:
        return int(self.info["n_features"])

    def predict(self, rows: Any) -> list[dict[str, Any]]:
        x = parse_rows(rows, self.n_features)
        out = np.concatenate(
            [np.asarray(self._forward(x[i : i + 1024])) for i in range(0, len(x), 1024)]
        )
        if self.info["task"] == "regression":
            return [{"value": float(v)} for v in out.reshape(-1)]
        labels = self.info["label_names"]
        return [
            {
                "label": labels[int(np.argmax(p))],
                "probabilities": {name: float(v) for name, v in zip(labels, p, strict=True)},
            }
            for p in out
        ]


def model_card(report: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """What a person needs to know before using the model."""
    ens = report["ensemble"]
    ev = report.get("evaluation") or {}
    return {
        "model": "automl AdaNet ensemble",
        "dataset": report["dataset"],
        "task": report["task"],
        "inputs": {
            "features": info["feature_names"],
            "n_features": info["n_features"],
            "input_shape": info["input_shape"],
            "dtype": "float32",
            "raw": True,
        },
        "outputs": (
            {"probabilities_for": info["label_names"]}
            if report["task"] == "classification"
            else {"value": "the target in its own units"}
        ),
        "preprocessing": {
            "feature_scaling": "standardisation fitted on the training split, inside the model",
            "feature_mean": info["feature_mean"],
            "feature_std": info["feature_std"],
            "label_names": info["label_names"],
            "target_mean": info["target_mean"],
            "target_std": info["target_std"],
        },
        "members": [
            {
                k: m[k]
                for k in ("name", "family", "depth", "params", "nonzero_params", "mixture_weight")
                if k in m
            }
            for m in ens["members"]
        ],
        "params": ens["params"],
        "nonzero_params": ens.get("nonzero_params", ens["params"]),
        "sparsity": ev.get("sparsity", 0.0),
        "test_metrics": report["test_metrics"],
        "cross_validation": ev.get("cross_validation"),
        "best_member_test_metrics": report["best_member_test_metrics"],
        "objective": {
            "value": ens["objective"],
            "lambda": report["lambda"],
            "beta": report["beta"],
            "complexity_measure": report["complexity_measure"],
        },
        "latency": report.get("latency"),
        "seed": report["seed"],
    }
