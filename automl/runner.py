"""A whole run: search, final model, test metrics, and the run directory.

``DIR/model.keras``   the ensemble as one Keras model (raw features in)
``DIR/architecture.json``  the record replay rebuilds and retrains the ensemble from
``DIR/report.json``   what happened: iterations, candidates, evaluation steps, ensemble, metrics
``DIR/savedmodel/``   the same model as a TensorFlow SavedModel (TF Serving loads it)
``DIR/model_card.json``  dataset, preprocessing, members, sparsity, metrics, latency
``DIR/preprocessing.json``  what the model expects as input
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl.data import Dataset, PreparedData, load_source, prepare
from automl.ensemble import Member, softmax
from automl.errors import RecordError
from automl.executors import Executor
from automl.metrics import (
    classification_metrics,
    majority_class_metrics,
    mean_predictor_metrics,
    regression_metrics,
    selection_metric,
)
from automl.search import AdaNetSearch, FinalEnsemble, SearchCallback, SearchResult
from automl.spec import SearchSpec

RECORD_VERSION = 1


@dataclass
class RunOutcome:
    """A finished run: the search result, the Keras model and the report written to disk."""

    result: SearchResult | None
    model: Any
    report: dict[str, Any]
    out_dir: Path | None


def evaluate_model(model: Any, data: PreparedData) -> dict[str, Any]:
    """Test metrics of a raw-feature model on the untouched test split (``automl.metrics``:
    accuracy, balanced accuracy, per-class precision/recall/F1, ... or mse, mae, r2)."""
    from automl.export import model_input

    assert data.x_test_raw is not None and data.y_test_raw is not None
    pred = np.asarray(model.predict(model_input(data.x_test_raw), batch_size=1024, verbose=0))
    if data.task == "classification":
        return classification_metrics(data.y_test_raw, pred, data.dataset.label_names)
    return regression_metrics(data.y_test_raw, pred.reshape(-1))


def baseline_metrics(data: PreparedData) -> dict[str, Any]:
    """The test metrics of a model that learnt nothing, to read a model's beside: always the
    most frequent training class (training class frequencies as its probabilities), or always
    the training mean."""
    assert data.y_test_raw is not None
    if data.task == "classification":
        return majority_class_metrics(
            data.y_train, data.y_test_raw, data.n_outputs, data.dataset.label_names
        )
    return mean_predictor_metrics(data.target_mean, data.y_test_raw)


def evaluate_members(members: list[Member], data: PreparedData, info: dict[str, Any]) -> list[dict]:
    """Each member alone (each trained alone, on its own loss) on validation and test."""
    from automl.model import build_member_model

    out = []
    for m in members:
        model = build_member_model(m, info)
        val = np.asarray(model.predict(data.x_val, batch_size=1024, verbose=0), np.float64)
        test = np.asarray(model.predict(data.x_test, batch_size=1024, verbose=0), np.float64)
        if data.task == "regression":
            scale = data.target_std
            val_m = regression_metrics(
                data.y_val * scale + data.target_mean, val[:, 0] * scale + data.target_mean
            )
            assert data.y_test_raw is not None
            test_m = regression_metrics(data.y_test_raw, test[:, 0] * scale + data.target_mean)
        else:
            names = data.dataset.label_names
            val_m = classification_metrics(data.y_val, softmax(val), names)
            test_m = classification_metrics(data.y_test, softmax(test), names)
        out.append({"name": m.name, "validation_metrics": val_m, "test_metrics": test_m})
    return out


def _best_member(evaluations: list[dict], data: PreparedData) -> dict:
    """The member alone that scores best on validation, by the metric the evaluation phase
    compares (balanced accuracy when the search trains with class weights)."""
    metric, higher = selection_metric(data.task, bool(data.class_weights))
    if higher:
        return max(evaluations, key=lambda e: e["validation_metrics"][metric])
    return min(evaluations, key=lambda e: e["validation_metrics"][metric])


def architecture_record(
    spec: SearchSpec,
    data: PreparedData,
    ensemble: FinalEnsemble,
    sparsity: float = 0.0,
    pruned: dict[str, int] | None = None,
    fine_tune_epochs: int | None = None,
) -> dict[str, Any]:
    """Everything replay needs to rebuild and retrain the same ensemble without searching:
    the final members (after grow rules and member pruning), the epoch after which successive
    halving stopped a member (``pruned``), the weight sparsity kept and the fine-tunes' epochs
    (the plan's: a time budget may have lengthened them)."""
    members = []
    for m in ensemble.members:
        rec = m.to_record()
        if pruned and m.name in pruned:
            rec["pruned_after_epoch"] = pruned[m.name]
        members.append(rec)
    return {
        "version": RECORD_VERSION,
        "spec": spec.to_dict(),
        "data": {
            "source": data.dataset.source,
            "fingerprint": data.dataset.fingerprint(),
            "seed": data.seed,
            "test_fraction": spec.test_fraction,
            "validation_fraction": spec.validation_fraction,
        },
        "ensemble": {
            "strategy": ensemble.strategy,
            "mixture_weight_type": spec.mixture_weight_type,
            "members": members,
            "mixture_weights": np.asarray(ensemble.fit.weights).tolist(),
            "bias": np.asarray(ensemble.fit.bias).tolist(),
            "objective": ensemble.fit.objective,
            "weight_sparsity": sparsity,
            "fine_tune_epochs": (
                spec.evaluation.tune_epochs if fine_tune_epochs is None else fine_tune_epochs
            ),
        },
    }


def build_report(
    result: SearchResult,
    model: Any,
    test_metrics: dict[str, Any],
    members_eval: list[dict],
    ensemble: FinalEnsemble | None = None,
    evaluation: Any = None,
    latency: dict[str, float] | None = None,
) -> dict[str, Any]:
    """``ensemble`` is the final one (after the evaluation phase); the search's by default."""
    data, spec = result.data, result.spec
    ens = ensemble or result.ensemble
    from automl.evaluation import count_nonzero
    from automl.training import DETERMINISM

    best = _best_member(members_eval, data)
    l1 = ens.fit.l1_per_member()
    return {
        "dataset": data.dataset.name,
        "task": data.task,
        "seed": spec.seed,
        # every candidate trains deterministically (automl.training.enable_determinism)
        "deterministic": True,
        "determinism": DETERMINISM,
        "wall_s": round(result.wall_s, 3),
        "stop_reason": result.stop_reason,
        # in words, where there is more to say (a time budget, the size goal's cap)
        "stop_detail": result.stop_detail,
        "sampler": spec.sampler,
        # the rl controller's policy at the end of the search (None for the optuna samplers)
        "sampler_state": result.sampler_state,
        "families": result.families,
        "selection": spec.selection,
        "complexity_measure": spec.complexity_measure,
        "lambda": spec.lambda_,
        "beta": spec.beta,
        "data": data.summary(),
        "iterations": [it.to_dict() for it in result.iterations],
        "ensemble": {
            "strategy": ens.strategy,
            "mixture_weight_type": spec.mixture_weight_type,
            "members": [
                {
                    "name": m.name,
                    "family": m.hparams["family"],
                    "depth": m.depth,
                    "params": m.params,
                    "complexity": m.complexity,
                    "mixture_weight": (
                        float(ens.fit.weights[i])
                        if ens.fit.weights.ndim == 1
                        else ens.fit.weights[i].tolist()
                    ),
                    "mixture_weight_l1": l1[i],
                    "nonzero_params": count_nonzero([m]),
                    "hparams": m.hparams,
                }
                for i, m in enumerate(ens.members)
            ],
            "bias": ens.fit.bias.tolist(),
            "params": int(model.count_params()),
            "nonzero_params": count_nonzero(ens.members)
            + int(np.count_nonzero(ens.fit.weights))
            + int(np.count_nonzero(ens.fit.bias)),
            "loss": ens.fit.loss,
            "complexity": ens.fit.complexity,
            "objective": ens.fit.objective,
        },
        "search_ensemble": [m.name for m in result.ensemble.members],
        "evaluation": evaluation.to_dict() if evaluation is not None else None,
        "latency": latency,
        "test_metrics": test_metrics,
        "baseline_test_metrics": baseline_metrics(data),
        "members_test_metrics": {e["name"]: e["test_metrics"] for e in members_eval},
        "best_member": best["name"],
        "best_member_test_metrics": best["test_metrics"],
        "environment": {"python": platform.python_version(), "pid": os.getpid()},
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
    tmp.replace(path)


def save_model(model: Any, path: Path) -> None:
    """Save a .keras file atomically (Keras insists on the suffix, so the temp name keeps it)."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def run(
    spec: SearchSpec,
    dataset: Dataset,
    out_dir: str | Path | None = None,
    executor: Executor | None = None,
    callbacks: Sequence[SearchCallback] = (),
    on_step: Callable[[Any], None] | None = None,
) -> RunOutcome:
    """Prepare the data, search, run the evaluation phase, write the run directory."""
    data = prepare(
        dataset,
        test_fraction=spec.test_fraction,
        validation_fraction=spec.validation_fraction,
        seed=spec.seed,
    )
    result = AdaNetSearch(spec, data, executor, callbacks).run()
    return finish(result, out_dir, on_step, executor)


def finish(
    result: SearchResult,
    out_dir: str | Path | None = None,
    on_step: Callable[[Any], None] | None = None,
    executor: Executor | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_training: Callable[[Any, dict[str, Any]], None] | None = None,
    training_store: Any = None,
) -> RunOutcome:
    """The evaluation phase, the final model, its test metrics and the exported artifacts.

    The phase's trainings run on ``executor`` (in this process by default); what stays here is
    fitting mixture weights, predicting, and building and exporting the final model.
    ``training_store`` (``automl.training_store.TrainingStore``) keeps the phase's completed
    trainings so that running it again after an interruption does not train them again."""
    from automl.budget import export_reserve, plan_evaluation
    from automl.evaluation import evaluate
    from automl.export import export_savedmodel, model_card, prediction_latency
    from automl.model import build_ensemble_model, data_info

    finish_started = time.perf_counter()
    spec, data = result.spec, result.data
    ensemble, evaluation = result.ensemble, None
    plan = None
    if spec.time_budget_s is not None and result.budget_left_s is not None:
        # what is left of the whole job's budget, less the final model and its exports
        plan = plan_evaluation(
            spec,
            result.timing,
            len(result.ensemble.members),
            max(
                0.0,
                result.budget_left_s
                - export_reserve(spec.time_budget_s, len(result.ensemble.members)),
            ),
        )
    if spec.evaluation.enabled:
        evaluation = evaluate(
            spec,
            data,
            result.ensemble,
            on_step,
            executor=executor,
            should_stop=should_stop,
            on_training=on_training,
            member_logits=result.member_logits,
            plan=plan,
            store=training_store,
        )
        ensemble = FinalEnsemble(evaluation.members, evaluation.fit, result.ensemble.strategy)
    info = data_info(data)
    model = build_ensemble_model(ensemble.members, ensemble.fit, info, spec.mixture_weight_type)
    test_metrics = evaluate_model(model, data)
    members_eval = evaluate_members(ensemble.members, data, info)
    assert data.x_test_raw is not None
    latency = prediction_latency(model, data.x_test_raw)
    report = build_report(result, model, test_metrics, members_eval, ensemble, evaluation, latency)
    if spec.time_budget_s is not None:
        spent = spec.time_budget_s - (result.budget_left_s or 0.0)
        report["budget"] = {
            "time_budget_s": spec.time_budget_s,
            "search_s": round(spent, 1),
            "evaluation_and_model_s": round(time.perf_counter() - finish_started, 1),
            "stop_detail": result.stop_detail,
            "shortened_iterations": result.iteration_notes,
            "evaluation_plan": plan.to_dict() if plan is not None else None,
        }
    path = None
    if out_dir is not None:
        path = Path(out_dir)
        path.mkdir(parents=True, exist_ok=True)
        save_model(model, path / "model.keras")
        export_savedmodel(model, path / "savedmodel")
        sparsity = evaluation.sparsity if evaluation is not None else 0.0
        pruned = {
            c.name: c.epochs_run
            for it in result.iterations
            for c in it.candidates
            if c.stop_reason == "pruned"
        }
        tune_epochs = plan.fine_tune_epochs if plan is not None else None
        write_json(
            path / "architecture.json",
            architecture_record(spec, data, ensemble, sparsity, pruned, tune_epochs),
        )
        write_json(path / "preprocessing.json", info)
        write_json(path / "model_card.json", model_card(report, info))
        write_json(path / "report.json", report)
    return RunOutcome(result, model, report, path)


def load_record(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "architecture.json"
    if not path.is_file():
        raise RecordError(
            f"{str(path)!r} does not exist; pass a directory written by 'search --out'"
        )
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecordError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if record.get("version") != RECORD_VERSION:
        raise RecordError(
            f"{str(path)!r} has record version {record.get('version')!r}; "
            f"this automl reads version {RECORD_VERSION}"
        )
    return record


def replay(run_dir: str | Path, out_dir: str | Path | None = None) -> RunOutcome:
    """Rebuild and retrain the recorded ensemble without searching.

    Each member is retrained from its recorded hyperparameters and seed on the same split,
    pruned and fine-tuned to the recorded weight sparsity if the evaluation phase kept one, then
    the mixture weights are fitted again; with the same data this reproduces the ensemble.
    """
    from automl.complexity import create_complexity_measure
    from automl.halving import stop_after
    from automl.model import build_ensemble_model, data_info, member_logits
    from automl.search import SelectionFit, member_from_result
    from automl.training import CandidateSpec, TrainingData, train_candidate

    started = time.perf_counter()
    record = load_record(run_dir)
    spec = SearchSpec.from_dict(record["spec"])
    dataset = load_source(record["data"]["source"])
    if dataset.fingerprint() != record["data"]["fingerprint"]:
        raise RecordError("the data differs from the data the search ran on (fingerprint mismatch)")
    data = prepare(
        dataset,
        test_fraction=record["data"]["test_fraction"],
        validation_fraction=record["data"]["validation_fraction"],
        seed=record["data"]["seed"],
    )
    tdata = TrainingData.from_prepared(data)
    measure = create_complexity_measure(spec.complexity_measure)
    members: list[Member] = []
    logits: list[tuple[np.ndarray, np.ndarray]] = []
    for m in record["ensemble"]["members"]:
        cspec = CandidateSpec(
            name=m["name"],
            iteration=m["iteration"],
            index=0,
            hparams=m["hparams"],
            seed=m["seed"],
            epochs=spec.train_epochs,
            early_stopping_patience=spec.early_stopping_patience,
            origin="replay",
        )
        # a member successive halving stopped is retrained to the same epoch
        stop = stop_after(int(m["pruned_after_epoch"])) if m.get("pruned_after_epoch") else None
        res = train_candidate(cspec, tdata, stop)
        if not res.ok or res.logits_train is None or res.logits_val is None:
            raise RecordError(f"member {m['name']} failed to retrain:\n{res.error}")
        members.append(member_from_result(res, measure))
        logits.append((res.logits_train, res.logits_val))
    sparsity = float(record["ensemble"].get("weight_sparsity", 0.0))
    # records before the fine-tunes' epochs were kept: the spec's
    tune_epochs = int(record["ensemble"].get("fine_tune_epochs") or spec.evaluation.tune_epochs)
    if sparsity > 0:
        # the evaluation phase kept this sparsity: prune and fine-tune the same way
        from automl.evaluation import fine_tune_pruned

        members = [
            fine_tune_pruned(m, data, sparsity, tune_epochs, spec.evaluation)[0] for m in members
        ]
        logits = [member_logits(m, data) for m in members]
    fit = SelectionFit(spec, data)(members, logits)
    info = data_info(data)
    model = build_ensemble_model(members, fit, info, spec.mixture_weight_type)
    ensemble = FinalEnsemble(members, fit, record["ensemble"]["strategy"])
    members_eval = evaluate_members(members, data, info)
    best = _best_member(members_eval, data)
    report = {
        "replay_of": str(Path(run_dir).resolve()),
        "dataset": dataset.name,
        "task": data.task,
        "seed": spec.seed,
        "wall_s": round(time.perf_counter() - started, 3),
        "ensemble": {
            "members": [
                {
                    "name": m.name,
                    "depth": m.depth,
                    "params": m.params,
                    "mixture_weight": fit.weights[i].tolist(),
                }
                for i, m in enumerate(members)
            ],
            "params": int(model.count_params()),
            "objective": fit.objective,
        },
        "test_metrics": evaluate_model(model, data),
        "baseline_test_metrics": baseline_metrics(data),
        "best_member": best["name"],
        "best_member_test_metrics": best["test_metrics"],
    }
    path = None
    if out_dir is not None:
        path = Path(out_dir)
        path.mkdir(parents=True, exist_ok=True)
        save_model(model, path / "model.keras")
        pruned = {
            m["name"]: int(m["pruned_after_epoch"])
            for m in record["ensemble"]["members"]
            if m.get("pruned_after_epoch")
        }
        write_json(
            path / "architecture.json",
            architecture_record(spec, data, ensemble, sparsity, pruned, tune_epochs),
        )
        write_json(path / "report.json", report)
    return RunOutcome(None, model, report, path)
