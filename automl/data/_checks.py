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


# Integer labels read as classes only when they are few, both absolutely and per row.
MAX_AUTO_CLASSES = 20
MIN_ROWS_PER_AUTO_CLASS = 10


def explain_task(y: np.ndarray) -> tuple[Task, str]:
    """Choose the task from the labels and say which rule chose it.

    The rule is conservative, because integers are as often a quantity (an age, a count, a
    score) as a class index, and reading a quantity as classes throws away its order:

    - text labels, or true/false: classification;
    - NaN or infinite values, or any value that is not a whole number: regression;
    - whole numbers with K distinct values in N rows: classification when K <= 2, or when
      K <= 20 and N >= 10 * K (at least ten rows per value on average); regression otherwise.

    A task the user gives is always used as given; this rule is only the default. The returned
    sentence is stored with the dataset (``Dataset.task_rule``) so a user can see why, e.g.
    ``"12 integer classes in 1797 rows: classification"`` or
    ``"57 distinct integers in 442 rows: regression (fewer than 10 rows per value)"``.
    """
    if y.dtype.kind in "OUS":
        return "classification", "text labels: classification"
    if y.dtype.kind == "b":
        return "classification", "true/false labels: classification"
    values = y.astype(np.float64)
    if not np.all(np.isfinite(values)):
        return "regression", "NaN or infinite values: regression"
    distinct = np.unique(values)
    if not np.all(np.equal(np.mod(distinct, 1), 0)):
        return "regression", "non-integer values: regression"
    k, n = int(distinct.size), int(values.size)
    if k <= 2 or (k <= MAX_AUTO_CLASSES and n >= MIN_ROWS_PER_AUTO_CLASS * k):
        return "classification", f"{k} integer classes in {n} rows: classification"
    why = (
        f"more than {MAX_AUTO_CLASSES} values"
        if k > MAX_AUTO_CLASSES
        else f"fewer than {MIN_ROWS_PER_AUTO_CLASS} rows per value"
    )
    return "regression", f"{k} distinct integers in {n} rows: regression ({why})"


def detect_task(y: np.ndarray) -> Task:
    """The task :func:`explain_task` chooses, without the reason."""
    return explain_task(y)[0]


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map arbitrary labels to 0..K-1, keeping their names in sorted order."""
    if y.dtype.kind in "fc":
        values = y.astype(np.float64)
        if np.all(np.equal(np.mod(values, 1), 0)):
            y = values.astype(np.int64)
    classes, codes = np.unique(y, return_inverse=True)
    names = [str(c) for c in classes]
    return codes.astype(np.int64), names
