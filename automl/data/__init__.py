"""Data: built-in datasets, CSV/NPZ loading with checks, and the prepared split."""

from __future__ import annotations

from typing import Any

from automl.data._builtin import builtin_datasets, builtin_kind, load_builtin
from automl.data._checks import check_features, check_labels, detect_task, explain_task
from automl.data._columns import (
    COLUMN_TYPES,
    MISSING_TOKENS,
    Column,
    check_column_types,
    fit_columns,
)
from automl.data._dataset import Dataset, PreparedData, Task
from automl.data._files import MAX_NPZ_ARRAY_BYTES, load_csv, load_npz
from automl.data._prepare import prepare

__all__ = [
    "COLUMN_TYPES",
    "MAX_NPZ_ARRAY_BYTES",
    "MISSING_TOKENS",
    "Column",
    "Dataset",
    "PreparedData",
    "Task",
    "builtin_datasets",
    "builtin_kind",
    "check_column_types",
    "check_features",
    "check_labels",
    "detect_task",
    "explain_task",
    "fit_columns",
    "load_builtin",
    "load_csv",
    "load_npz",
    "load_source",
    "prepare",
]


def load_source(source: dict[str, Any]) -> Dataset:
    """Load a dataset again from the ``source`` record it was first loaded with (for replay)."""
    if "builtin" in source:
        return load_builtin(str(source["builtin"]))
    fmt = source.get("format")
    path = source.get("path")
    task = source.get("task")
    if fmt == "csv" and path:
        return load_csv(
            path, label=str(source["label"]), task=task, column_types=source.get("column_types")
        )
    if fmt == "npz" and path:
        return load_npz(path, task=task)
    from automl.errors import DataFormatError

    raise DataFormatError(f"cannot load the data again from {source!r}")
