"""The columns of a table: their types (detected, or given by the user), and the statistics the
model's preprocessing is fitted with — on the training split only.

A CSV's feature columns are read as text cells and each gets one type:

- ``numeric``: every cell that is not missing is a number;
- ``categorical``: text, or whole numbers with few distinct values;
- ``ignore``: not used by the model — free text with too many distinct values, a constant
  column, or a column the user chose to ignore.

The detection rule, applied to the cells that are not missing (K distinct values in n rows):

1. a column whose every cell is missing is refused (``EmptyDataError``), unless the user
   ignores it;
2. one value in every row (and no missing cell): ``ignore`` (constant). A column with one value
   and some missing cells is kept: whether a value is there is itself information;
3. numbers (each cell matches ``NUMBER_PATTERN``): ``categorical`` when they are whole
   numbers with 3 <= K <= ``MAX_INTEGER_CATEGORIES`` (10) and n >= ``MIN_ROWS_PER_CATEGORY``
   (5) * K — codes such as a class 1/2/3 or a rating 1..5 —, ``numeric`` otherwise. Two whole
   numbers (a 0/1 flag) stay numeric: one input carries the same information as a one-hot pair;
4. text (any other cell): ``categorical`` when K <= ``MAX_TEXT_CATEGORIES`` (50) and at most
   half the rows hold a value of their own (K <= n / 2); otherwise ``ignore`` (free text: names,
   identifiers, comments).

A cell is missing when, stripped of surrounding spaces and lower-cased, it is one of
``MISSING_TOKENS``: empty, ``?``, ``NA``, ``N/A``, ``NaN``, ``null`` or ``None``. Missing cells are
allowed in features; a label that is missing is refused. A number that is infinite (``inf``,
``1e999``) is refused in a numeric column.

``column_types`` (``{"col": "numeric" | "categorical" | "ignore"}``) overrides the rule per
column; ``numeric`` on a column that holds text is refused with the first such cell.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import numpy as np

from automl.errors import ColumnTypeError, EmptyDataError, NonFiniteValueError

ColumnType = Literal["numeric", "categorical", "ignore"]
COLUMN_TYPES: tuple[str, ...] = ("numeric", "categorical", "ignore")

# compared with a cell stripped of surrounding spaces and lower-cased
MISSING_TOKENS: tuple[str, ...] = ("", "?", "na", "n/a", "nan", "null", "none")
_MISSING = frozenset(MISSING_TOKENS)
# the same set as one regular expression (RE2 and Python), for the model's own layers
MISSING_PATTERN = "(?:" + "|".join(re.escape(t) for t in MISSING_TOKENS) + ")"
# a number as TensorFlow's string-to-number parses it the same as Python's float(); ASCII digits
# only (Python's float() also reads "1_000" and other scripts' digits, TensorFlow does not)
NUMBER_PATTERN = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# a whole number written with a sign, leading zeros or a zero fraction ("+3", "03", "3.0"): a
# category token is its plain form ("3"), so those spellings are one category
INTEGER_PATTERN = r"\+?(-?)0*([0-9]+)(?:\.0*)?"
INTEGER_REWRITE = r"\1\2"

MAX_INTEGER_CATEGORIES = 10
MIN_ROWS_PER_CATEGORY = 5
MAX_TEXT_CATEGORIES = 50
# categories kept per column (the most frequent in training); rarer ones share the
# out-of-vocabulary bucket with values never seen in training
MAX_VOCABULARY = 256
# StringLookup's name for its out-of-vocabulary bucket; a category may never equal it
OOV_TOKEN = "\x00[out of vocabulary]"
# float32 is what the model computes in: a larger number is infinite there
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_NUMBER = re.compile(NUMBER_PATTERN)
_INTEGER = re.compile(INTEGER_PATTERN)
_INFINITY_WORDS = frozenset({"inf", "infinity"})


def is_missing(cell: str) -> bool:
    """Whether a (stripped) cell is one of the missing-value spellings."""
    return cell.lower() in _MISSING


def is_number(cell: str) -> bool:
    """Whether a (stripped) cell is a finite number the model reads as one."""
    return _NUMBER.fullmatch(cell) is not None and abs(float(cell)) <= _FLOAT32_MAX


def category_token(cell: str) -> str:
    """The token a (stripped, non-missing) cell of a categorical column is looked up by."""
    match = _INTEGER.fullmatch(cell)
    if match is None:
        return cell
    token = match.expand(INTEGER_REWRITE)
    return "0" if token == "-0" else token


@dataclass
class Column:
    """One input column of a table, as detected (or given) on upload.

    Attributes:
        name: The header's name.
        type: ``numeric``, ``categorical`` or ``ignore``.
        reason: Which rule chose the type, e.g. ``"3 text values: categorical"``,
            ``"constant: every value is 'x'"``, ``"given by the user (detected: numbers:
            numeric)"``.
        missing_rate: Share of missing cells over all rows.
        distinct: Distinct values among the cells that are not missing.
        given: Whether the user chose the type (``column_types``).
    """

    name: str
    type: ColumnType
    reason: str
    missing_rate: float = 0.0
    distinct: int = 0
    given: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        return cls(
            name=str(data["name"]),
            type=cast(ColumnType, data["type"]),
            reason=str(data.get("reason", "")),
            missing_rate=float(data.get("missing_rate", 0.0)),
            distinct=int(data.get("distinct", 0)),
            given=bool(data.get("given", False)),
        )


@dataclass
class _Profile:
    rows: int
    missing: int
    distinct: int
    numbers: bool  # every present cell is a number (or an infinity)
    whole: bool
    first_text: int | None  # row of the first cell that is not a number
    first_infinite: int | None
    single: str | None  # the value, when there is one

    @property
    def present(self) -> int:
        return self.rows - self.missing


def _profile(values: Sequence[str]) -> _Profile:
    present = [v for v in values if not is_missing(v)]
    missing = len(values) - len(present)
    first_text = first_infinite = None
    numbers: list[float] = []
    for i, v in enumerate(values):
        if is_missing(v):
            continue
        if _NUMBER.fullmatch(v):
            f = float(v)
            if abs(f) > _FLOAT32_MAX:
                first_infinite = i if first_infinite is None else first_infinite
            else:
                numbers.append(f)
        elif v.lower().lstrip("+-") in _INFINITY_WORDS:
            first_infinite = i if first_infinite is None else first_infinite
        elif first_text is None:
            first_text = i
    all_numbers = first_text is None and bool(present)
    distinct = len(set(numbers)) if all_numbers and first_infinite is None else len(set(present))
    return _Profile(
        rows=len(values),
        missing=missing,
        distinct=distinct,
        numbers=all_numbers,
        whole=all_numbers and all(f == int(f) for f in numbers),
        first_text=first_text,
        first_infinite=first_infinite,
        single=present[0] if distinct == 1 else None,
    )


def _detect(p: _Profile) -> tuple[ColumnType | None, str]:
    """The rule of the module docstring; ``None`` for a column with no value at all."""
    k, n = p.distinct, p.present
    if not n:
        return None, f"entirely empty (all {p.rows} values are missing)"
    if k == 1 and not p.missing:
        return "ignore", f"constant: every value is {p.single!r}"
    if p.numbers:
        if p.whole and 3 <= k <= MAX_INTEGER_CATEGORIES and n >= MIN_ROWS_PER_CATEGORY * k:
            return "categorical", f"{k} whole-number values in {n} rows: categorical"
        if p.whole and 3 <= k <= MAX_INTEGER_CATEGORIES:
            return "numeric", (
                f"{k} whole-number values in {n} rows: numeric "
                f"(fewer than {MIN_ROWS_PER_CATEGORY} rows per value)"
            )
        return "numeric", "numbers: numeric"
    if k > MAX_TEXT_CATEGORIES:
        return "ignore", f"free text: {k} distinct values (more than {MAX_TEXT_CATEGORIES})"
    if 2 * k > n:
        return "ignore", f"free text: {k} distinct values in {n} rows (most values are unique)"
    return "categorical", f"{k} text values: categorical"


def check_column_types(
    column_types: Mapping[str, Any], names: Sequence[str], label: str | None = None
) -> dict[str, ColumnType]:
    """Refuse an override that names no feature column or no type; ``ColumnTypeError`` names
    the column."""
    if not isinstance(column_types, Mapping):
        raise ColumnTypeError(
            'column_types must be an object such as {"city": "categorical"}', column=""
        )
    out: dict[str, ColumnType] = {}
    for col, kind in column_types.items():
        col = str(col)
        if label is not None and col == label:
            raise ColumnTypeError(
                f"{col!r} is the label column; column_types applies to the feature columns",
                column=col,
            )
        if col not in names:
            raise ColumnTypeError(
                f"there is no column {col!r}; the feature columns are: {', '.join(names)}",
                column=col,
            )
        if kind not in COLUMN_TYPES:
            raise ColumnTypeError(
                f"{kind!r} is not a column type; use numeric, categorical or ignore",
                column=col,
            )
        out[col] = cast(ColumnType, kind)
    return out


def detect_columns(
    names: Sequence[str],
    columns: Sequence[Sequence[str]],
    *,
    column_types: Mapping[str, Any] | None = None,
    stored: Sequence[Mapping[str, Any]] | None = None,
    label: str | None = None,
    first_line: int = 2,
) -> list[Column]:
    """Type every column (``columns[j]`` holds column ``j``'s stripped cells, one per row).

    ``column_types`` are the user's overrides; ``stored`` is the record a dataset was stored
    with (its types and reasons are used as they are, so a dataset reads the same as on upload).
    ``first_line`` is the CSV line of the first row, for messages.

    Raises:
        ColumnTypeError: An override that does not fit its column.
        EmptyDataError: A column with no value at all, or no usable column.
        NonFiniteValueError: An infinite number in a numeric column.
    """
    given = check_column_types(column_types or {}, names, label)
    kept: dict[str, Mapping[str, Any]] = {}
    if stored is not None:
        kept = {str(c["name"]): c for c in stored}
        if sorted(kept) != sorted(names):
            from automl.errors import DataFormatError

            raise DataFormatError(
                "the stored column record does not match the file's columns "
                f"({', '.join(sorted(kept))} against {', '.join(names)})"
            )
    out: list[Column] = []
    for name, values in zip(names, columns, strict=True):
        p = _profile(values)
        detected, why = _detect(p)
        if name in kept:
            kind, reason = cast(ColumnType, kept[name]["type"]), str(kept[name].get("reason", ""))
            is_given = bool(kept[name].get("given", False))
        elif name in given:
            kind, is_given = given[name], True
            reason = "given by the user" + (f" (detected: {why})" if detected else "")
        elif detected is None:
            raise EmptyDataError(
                f"column {name!r} is {why}; remove it, or ignore it with column_types "
                f'{{"{name}": "ignore"}}'
            )
        else:
            kind, reason, is_given = detected, why, False
        if kind != "ignore" and not p.present:
            raise ColumnTypeError(f"column {name!r} is {why}; it can only be ignored", column=name)
        if kind == "numeric" and p.first_text is not None:
            raise ColumnTypeError(
                f"column {name!r} cannot be numeric: CSV line {p.first_text + first_line} "
                f"holds {values[p.first_text]!r}, not a number",
                column=name,
            )
        if kind == "numeric" and p.first_infinite is not None:
            raise NonFiniteValueError(
                f"feature {name!r} in CSV line {p.first_infinite + first_line} is "
                f"{values[p.first_infinite]!r}, not a finite number; fill or drop it"
            )
        out.append(
            Column(
                name=name,
                type=kind,
                reason=reason,
                missing_rate=round(p.missing / max(p.rows, 1), 6),
                distinct=p.distinct,
                given=is_given,
            )
        )
    if all(c.type == "ignore" for c in out):
        why_not = "; ".join(f"{c.name!r}: {c.reason}" for c in out)
        raise EmptyDataError(
            f"the table has no usable feature column ({why_not}); give column_types to use one"
        )
    return out


def needs_cells(columns: Sequence[Column]) -> bool:
    """Whether a table must reach the model as raw cells: a plain numeric matrix (every column
    numeric, none missing, none ignored) keeps the float32 path of built-in datasets."""
    return any(c.type != "numeric" or c.missing_rate > 0 for c in columns)


# ---- fitting on the training split -----------------------------------------------------------
def fit_columns(cells: np.ndarray, columns: Sequence[Column]) -> list[dict[str, Any]]:
    """The statistics of each column's preprocessing, from the training rows ``cells`` (an
    object array of stripped text cells, one column per entry of ``columns``).

    numeric: ``fill`` (the median of the values present) for missing cells, then ``mean`` and
    ``std`` of the filled values (a constant column keeps std 1, as built-in data does);
    categorical: ``vocabulary`` (the categories seen, most frequent first, at most
    ``MAX_VOCABULARY``) and ``fill`` (the most frequent) for missing cells; both add a
    missing-indicator feature (``indicator``) when the column had missing cells in training.
    ``missing_rate`` is the training split's. JSON-serialisable: it travels with the model.
    """
    fitted: list[dict[str, Any]] = []
    for j, col in enumerate(columns):
        values = [str(v) for v in cells[:, j]]
        missing = np.array([is_missing(v) for v in values], dtype=bool)
        present = [v for v, m in zip(values, missing, strict=True) if not m]
        entry: dict[str, Any] = {
            "name": col.name,
            "type": col.type,
            "missing_rate": round(float(missing.mean()) if len(values) else 0.0, 6),
        }
        indicator = bool(missing.any())
        if col.type == "ignore":
            entry.update(reason=col.reason, encoding=f"dropped ({col.reason})")
        elif col.type == "numeric":
            numbers = np.array([float(v) for v in present], dtype=np.float64)
            median = float(np.median(numbers)) if numbers.size else 0.0
            filled = np.full(len(values), median, dtype=np.float32)
            filled[~missing] = numbers.astype(np.float32)
            mean = float(filled.mean(dtype=np.float32)) if len(values) else 0.0
            std = float(filled.std(dtype=np.float32)) if len(values) else 1.0
            std = std if std >= 1e-7 else 1.0
            encoding = f"standardised (training mean {mean:.4g}, std {std:.4g})"
            if indicator:
                encoding += f"; missing → training median {median:.4g}, plus a missing indicator"
            entry.update(fill=median, mean=mean, std=std, indicator=indicator, encoding=encoding)
        else:
            counts = Counter(category_token(v) for v in present)
            counts.pop(OOV_TOKEN, None)
            vocabulary = sorted(counts, key=lambda t: (-counts[t], t))[:MAX_VOCABULARY]
            frequent = vocabulary[0] if vocabulary else "(none)"
            vocabulary = vocabulary or [frequent]
            encoding = (
                f"one-hot over {len(vocabulary)} categories + 1 out-of-vocabulary bucket "
                "(values not seen in training)"
            )
            if indicator:
                encoding += f"; missing → most frequent {frequent!r}, plus a missing indicator"
            entry.update(
                fill=frequent, vocabulary=vocabulary, indicator=indicator, encoding=encoding
            )
        fitted.append(entry)
    return fitted


def encoded_layout(fitted: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Column indices in the order the encoded features come: the numeric columns (one
    standardised value each), then one missing indicator per column that has one, then each
    categorical column's one-hot (out-of-vocabulary bucket first)."""
    return {
        "numeric": [j for j, c in enumerate(fitted) if c["type"] == "numeric"],
        "indicator": [
            j for j, c in enumerate(fitted) if c["type"] != "ignore" and c.get("indicator")
        ],
        "categorical": [j for j, c in enumerate(fitted) if c["type"] == "categorical"],
    }


def encoded_names(fitted: Sequence[Mapping[str, Any]]) -> list[str]:
    """One name per encoded feature, in the order of :func:`encoded_layout`."""
    layout = encoded_layout(fitted)
    names = [str(fitted[j]["name"]) for j in layout["numeric"]]
    names += [f"{fitted[j]['name']} is missing" for j in layout["indicator"]]
    for j in layout["categorical"]:
        c = fitted[j]
        names.append(f"{c['name']}: out of vocabulary")
        names += [f"{c['name']}={t}" for t in c["vocabulary"]]
    return names
