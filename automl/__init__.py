"""automl: AdaNet-style neural architecture search on Keras 3.

The engine library. It imports no FastAPI, SQLAlchemy or Ray, and imports TensorFlow only when
a search or model needs it, so spec checks and data loading stay quick.
"""

from __future__ import annotations

from automl.errors import (
    AutoMLError,
    CandidateFailedError,
    DataError,
    SearchAbortedError,
    SpecError,
)
from automl.spec import SearchSpec

__version__ = "0.1.0"

__all__ = [
    "AutoMLError",
    "CandidateFailedError",
    "DataError",
    "SearchAbortedError",
    "SearchSpec",
    "SpecError",
    "__version__",
]
