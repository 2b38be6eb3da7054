"""Dataset records: raw data as loaded, and the prepared train/validation/test split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from automl.data._columns import Column

Task = Literal["classification", "regression"]


@dataclass
class Dataset:
    """Features and labels as loaded, before any split or scaling.

    Attributes:
        name: Built-in name or file name.
        x: Float32 features, one row per example, flattened.
        y: Integer class indices (classification) or float32 targets (regression).
        task: ``classification`` or ``regression``.
        feature_names: One name per column of ``x``.
        label_names: Class names in index order (classification only).
        input_shape: The shape one row has before flattening: ``(H, W, C)`` for images,
            ``(L, C)`` for sequences, ``None`` for tables. Chooses which subnetwork families apply.
        source: Where it came from (``{"builtin": name}`` or ``{"csv": path, "label": col}``...),
            enough for replay to load it again.
        x_test, y_test: A test split that ships with the data (MNIST-1D has one); otherwise ``None``
            and the test split is drawn from ``x``.
        task_rule: Which rule chose ``task``: ``"given by the user"``, ``"built-in dataset:
            regression"``, or the detection rule's sentence (see
            :func:`automl.data.explain_task`), e.g. ``"12 integer classes in 1797 rows:
            classification"``.
        columns: The type of each feature column of a CSV table (see
            :mod:`automl.data._columns`); ``None`` for built-in and NPZ data, whose columns are
            all numeric. When a table needs more than scaling (a categorical, ignored or
            partly missing column), ``x`` holds its raw cells instead of numbers: an object
            array of stripped text, one column per feature, as the model takes them.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    task: Task
    feature_names: list[str]
    label_names: list[str] | None = None
    input_shape: tuple[int, ...] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    task_rule: str | None = None
    columns: list[Column] | None = None

    @property
    def raw_cells(self) -> bool:
        """Whether ``x`` holds a table's raw text cells (the model then takes text rows)."""
        return self.x.dtype == object

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0]) + (0 if self.x_test is None else int(self.x_test.shape[0]))

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.label_names or [])

    @property
    def kind(self) -> Literal["image", "sequence", "table"]:
        if self.input_shape is not None and len(self.input_shape) == 3:
            return "image"
        if self.input_shape is not None and len(self.input_shape) == 2:
            return "sequence"
        return "table"

    def fingerprint(self) -> str:
        """A sha256 of the arrays, so a replay can tell it got the same data."""
        digest = hashlib.sha256()
        for array in (self.x, self.y, self.x_test, self.y_test):
            if array is not None and array.dtype == object:
                # raw cells: their text, with separators no CSV cell read by us holds
                for row in array:
                    digest.update(("\x1f".join(row) + "\x1e").encode())
            elif array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def class_counts(self) -> dict[str, int]:
        """Rows per class name over all the data (classification only)."""
        if self.task != "classification":
            return {}
        ys = self.y if self.y_test is None else np.concatenate([self.y, self.y_test])
        counts = np.bincount(ys.astype(np.int64), minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.label_names or [], counts, strict=True)}


@dataclass
class PreparedData:
    """A stratified split with scaling statistics fitted on the training split only.

    Features here are already scaled; ``feature_mean``/``feature_std`` travel with the model so it
    takes raw features. For regression the targets are scaled too (``target_mean``/``target_std``).

    A table of raw cells (``dataset.raw_cells``) is encoded instead by the model's own
    preprocessing layers, fitted on the training split (``fitted_columns``, see
    :func:`automl.data._columns.fit_columns`): ``x_train``/``x_val``/``x_test`` are the encoded
    numeric matrices the candidates train on, ``x_test_raw`` the test split's raw cells, and
    ``feature_mean``/``feature_std`` are 0/1 (the encoding has scaled already).
    """

    dataset: Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray
    target_mean: float = 0.0
    target_std: float = 1.0
    class_weights: dict[int, float] | None = None
    seed: int = 0
    x_test_raw: np.ndarray | None = None  # unscaled, as a model built for raw features takes
    y_test_raw: np.ndarray | None = None  # in the target's own units (regression)
    fitted_columns: list[dict[str, Any]] | None = None  # a raw-cell table's preprocessing

    @property
    def task(self) -> Task:
        return self.dataset.task

    @property
    def n_outputs(self) -> int:
        """Logits per example: the class count, or 1 for regression."""
        return self.dataset.n_classes if self.task == "classification" else 1

    def balance_report(self) -> dict[str, dict[str, int]]:
        """Rows per class in each split (classification), as the seed asks for balanced classes."""
        if self.task != "classification":
            return {}
        names = self.dataset.label_names or []
        report: dict[str, dict[str, int]] = {}
        for split, ys in (
            ("train", self.y_train),
            ("validation", self.y_val),
            ("test", self.y_test),
        ):
            counts = np.bincount(ys.astype(np.int64), minlength=len(names))
            report[split] = {n: int(c) for n, c in zip(names, counts, strict=True)}
        return report

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.dataset.name,
            "task": self.task,
            "task_rule": self.dataset.task_rule,
            "features": self.dataset.n_features,
            **({"encoded_features": int(self.x_train.shape[1])} if self.fitted_columns else {}),
            "columns": (
                [
                    {k: c[k] for k in ("name", "type", "missing_rate", "encoding") if k in c}
                    for c in self.fitted_columns
                ]
                if self.fitted_columns
                else [c.to_dict() for c in self.dataset.columns]
                if self.dataset.columns
                else None
            ),
            "input_shape": list(self.dataset.input_shape) if self.dataset.input_shape else None,
            "rows": {
                "train": int(len(self.y_train)),
                "validation": int(len(self.y_val)),
                "test": int(len(self.y_test)),
            },
            "classes": self.dataset.label_names,
            "class_balance": self.balance_report(),
            "class_weights": (
                {str(k): round(v, 4) for k, v in self.class_weights.items()}
                if self.class_weights
                else None
            ),
        }
