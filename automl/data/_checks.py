"""Checks every dataset passes before a search, each raising one documented error."""

from __future__ import annotations

import numpy as np

from automl.data._dataset import Task
from automl.errors import (
    EmptyDataError,
    NonFiniteValueError,
    SingleClassError,
)


def check_features(x: np.ndarray, feature_names: list[str] | None = None) -> None:
    """Raise if ``x`` is empty or holds NaN/inf; name the first bad row and column."""
    if x.ndim != 2 or x.shape[0] == 0:
        raise EmptyDataError("the data has no rows; provide at least one row of features")
    if x.shape[1] == 0:
        raise EmptyDataError("the data has no feature columns; provide at least one feature")
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        name = feature_names[col] if feature_names else f"column {col}"
        raise NonFiniteValueError(
            f"feature {name!r} in row {row + 1} is {float(x[row, col])}; "
            f"{int(bad.sum())} value(s) are NaN or infinite — fill or drop them before uploading"
        )


def check_labels(y: np.ndarray, task: Task) -> None:
    if y.shape[0] == 0:
        raise EmptyDataError("the data has no labels; provide one label per row")
    if task == "regression":
        bad = ~np.isfinite(y.astype(np.float64))
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise NonFiniteValueError(
                f"the label in row {row + 1} is {float(y[row])}; regression targets must be finite"
            )
    elif np.unique(y).size < 2:
        first = y[0].item() if isinstance(y[0], np.generic) else y[0]
        raise SingleClassError(
            f"every row has the same label ({first!r}); classification needs at least two classes"
        )


def detect_task(y: np.ndarray) -> Task:
    """Classification when labels are strings or few distinct integers; regression otherwise."""
    if y.dtype.kind in "OUSb":
        return "classification"
    values = y.astype(np.float64)
    if not np.all(np.isfinite(values)):
        return "regression"
    distinct = np.unique(values)
    integral = bool(np.all(np.equal(np.mod(distinct, 1), 0)))
    if integral and distinct.size <= max(20, int(0.05 * values.size)) and distinct.size <= 100:
        return "classification"
    return "regression"


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map arbitrary labels to 0..K-1, keeping their names in sorted order."""
    if y.dtype.kind in "fc":
        values = y.astype(np.float64)
        if np.all(np.equal(np.mod(values, 1), 0)):
            y = values.astype(np.int64)
    classes, codes = np.unique(y, return_inverse=True)
    names = [str(c) for c in classes]
    return codes.astype(np.int64), names
