"""User data from CSV (header row, a named label column) and NPZ (arrays ``x`` and ``y``)."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl.data._checks import check_features, check_labels, encode_labels, explain_task
from automl.data._columns import Column, detect_columns, is_missing, needs_cells
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

# Arrays ``x`` and ``y`` of an NPZ together may take at most this many bytes once decompressed.
# np.load inflates a member in full, so a small archive could otherwise fill the memory.
MAX_NPZ_ARRAY_BYTES = 1_000_000_000


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
    columns: list[Column] | None = None,
) -> Dataset:
    if x.dtype != object:  # raw cells were checked column by column
        check_features(x, feature_names)
    resolved, rule = (task, "given by the user") if task else explain_task(y_raw)
    if resolved == "classification":
        check_labels(y_raw, resolved)  # before encoding, so the message shows the user's label
        y, label_names = encode_labels(y_raw)
        return Dataset(
            name,
            x,
            y,
            resolved,
            feature_names,
            label_names,
            input_shape,
            source,
            task_rule=rule,
            columns=columns,
        )
    try:
        y_float = y_raw.astype(np.float32)
    except (TypeError, ValueError):
        raise DataFormatError(
            "the task is regression but the labels are not numbers; "
            "declare the task as classification or fix the label column"
        ) from None
    check_labels(y_float, resolved)
    return Dataset(
        name,
        x,
        y_float,
        resolved,
        feature_names,
        None,
        input_shape,
        source,
        task_rule=rule,
        columns=columns,
    )


def _csv_rows(text: str) -> list[list[str]]:
    """Parse CSV text with any line ending (\\n, \\r\\n, or old Mac \\r) into its non-blank rows."""
    # newline="" hands the csv module the line endings untouched, as its documentation asks:
    # it splits rows on any of them and keeps line breaks inside quoted values
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DataFormatError(
                f"CSV line {reader.line_num} has a value longer than {csv.field_size_limit():,} "
                "characters; values are numbers or short class names, so this is most likely "
                'an unclosed quote (") that runs on over the lines after it — close or remove it'
            ) from None
        raise DataFormatError(
            f"the CSV file cannot be parsed at line {reader.line_num}: {exc}"
        ) from None
    return [r for r in rows if r and any(cell.strip() for cell in r)]


# separators that spreadsheets write instead of commas (";" where the comma is the decimal mark)
_OTHER_SEPARATORS = {";": "';' (semicolons)", "\t": "tabs", "|": "'|' (pipes)"}


def _check_separator(header: list[str]) -> None:
    """Refuse a file whose header is one column holding another separator, with a hint.

    Reading it with that separator instead would guess at the numbers too: a file separated by
    semicolons usually writes decimals with a comma ("1,5"), which would then be text.
    """
    if len(header) != 1:
        return
    for sep, words in _OTHER_SEPARATORS.items():
        if sep in header[0]:
            raise DataFormatError(
                f"the CSV header is one column, {header[0]!r}: the file looks separated by "
                f"{words}, not commas; save it as CSV with commas as the separator (and dots as "
                "the decimal mark)"
            )


def _check_header(header: list[str]) -> None:
    """Refuse repeated column names: the label would be taken from one column of that name and
    the other would become a feature, leaking the label into the inputs."""
    seen: dict[str, list[int]] = {}
    for j, name in enumerate(header):
        seen.setdefault(name, []).append(j + 1)
    repeated = [(name, cols) for name, cols in seen.items() if len(cols) > 1]
    if repeated:
        listed = ", ".join(
            f"{name!r} (columns {', '.join(map(str, cols[:-1]))} and {cols[-1]})"
            for name, cols in repeated
        )
        raise DataFormatError(
            f"the CSV header has duplicate column names: {listed}; every column needs its own "
            "name — rename or drop the copies"
        )


def load_csv(
    source: Source,
    label: str,
    task: Task | None = None,
    name: str | None = None,
    *,
    column_types: Mapping[str, Any] | None = None,
    columns: Sequence[Mapping[str, Any]] | None = None,
) -> Dataset:
    """Load a CSV with a header row; ``label`` names the label column, the rest are features.

    Each feature column is typed numeric, categorical or ignore (see
    :mod:`automl.data._columns` for the rule and the missing-value spellings);
    ``column_types`` overrides the rule per column (``{"city": "categorical"}``), and
    ``columns`` — the record a dataset was stored with (``Dataset.columns`` as dicts) — reads it
    again with the types it had. A table whose columns are all numeric with no missing cell
    gives float32 features as before; any other gives its raw cells (``Dataset.raw_cells``).

    Raises:
        EmptyDataError, RaggedRowsError, ColumnTypeError, LabelColumnNotFoundError,
        NonFiniteValueError, SingleClassError, DataFormatError.
    """
    raw, stem, src = _read_bytes(source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFormatError("the CSV file is not UTF-8 text") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataFormatError(
            f"the CSV file holds a NUL character (line {line}); a CSV is plain text — this looks "
            "like a binary file, or text saved as UTF-16: save it as UTF-8"
        )
    rows = _csv_rows(text)
    if not rows:
        raise EmptyDataError(
            "the CSV file is empty; it needs a header row and at least one data row"
        )
    header = [h.strip() for h in rows[0]]
    _check_separator(header)
    _check_header(header)
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
    labels = np.array([row[label_idx].strip() for row in body])
    for i, value in enumerate(labels):
        if is_missing(value):
            what = "empty" if value == "" else f"{str(value)!r}, a missing value"
            raise EmptyDataError(
                f"the label in CSV line {i + 2} is {what}; every row needs a label — "
                "drop the rows without one"
            )
    cells = [[row[j].strip() for row in body] for j in feature_idx]
    typed = detect_columns(
        feature_names, cells, column_types=column_types, stored=columns, label=label
    )
    if needs_cells(typed):
        x = np.empty((len(body), len(feature_idx)), dtype=object)
        for k, column in enumerate(cells):
            x[:, k] = column
    else:
        x = np.array(cells, dtype=np.float64).T.astype(np.float32)
    y_raw: np.ndarray = labels
    try:
        y_raw = labels.astype(np.float64)
    except ValueError:
        pass  # string labels: classification
    src.update({"format": "csv", "label": label})
    if task:
        src["task"] = task
    given = {c.name: c.type for c in typed if c.given or columns is not None}
    if given:
        src["column_types"] = given  # replay reads the file with the same types
    return _finish(name or stem, x, y_raw, task, feature_names, src, columns=typed)


def _size(n: int) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.2f} MB"


def _too_big(what: str, size: int, limit: int) -> DataFormatError:
    return DataFormatError(
        f"{what} {_size(size)} once decompressed; the arrays of an NPZ file may take at most "
        f"{_size(limit)} together — upload a sample of the rows, or smaller values "
        "(float32 rather than float64)"
    )


_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _check_npz_members(archive: zipfile.ZipFile, limit: int) -> None:
    """Check ``x`` and ``y`` from the zip directory and their .npy headers, before reading them.

    np.load decompresses a whole member into an array of the size its header declares, so both
    numbers are checked: the member's uncompressed size (``ZipInfo.file_size``; reading never
    yields more than that) and the header's shape × item size (what numpy allocates up front).
    """
    names = archive.namelist()
    members = {n.removesuffix(".npy"): n for n in names}  # the keys np.load's NpzFile uses
    members.update({n: n for n in names})
    total = 0
    for key in ("x", "y"):
        info = archive.getinfo(members[key])
        if info.file_size > limit:
            raise _too_big(f"array {key!r} takes", info.file_size, limit)
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = _NPY_HEADER_READERS.get(version)
                if read_header is not None:
                    shape, _, dtype = read_header(member)
                    header_len = member.tell()
        except ValueError:
            raise DataFormatError(
                f"member {info.filename!r} of the NPZ file is not a numpy array; "
                "save x and y with numpy.savez"
            ) from None
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            raise DataFormatError(f"the NPZ file is damaged or encrypted: {exc}") from None
        if read_header is None:
            raise DataFormatError(
                f"array {key!r} uses .npy format version {version[0]}.{version[1]}, which only "
                "structured arrays need; save plain numeric arrays"
            )
        if dtype.hasobject:
            raise PickledDataError(
                "the NPZ file holds pickled Python objects (ragged or object arrays); "
                "pickles are never loaded — save plain numeric arrays instead"
            )
        nbytes = math.prod(int(d) for d in shape) * dtype.itemsize
        if nbytes > limit:
            raise _too_big(f"array {key!r} takes", nbytes, limit)
        if nbytes > info.file_size - header_len:
            raise DataFormatError(
                f"array {key!r} says it holds {nbytes} bytes but the file has "
                f"{info.file_size - header_len}; the NPZ file is damaged"
            )
        total += nbytes
    if total > limit:
        raise _too_big("arrays 'x' and 'y' take", total, limit)


def load_npz(
    source: Source,
    task: Task | None = None,
    name: str | None = None,
    *,
    max_array_bytes: int = MAX_NPZ_ARRAY_BYTES,
) -> Dataset:
    """Load an NPZ with arrays ``x`` (rows × features, or rows × shape) and ``y``.

    Pickled object arrays are refused (``allow_pickle=False``). An ``x`` of more than two dimensions
    keeps its per-row shape: 3-D ``(N, L, C)`` reads as sequences, 4-D ``(N, H, W, C)`` as images.
    ``x`` and ``y`` together may take at most ``max_array_bytes`` once decompressed (default
    ``MAX_NPZ_ARRAY_BYTES``, 1 GB); this is checked from the archive's directory and the arrays'
    headers before anything is decompressed, so a zip bomb is refused at the cost of its headers.

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
        _check_npz_members(archive.zip, max_array_bytes)
        try:
            x_any = archive["x"]
            y_any = archive["y"]
        except ValueError as exc:
            raise DataFormatError(f"the NPZ arrays cannot be read: {exc}") from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DataFormatError(f"the NPZ file is damaged: {exc}") from None
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
