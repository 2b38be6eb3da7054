"""The library's error hierarchy: one root, ``AutoMLError``.

Every error carries a sentence a person can act on. The CLI prints ``str(error)`` and exits 2; the
service turns these into 4xx responses.
"""

from __future__ import annotations


class AutoMLError(Exception):
    """Root of every error the engine raises on purpose."""


class SpecError(AutoMLError, ValueError):
    """A search spec or a name chosen in it is invalid (unknown optimizer, bad range...)."""


class DataError(AutoMLError, ValueError):
    """The data cannot be used for a search. Subclasses name the exact problem."""


class UnknownDatasetError(DataError):
    """A built-in dataset name that does not exist."""


class EmptyDataError(DataError):
    """The data has no rows or no feature columns."""


class NonFiniteValueError(DataError):
    """A feature or label is NaN or infinite."""


class RaggedRowsError(DataError):
    """Rows have different numbers of values."""


class NonNumericFeatureError(DataError):
    """A feature value is not a number."""


class ColumnTypeError(DataError):
    """A column type the user gave (``column_types``) that cannot apply; ``column`` names it."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


class LabelColumnNotFoundError(DataError):
    """The label column named by the user is not in the file's header."""


class SingleClassError(DataError):
    """A classification dataset whose labels hold one class only."""


class TooFewRowsError(DataError):
    """A class has too few rows to appear in each of train, validation and test."""


class PickledDataError(DataError):
    """An NPZ file holds pickled Python objects, which are never loaded."""


class DataFormatError(DataError):
    """A file that cannot be read as the declared format (missing arrays, bad CSV...)."""


class CandidateFailedError(AutoMLError):
    """Training one candidate failed; the search records it and goes on."""


class SearchAbortedError(AutoMLError):
    """The search cannot go on (e.g. too many consecutive candidate failures)."""


class SearchCancelledError(AutoMLError):
    """A callback asked the search to stop (a user cancelled the job)."""


class RecordError(AutoMLError):
    """An architecture record or run directory is missing or unreadable."""
