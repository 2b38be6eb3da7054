"""Imbalanced classes (3 % positives), the whole engine job in process as the CLI runs it:
search with class weights, the evaluation phase with weight pruning, the exported run.

The defect this guards against: plain validation accuracy rewards a model that predicts only
the majority class (its accuracy is the majority rate), so weight pruning kept a sparsity that
destroyed the model, and nothing reported showed it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification

from automl.data import Dataset
from automl.runner import RunOutcome, run
from automl.spec import SearchSpec
from tests.conftest import tiny_spec_dict

pytestmark = pytest.mark.slow

SEED = 1


def _imbalanced_table() -> Dataset:
    x, y = make_classification(
        n_samples=2000,
        n_features=10,
        n_informative=4,
        n_redundant=2,
        weights=[0.97],
        flip_y=0.0,
        class_sep=2.0,
        random_state=SEED,
    )
    return Dataset(
        name="imbalanced",
        x=x.astype(np.float32),
        y=y.astype(np.int64),
        task="classification",
        feature_names=[f"f{i}" for i in range(x.shape[1])],
        label_names=["negative", "positive"],
    )


@pytest.fixture(scope="module")
def imbalanced_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, Path]:
    spec = SearchSpec.from_dict(
        tiny_spec_dict(
            epochs=6,
            seed=SEED,
            dense={"batch_norm": [False], "width": [16], "depth": {"low": 1, "high": 2}},
            # 90 % sparsity is what destroyed the user's model
            evaluation={
                "cv_folds": 0,
                "grow": True,
                "sparsities": [0.5, 0.9],
                "fine_tune_epochs": 1,
            },
        )
    )
    out = tmp_path_factory.mktemp("imbalanced") / "run"
    return run(spec, _imbalanced_table(), out), out


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=1024, verbose=0), np.float64)


def _ensemble_model(outcome: RunOutcome, members: list, fit: Any) -> Any:
    from automl.model import build_ensemble_model, data_info

    assert outcome.result is not None
    spec, data = outcome.result.spec, outcome.result.data
    return build_ensemble_model(members, fit, data_info(data), spec.mixture_weight_type)


def test_the_evaluation_phase_keeps_the_minority_class(
    imbalanced_run: tuple[RunOutcome, Path],
) -> None:
    outcome, _ = imbalanced_run
    assert outcome.result is not None
    data, spec, report = outcome.result.data, outcome.result.spec, outcome.report
    assert data.class_weights  # the search trained with class weights
    assert data.x_test_raw is not None and data.y_test_raw is not None
    # the final model still finds the positives of the untouched test split
    test_pred = _predict(outcome.model, data.x_test_raw).argmax(axis=1)
    recall = skm.recall_score(data.y_test_raw, test_pred, average=None)
    assert recall[1] >= 0.5, recall
    assert skm.balanced_accuracy_score(data.y_test_raw, test_pred) > 0.7
    # on the validation rows the phase decides on, the final model lost no more balanced
    # accuracy than the tolerance against the ensemble the search chose (both recomputed from
    # the raw-feature models' own predictions)
    x_val_raw = data.x_val * data.feature_std + data.feature_mean
    search = outcome.result.ensemble
    search_val = _predict(_ensemble_model(outcome, search.members, search.fit), x_val_raw)
    final_val = _predict(outcome.model, x_val_raw)
    search_bal = skm.balanced_accuracy_score(data.y_val, search_val.argmax(axis=1))
    final_bal = skm.balanced_accuracy_score(data.y_val, final_val.argmax(axis=1))
    assert final_bal >= search_bal - spec.evaluation.accuracy_tolerance - 1e-9
    # every rule compared balanced accuracy; the level that collapsed onto the majority class
    # (balanced accuracy 0.5, plain accuracy the majority rate) was not kept
    ev = report["evaluation"]
    assert ev["metric"] == "balanced_accuracy"
    levels = [s for s in ev["steps"] if s["step"].startswith("prune_weights")]
    assert len(levels) == 2
    for step in levels:
        vm = step["validation_metrics"]
        assert step["details"]["metric"] == "balanced_accuracy"
        if vm["per_class"]["positive"]["recall"] == 0:
            assert not step["kept"] and not step["details"]["within_tolerance"]
        assert step["kept"] == (step["details"]["target_sparsity"] == ev["sparsity"])


def test_reported_metrics_match_scikit_learn_and_show_the_majority_baseline(
    imbalanced_run: tuple[RunOutcome, Path],
) -> None:
    import keras

    outcome, out = imbalanced_run
    assert outcome.result is not None
    data = outcome.result.data
    assert data.x_test_raw is not None and data.y_test_raw is not None

    # the run directory as written: strict JSON (no NaN, no numpy types)
    def strict(path: Path) -> Any:
        return json.loads(
            path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in {path.name}")
        )

    report, card = strict(out / "report.json"), strict(out / "model_card.json")
    assert report["test_metrics"] == outcome.report["test_metrics"]
    assert card["test_metrics"] == report["test_metrics"]
    assert card["baseline_test_metrics"] == report["baseline_test_metrics"]
    # every reported test metric, recomputed from the saved model's own predictions
    model = keras.saving.load_model(out / "model.keras")
    y, p = data.y_test_raw, _predict(model, data.x_test_raw)
    p = p / p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    tm = report["test_metrics"]
    assert tm["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert tm["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert tm["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert tm["log_loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-4)
    assert tm["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]), abs=1e-4)
    assert tm["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred)
    for i, name in enumerate(["negative", "positive"]):
        assert tm["per_class"][name]["precision"] == pytest.approx(precision[i])
        assert tm["per_class"][name]["recall"] == pytest.approx(recall[i])
        assert tm["per_class"][name]["f1"] == pytest.approx(f1[i])
        assert tm["per_class"][name]["support"] == int(support[i])
    # beside them, the model that always answers "negative": a high accuracy and nothing else
    base = report["baseline_test_metrics"]
    assert base["accuracy"] == pytest.approx(np.mean(y == 0))
    assert base["balanced_accuracy"] == pytest.approx(0.5)
    assert base["per_class"]["positive"]["recall"] == 0.0
    assert base["roc_auc"] == pytest.approx(0.5)
    assert tm["balanced_accuracy"] > base["balanced_accuracy"] + 0.2
    # the best single member is reported with the same metrics
    assert "balanced_accuracy" in report["best_member_test_metrics"]
