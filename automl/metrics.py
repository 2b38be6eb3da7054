"""What a model's predictions score: classification and regression metrics as plain JSON.

Every number here comes from ``sklearn.metrics``; this module only chooses which ones, makes
them JSON-serialisable (Python floats and ints, ``None`` where a metric is undefined, never NaN,
which PostgreSQL's JSON rejects) and builds the trivial predictors reported beside a model —
the majority class, the training mean — so a model that learnt nothing shows it at a glance.

It also names the one metric the evaluation phase and the choice of the best member compare:
balanced accuracy when the search trains with class weights (plain accuracy would reward a
model that predicts only the majority class), accuracy otherwise, MSE for regression.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def _number(value: Any) -> float | None:
    """A finite Python float, or None for an undefined metric (NaN, ±inf)."""
    v = float(value)
    return v if math.isfinite(v) else None


def selection_metric(task: str, class_weighted: bool) -> tuple[str, bool]:
    """The metric keep/discard rules compare, and whether higher is better.

    Args:
        task: ``classification`` or ``regression``.
        class_weighted: The search trains with class weights (``PreparedData.class_weights``),
            so the objective weighs every class alike and the metric must too.
    """
    if task == "regression":
        return "mse", False
    return ("balanced_accuracy" if class_weighted else "accuracy"), True


def class_names(n_classes: int, names: Sequence[Any] | None = None) -> list[str]:
    """The keys per-class metrics use: the label names, else the class indices as strings."""
    if names is not None and len(names) == n_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(n_classes)]


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """The mean recall of the classes present in ``y`` (sklearn's definition); quiet about a
    class that occurs only in ``pred`` or a single class, which the definition covers."""
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y, pred))


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Binary AUC of the positive class; one-vs-rest macro AUC for more classes. Defined only
    for classes that occur in ``y`` next to other classes (None if fewer than two do)."""
    from sklearn.metrics import roc_auc_score

    n_classes = p.shape[1]
    present = np.unique(y)
    if len(present) < 2:
        return None
    if n_classes == 2:
        return _number(roc_auc_score(y, p[:, 1]))
    if len(present) == n_classes:
        return _number(
            roc_auc_score(y, p, multi_class="ovr", average="macro", labels=range(n_classes))
        )
    # a class missing from y has no one-vs-rest AUC: average the classes that have one, as
    # sklearn's one-vs-rest macro average does when every class is there
    return _number(np.mean([roc_auc_score(y == k, p[:, k]) for k in present]))


def classification_metrics(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    names: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Metrics of class probabilities ``(N, C)`` against integer labels ``(N,)``.

    The predicted class is the most probable one. Returns accuracy, balanced_accuracy, macro_f1,
    log_loss, roc_auc (binary, or one-vs-rest macro), per_class precision/recall/f1/support
    keyed by class name, and the confusion matrix (rows: true class, columns: predicted, both
    in the order of ``classes``).
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
    )

    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must have shape (N, classes >= 2), not {p.shape}")
    n_classes = p.shape[1]
    labels = list(range(n_classes))
    keys = class_names(n_classes, names)
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    # float32 softmax outputs sum to 1 only up to round-off; log_loss wants probabilities
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-300, None)
    pred = np.argmax(p, axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": _balanced_accuracy(y, pred),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "log_loss": _number(log_loss(y, p, labels=labels)),
        "roc_auc": _roc_auc(y, p),
        "per_class": {
            k: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, k in enumerate(keys)
        },
        "classes": keys,
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).astype(int).tolist(),
    }


def regression_metrics(y_true: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """mse, mae (in the units given) and r2 of predicted values against targets."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y = np.asarray(y_true, np.float64).reshape(-1)
    v = np.asarray(predictions, np.float64).reshape(-1)
    return {
        "mse": float(mean_squared_error(y, v)),
        "mae": float(mean_absolute_error(y, v)),
        # undefined (None) for fewer than two rows or a constant target
        "r2": _number(r2_score(y, v)) if len(y) >= 2 and np.ptp(y) > 0 else None,
    }


def majority_class_metrics(
    y_train: np.ndarray, y_true: np.ndarray, n_classes: int, names: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Metrics of the model that learnt nothing: it always predicts the most frequent training
    class, with the training class frequencies as its probabilities."""
    counts = np.bincount(np.asarray(y_train).astype(np.int64), minlength=n_classes)
    prior = counts / max(int(counts.sum()), 1)
    probabilities = np.tile(prior, (len(y_true), 1))
    return classification_metrics(y_true, probabilities, names)


def mean_predictor_metrics(train_mean: float, y_true: np.ndarray) -> dict[str, Any]:
    """Metrics of always predicting the training mean (in the targets' units)."""
    return regression_metrics(y_true, np.full(len(y_true), float(train_mean)))
