"""Reported metrics agree with scikit-learn, stay plain JSON, and show a model that learnt
nothing for what it is."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from automl.metrics import (
    classification_metrics,
    majority_class_metrics,
    mean_predictor_metrics,
    regression_metrics,
    selection_metric,
)


def _strict_json(payload: object) -> object:
    """Round-trip through JSON as PostgreSQL and browsers read it: no NaN, no numpy types."""
    return json.loads(json.dumps(payload, allow_nan=False))


def test_multiclass_metrics_match_scikit_learn_and_are_plain_json() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + 2.0 * np.eye(3)[y]
    p = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    pred = p.argmax(axis=1)
    out = classification_metrics(y, p, ["a", "b", "c"])
    assert _strict_json(out) == out
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert out["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    p64 = p.astype(np.float64) / p.astype(np.float64).sum(axis=1, keepdims=True)
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, p64), rel=1e-6)
    assert out["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, p64, multi_class="ovr", average="macro"), rel=1e-6
    )
    assert out["classes"] == ["a", "b", "c"]
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    recall = skm.recall_score(y, pred, average=None)
    precision = skm.precision_score(y, pred, average=None)
    for i, name in enumerate("abc"):
        assert out["per_class"][name]["recall"] == pytest.approx(recall[i])
        assert out["per_class"][name]["precision"] == pytest.approx(precision[i])
        assert out["per_class"][name]["support"] == int(np.sum(y == i))


def test_binary_auc_scores_the_positive_class_and_keys_default_to_indices() -> None:
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    p1 = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.3, 0.6])
    out = classification_metrics(y, np.stack([1 - p1, p1], axis=1))
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert set(out["per_class"]) == {"0", "1"}


def test_undefined_metrics_are_none_not_nan() -> None:
    one_class = classification_metrics(np.zeros(4, int), np.tile([0.7, 0.3], (4, 1)))
    assert one_class["roc_auc"] is None
    _strict_json(one_class)
    constant = regression_metrics(np.ones(5), np.arange(5.0))
    assert constant["r2"] is None and constant["mse"] == pytest.approx(
        np.mean((1 - np.arange(5.0)) ** 2)
    )
    _strict_json(constant)


def test_a_class_missing_from_the_rows_leaves_the_auc_of_the_others() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([[0.6, 0.3, 0.1]] * 3 + [[0.2, 0.7, 0.1]] * 3)
    out = classification_metrics(y, p)
    expected = np.mean([skm.roc_auc_score(y == k, p[:, k]) for k in (0, 1)])
    assert out["roc_auc"] == pytest.approx(expected)
    assert out["per_class"]["2"]["support"] == 0


def test_the_majority_class_predictor_is_visibly_useless() -> None:
    y_train = np.array([0] * 97 + [1] * 3)
    y_test = np.array([0] * 48 + [1] * 2)
    out = majority_class_metrics(y_train, y_test, 2, ["neg", "pos"])
    # high accuracy on imbalanced data, and nothing else
    assert out["accuracy"] == pytest.approx(0.96)
    assert out["balanced_accuracy"] == pytest.approx(0.5)
    assert out["per_class"]["pos"]["recall"] == 0.0 and out["per_class"]["neg"]["recall"] == 1.0
    assert out["roc_auc"] == pytest.approx(0.5)
    assert out["confusion_matrix"] == [[48, 0], [2, 0]]
    # its probabilities are the training frequencies
    assert out["log_loss"] == pytest.approx(-(48 * np.log(0.97) + 2 * np.log(0.03)) / 50)
    _strict_json(out)


def test_regression_metrics_and_the_mean_predictor() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(3.0, 2.0, 100)
    v = y + rng.normal(0, 0.5, 100)
    out = regression_metrics(y, v)
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y, v))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, v))
    assert out["r2"] == pytest.approx(skm.r2_score(y, v))
    base = mean_predictor_metrics(3.5, y)
    assert base["mse"] == pytest.approx(np.mean((y - 3.5) ** 2))
    assert base["r2"] < 0  # a training mean off the test mean explains less than nothing
    _strict_json(base)


def test_the_selection_metric_follows_class_weights() -> None:
    assert selection_metric("classification", True) == ("balanced_accuracy", True)
    assert selection_metric("classification", False) == ("accuracy", True)
    assert selection_metric("regression", False) == ("mse", False)
