"""Dataset meta-features and the similarity of two datasets, for ranking past configurations.

A history of finished candidates (their hyperparameters and scores, with the meta-features of
the data they were trained on) is only useful for new data if one can tell which past datasets
resemble it. The meta-features here are cheap facts about a dataset — task, rows, features,
input shape, classes and how balanced they are — computed with numpy alone, from a
:class:`~automl.data.Dataset`, a :class:`~automl.data.PreparedData` (its whole dataset, not a
split, so the same data gives the same meta-features however it was split) or the summary a
service stores for an upload (:func:`meta_from_counts`).

:func:`similarity` turns two of them into a number in [0, 1]; see its docstring for the
formula. It is a heuristic in the spirit of meta-learning warm starts (Feurer et al., 2015:
"Initializing Bayesian hyperparameter optimization via meta-learning"), kept deliberately
simple and documented so that its ranking can be explained to a user.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Meta-features of two datasets whose similarity is at least this are "similar": the
# dashboard counts their configurations and a warm start draws only on them. exp(-1.2) ≈ 0.3:
# about a 16-fold difference in rows or features, or a different input rank plus a few-fold
# difference in size.
SIMILAR = 0.3

# The weight of each term of the distance (see ``similarity``).
WEIGHTS: dict[str, float] = {
    "rows": 1.0,
    "features": 1.0,
    "classes": 1.0,
    "class_balance": 1.0,
    "input_rank": 1.0,
}


def meta_from_counts(
    task: str,
    rows: int,
    features: int,
    input_shape: Sequence[int] | None,
    class_counts: Sequence[int] | Mapping[str, int] | None,
) -> dict[str, Any]:
    """Meta-features from a dataset's summary (what a service keeps of an upload).

    Args:
        task: ``classification`` or ``regression``.
        rows: Rows of the whole dataset (a shipped test split included).
        features: Columns of a row as loaded (before any encoding of a table's cells).
        input_shape: The shape of one row before flattening (``None`` for a table).
        class_counts: Rows per class (classification), as a list or a name → count mapping.

    Returns:
        A JSON-serialisable dict: ``task``, ``rows``, ``features``, ``input_shape``,
        ``input_rank`` (1 for a table, 2 for a sequence, 3 for an image), ``classes``,
        ``class_balance`` (rows of the smallest class over rows of the largest; 1 when
        balanced, ``None`` for regression) and ``class_entropy`` (the entropy of the class
        distribution over its maximum log(classes); ``None`` for regression).
    """
    counts = (
        np.asarray(
            list(class_counts.values()) if isinstance(class_counts, Mapping) else class_counts,
            dtype=np.float64,
        )
        if class_counts is not None and task == "classification"
        else np.zeros(0)
    )
    balance: float | None = None
    entropy: float | None = None
    if task == "classification" and counts.size:
        largest = float(counts.max())
        balance = float(counts.min()) / largest if largest > 0 else 0.0
        p = counts[counts > 0] / max(float(counts.sum()), 1.0)
        entropy = float(-(p * np.log(p)).sum() / math.log(counts.size)) if counts.size > 1 else 1.0
    shape = [int(v) for v in input_shape] if input_shape else None
    return {
        "task": task,
        "rows": int(rows),
        "features": int(features),
        "input_shape": shape,
        "input_rank": len(shape) if shape else 1,
        "classes": int(counts.size) if task == "classification" else 0,
        "class_balance": None if balance is None else round(balance, 6),
        "class_entropy": None if entropy is None else round(entropy, 6),
    }


def meta_features(data: Any) -> dict[str, Any]:
    """Meta-features of a :class:`~automl.data.Dataset` or :class:`~automl.data.PreparedData`
    (of its whole dataset); see :func:`meta_from_counts` for the keys."""
    dataset = getattr(data, "dataset", data)
    counts = dataset.class_counts() if dataset.task == "classification" else None
    return meta_from_counts(
        dataset.task, dataset.n_rows, dataset.n_features, dataset.input_shape, counts
    )


def _log_gap(a: Any, b: Any) -> float:
    """|log10 a − log10 b| of two counts (at least 1 each)."""
    return abs(math.log10(max(float(a or 0), 1.0)) - math.log10(max(float(b or 0), 1.0)))


def distance_terms(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, float]:
    """The per-meta-feature gaps :func:`similarity` combines (each 0 for equal values)."""
    balance_a, balance_b = a.get("class_balance"), b.get("class_balance")
    return {
        "rows": _log_gap(a.get("rows"), b.get("rows")),
        "features": _log_gap(a.get("features"), b.get("features")),
        "classes": _log_gap(a.get("classes"), b.get("classes")),
        "class_balance": (
            abs(float(balance_a) - float(balance_b))
            if balance_a is not None and balance_b is not None
            else 0.0
        ),
        "input_rank": 0.0 if a.get("input_rank", 1) == b.get("input_rank", 1) else 1.0,
    }


def similarity(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """How alike two datasets are, from their meta-features: a number in [0, 1].

    Datasets of different tasks are not alike at all (0): a regressor's configuration says
    little about a classifier. Otherwise ``exp(-d)`` with the weighted Euclidean distance

        d² = Δlog10(rows)² + Δlog10(features)² + Δlog10(classes)²
             + Δ(class balance)² + [input ranks differ]

    (weights in ``WEIGHTS``, all 1): 1 for identical meta-features; a 10-fold difference in
    rows alone gives exp(-1) ≈ 0.37, an image against a table of the same size exp(-1) too.
    Logarithms because what matters for a network's size is the order of magnitude of the
    data; the input rank because it decides which subnetwork families apply.
    """
    if a.get("task") != b.get("task"):
        return 0.0
    terms = distance_terms(a, b)
    d = math.sqrt(sum(WEIGHTS[k] * v * v for k, v in terms.items()))
    return math.exp(-d)
