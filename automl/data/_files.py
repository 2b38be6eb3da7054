"""User data from CSV (header row, a named label column) and NPZ (arrays ``x`` and ``y``)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from automl.data._checks import check_features, check_labels, detect_task, encode_labels
from automl.data._dataset import Dataset, Task
from automl.errors import (
    DataFormatError,
    EmptyDataError,
    LabelColumnNotFoundError,
    NonNumericFeatureError,
    PickledDataError,
    RaggedRowsError,
)

Source = str | Path | bytes


def _read_bytes(source: Source) -> tuple[bytes, str, dict[str, Any]]:
    if isinstance(source, bytes):
        return source, "upload", {}
    path = Path(source)
    if not path.is_file():
        raise DataFormatError(f"no such file: {str(path)!r}")
    return path.read_bytes(), path.stem, {"path": str(path.resolve())}


def _finish(
    name: str,
    x: np.ndarray,
    y_raw: np.ndarray,
    task: Task | None,
    feature_names: list[str],
    source: dict[str, Any],
    input_shape: tuple[int, ...] | None = None,
) -> Dataset:
    check_features(x, feature_names)
    resolved: Task = task or detect_task(y_raw)
    if resolved == "classification":
        check_labels(y_raw, resolved)  # before encoding, so the message shows the user's label
        y, label_names = encode_labels(y_raw)
        return Dataset(name, x, y, resolved, feature_names, label_names, input_shape, source)
    try:
        y_float = y_raw.astype(np.float32)
    except (TypeError, ValueError):
        raise DataFormatError(
            "the task is regression but the labels are not numbers; "
            "declare the task as classification or fix the label column"
        ) from None
    check_labels(y_float, resolved)
    return Dataset(name, x, y_float, resolved, feature_names, None, input_shape, source)


def load_csv(
    source: Source, label: str, task: Task | None = None, name: str | None = None
) -> Dataset:
    """Load a CSV with a header row; ``label`` names the label column, the rest are features.

    Raises:
        EmptyDataError, RaggedRowsError, NonNumericFeatureError, LabelColumnNotFoundError,
        NonFiniteValueError, SingleClassError, DataFormatError.
    """
    raw, stem, src = _read_bytes(source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFormatError("the CSV file is not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if not rows:
        raise EmptyDataError(
            "the CSV file is empty; it needs a header row and at least one data row"
        )
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise LabelColumnNotFoundError(
            f"label column {label!r} is not in the CSV header; columns are: {', '.join(header)}"
        )
    body = rows[1:]
    if not body:
        raise EmptyDataError("the CSV file has a header but no data rows")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise RaggedRowsError(
                f"CSV line {i + 2} has {len(row)} values but the header has {len(header)} columns; "
                "every row needs one value per column"
            )
    label_idx = header.index(label)
    feature_idx = [j for j in range(len(header)) if j != label_idx]
    feature_names = [header[j] for j in feature_idx]
    if not feature_idx:
        raise EmptyDataError("the CSV file has only the label column; it needs feature columns too")
    x = np.empty((len(body), len(feature_idx)), dtype=np.float32)
    for i, row in enumerate(body):
        for k, j in enumerate(feature_idx):
            cell = row[j].strip()
            try:
                x[i, k] = float(cell)
            except ValueError:
                raise NonNumericFeatureError(
                    f"feature {header[j]!r} in CSV line {i + 2} is {cell!r}, not a number; "
                    "features must be numeric (encode categories as numbers first)"
                ) from None
    labels = np.array([row[label_idx].strip() for row in body])
    if any(v == "" for v in labels):
        empty = int(np.argwhere(labels == "")[0][0])
        raise EmptyDataError(f"the label in CSV line {empty + 2} is empty; every row needs a label")
    y_raw: np.ndarray = labels
    try:
        y_raw = labels.astype(np.float64)
    except ValueError:
        pass  # string labels: classification
    src.update({"format": "csv", "label": label})
    if task:
        src["task"] = task
    return _finish(name or stem, x, y_raw, task, feature_names, src)


def load_npz(source: Source, task: Task | None = None, name: str | None = None) -> Dataset:
    """Load an NPZ with arrays ``x`` (rows × features, or rows × shape) and ``y``.

    Pickled object arrays are refused (``allow_pickle=False``). An ``x`` of more than two dimensions
    keeps its per-row shape: 3-D ``(N, L, C)`` reads as sequences, 4-D ``(N, H, W, C)`` as images.

    Raises:
        PickledDataError, RaggedRowsError, DataFormatError, EmptyDataError, NonFiniteValueError,
        NonNumericFeatureError, SingleClassError.
    """
    raw, stem, src = _read_bytes(source)
    if raw.startswith(b"\x93NUMPY"):
        raise DataFormatError("the file is a single .npy array; save x and y with numpy.savez")
    if not raw.startswith(b"PK"):
        # np.load would take any other bytes for a pickle; never go near one
        raise DataFormatError("the file is not an NPZ archive (numpy.savez)")
    try:
        archive = np.load(io.BytesIO(raw), allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise DataFormatError("the file is not an NPZ archive (numpy.savez)") from None
    except ValueError as exc:
        raise DataFormatError(f"the file cannot be read as NPZ: {exc}") from None
    with archive:
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise DataFormatError(
                f"the NPZ file has no array named {missing[0]!r}; it holds: "
                f"{', '.join(archive.files) or 'nothing'} (expected 'x' and 'y')"
            )
        try:
            x_any = archive["x"]
            y_any = archive["y"]
        except ValueError:
            raise PickledDataError(
                "the NPZ file holds pickled Python objects (ragged or object arrays); "
                "pickles are never loaded — save plain numeric arrays instead"
            ) from None
    if x_any.ndim == 0 or x_any.shape[0] == 0:
        raise EmptyDataError("array 'x' has no rows")
    if x_any.dtype.kind not in "biuf":
        raise NonNumericFeatureError(
            f"array 'x' has dtype {x_any.dtype}; features must be numbers (int or float)"
        )
    if y_any.ndim != 1:
        raise DataFormatError(f"array 'y' must be 1-D (one label per row), got shape {y_any.shape}")
    if y_any.shape[0] != x_any.shape[0]:
        raise RaggedRowsError(
            f"'x' has {x_any.shape[0]} rows but 'y' has {y_any.shape[0]} labels; they must match"
        )
    input_shape: tuple[int, ...] | None = None
    if x_any.ndim == 3:
        input_shape = (int(x_any.shape[1]), int(x_any.shape[2]))
    elif x_any.ndim == 4:
        input_shape = tuple(int(s) for s in x_any.shape[1:])
    elif x_any.ndim > 4:
        raise DataFormatError(f"array 'x' has {x_any.ndim} dimensions; at most 4 are supported")
    x = x_any.reshape(x_any.shape[0], -1).astype(np.float32)
    names = [f"x{i}" for i in range(x.shape[1])]
    src.update({"format": "npz"})
    if task:
        src["task"] = task
    return _finish(name or stem, x, y_any, task, names, src, input_shape)
