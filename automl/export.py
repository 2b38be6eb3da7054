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
    Serving loads: raw float32 features (a table's raw cells: strings) in, probabilities (or
    values) out."""
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

    dtype = tf.string if model.inputs[0].dtype == "string" else tf.float32
    return tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, model.input_shape[-1]], dtype)],
        reduce_retracing=True,
    )


def model_input(x: np.ndarray) -> Any:
    """Rows as the model takes them: float32, or a string tensor for a table's raw cells
    (Keras' ``predict`` takes no numpy object array)."""
    if x.dtype == object:
        from automl.preprocessing import cells_tensor

        return cells_tensor(x)
    return x.astype(np.float32)


def prediction_latency(model: Any, x: np.ndarray, repeats: int = 30) -> dict[str, float]:
    """Seconds per row at batch 1 and at batch 256: the median of repeated calls of the traced
    forward pass, after a warm-up, numpy in and out (what a prediction costs in process); for a
    table of raw cells, the preprocessing inside the model included."""
    fn = inference_function(model)
    out: dict[str, float] = {}
    for batch in (1, 256):
        rows = model_input(np.resize(x, (batch, x.shape[1])))
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


def _cell_text(value: Any) -> str | None:
    """A JSON/CSV cell as the text the model reads; ``None`` when it is neither text, a finite
    number nor null."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return ""  # a NaN from Python is a missing cell, as "NaN" in a CSV is
    if not np.isfinite(value):
        return None
    return repr(float(value)) if isinstance(value, float | np.floating) else str(int(value))


def parse_table_rows(rows: Any, columns: list[dict[str, Any]]) -> np.ndarray:
    """Validate raw rows for a table of raw cells: one cell per column, each text, a number or
    null (a missing cell). A numeric column's cell must be a number or missing; any text goes in
    a categorical column (a value not seen in training goes to the out-of-vocabulary bucket) and
    in an ignored one. Returns the object array of cells the model takes."""
    from automl.data._columns import is_missing, is_number

    if not isinstance(rows, list) or not rows:
        raise PredictionInputError("rows must be a non-empty list of rows (lists of cells)")
    n = len(columns)
    out = np.empty((len(rows), n), dtype=object)
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple):
            raise PredictionInputError(f"row {i} is not a list of cells", row=i)
        if len(row) != n:
            raise PredictionInputError(
                f"row {i} has {len(row)} values; the model takes {n} columns "
                f"({', '.join(c['name'] for c in columns)})",
                row=i,
            )
        for j, value in enumerate(row):
            cell = _cell_text(value)
            if cell is None:
                raise PredictionInputError(
                    f"row {i}, column {j} ({columns[j]['name']!r}): {value!r} is not a text, "
                    "a finite number or null",
                    row=i,
                    column=j,
                )
            if columns[j]["type"] == "numeric" and not (is_missing(cell) or is_number(cell)):
                raise PredictionInputError(
                    f"row {i}, column {j} ({columns[j]['name']!r}): {value!r} is not a valid "
                    "number (the column is numeric; leave the cell empty if it is missing)",
                    row=i,
                    column=j,
                )
            out[i, j] = cell
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

    @property
    def input_dtype(self) -> str:
        """``float32`` (numbers only), or ``string`` for a table of raw cells."""
        return str(self.info.get("input_dtype", "float32"))

    def predict(self, rows: Any) -> list[dict[str, Any]]:
        if self.input_dtype == "string":
            x = model_input(parse_table_rows(rows, self.info["columns"]))
        else:
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
    cells = info.get("input_dtype") == "string"
    if cells:
        columns = [
            {k: c[k] for k in ("name", "type", "encoding", "missing_rate") if k in c}
            for c in info["columns"]
        ]
        preprocessing: dict[str, Any] = {
            "feature_scaling": "per column, fitted on the training split, inside the model "
            "(Keras Normalization and StringLookup layers; see inputs.columns)",
            "encoded_features": info.get("n_encoded"),
        }
    else:
        columns = [
            {
                "name": name,
                "type": "numeric",
                "encoding": f"standardised (training mean {m:.4g}, std {s:.4g})",
                "missing_rate": 0.0,
            }
            for name, m, s in zip(
                info["feature_names"], info["feature_mean"], info["feature_std"], strict=True
            )
        ]
        preprocessing = {
            "feature_scaling": "standardisation fitted on the training split, inside the model",
            "feature_mean": info["feature_mean"],
            "feature_std": info["feature_std"],
        }
    return {
        "model": "automl AdaNet ensemble",
        "dataset": report["dataset"],
        "task": report["task"],
        "inputs": {
            "features": info["feature_names"],
            "n_features": info["n_features"],
            "input_shape": info["input_shape"],
            # a table of raw cells takes each cell as text ("" or null when missing)
            "dtype": "string" if cells else "float32",
            "raw": True,
            # each input column: its type, how the model encodes it, and the share of its
            # cells that were missing in the training split
            "columns": columns,
        },
        "outputs": (
            {"probabilities_for": info["label_names"]}
            if report["task"] == "classification"
            else {"value": "the target in its own units"}
        ),
        "preprocessing": {
            **preprocessing,
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
        # the same metrics for a model that learnt nothing (the majority class, or the
        # training mean): a model no better than this is of no use, whatever its accuracy
        "baseline_test_metrics": report.get("baseline_test_metrics"),
        "evaluation_metric": ev.get("metric"),
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
