"""The evaluation/pruning phase on the winning ensemble (the seed's "improve by rules").

In order: cross-validation of the winner as found; grow rules on its last member (one layer
deeper, then twice as wide, each on the member as the previous kept step left it: kept only if
the objective and the validation metric both improve); member pruning (drop members whose |w|₁
is under a threshold, refit the rest, keep if F is not worse); weight pruning (zero the
smallest-magnitude weights of every kernel to each target sparsity, fine-tune with the mask held,
keep the sparsest model within the tolerance). Weight pruning comes last so nothing regrows the
zeros. Every step is recorded.

Every rule judges as the search does: F is the class-weighted objective of ``SelectionFit``, and
the metric compared is ``automl.metrics.selection_metric`` — balanced accuracy when the search
trains with class weights, so that a model collapsing onto the majority class (whose plain
accuracy is the majority rate) is never kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from automl.complexity import create_complexity_measure
from automl.data import PreparedData
from automl.ensemble import Member, MixtureFit, combine, softmax
from automl.metrics import classification_metrics, regression_metrics, selection_metric
from automl.model import member_logits
from automl.search import FinalEnsemble, SelectionFit, member_from_result
from automl.spec import SearchSpec
from automl.training import CandidateSpec, TrainingData, train_candidate

# F may rise by round-off only, for a step that must "not be worse"
OBJECTIVE_TOL = 1e-9


@dataclass
class EvaluationStep:
    """One thing the phase tried: what changed, whether it was kept, and how it measured."""

    step: str
    change: str
    kept: bool
    members: int
    params: int
    nonzero_params: int
    validation_metrics: dict[str, float]
    objective: float | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationResult:
    members: list[Member]
    fit: MixtureFit
    steps: list[EvaluationStep]
    cross_validation: dict[str, Any] | None
    sparsity: float
    wall_s: float
    metric: str = "accuracy"  # the validation metric the rules compared

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "steps": [s.to_dict() for s in self.steps],
            "cross_validation": self.cross_validation,
            "sparsity": self.sparsity,
            "wall_s": round(self.wall_s, 3),
            "members": [m.name for m in self.members],
        }


def is_kernel(weight: np.ndarray) -> bool:
    """Dense and convolution kernels (rank ≥ 2); biases and batch-norm statistics are not
    pruned."""
    return weight.ndim >= 2


def count_nonzero(members: list[Member]) -> int:
    return int(sum(np.count_nonzero(w) for m in members for w in m.weights))


def magnitude_masks(weights: tuple[np.ndarray, ...], sparsity: float) -> list[np.ndarray | None]:
    """Per kernel, keep the largest-magnitude (1 − sparsity) fraction; None for non-kernels."""
    masks: list[np.ndarray | None] = []
    for w in weights:
        if not is_kernel(w):
            masks.append(None)
            continue
        k = int(round(sparsity * w.size))
        mask = np.ones(w.size, dtype=bool)
        if k > 0:
            order = np.argsort(np.abs(w).reshape(-1), kind="stable")
            mask[order[:k]] = False
        masks.append(mask.reshape(w.shape))
    return masks


def outputs_metrics(outputs: np.ndarray, y: np.ndarray, data: PreparedData) -> dict[str, Any]:
    """Metrics of ensemble or member outputs (logits, or scaled values for regression)."""
    if data.task == "classification":
        return classification_metrics(
            y, softmax(outputs.astype(np.float64)), data.dataset.label_names
        )
    return regression_metrics(y, outputs[:, 0])


class _Bench:
    """Member outputs, mixture fits, metrics and the keep rules for ensembles built from
    trained members."""

    def __init__(self, spec: SearchSpec, data: PreparedData) -> None:
        self.spec = spec
        self.data = data
        self.fitter = SelectionFit(spec, data)
        self.measure = create_complexity_measure(spec.complexity_measure)
        self.metric, self.higher_is_better = selection_metric(data.task, bool(data.class_weights))
        # keyed by the weights' id; the weights are kept with the value so the id stays theirs
        self._cache: dict[int, tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]] = {}

    def logits(self, member: Member) -> tuple[np.ndarray, np.ndarray]:
        key = id(member.weights)
        if key not in self._cache:
            self._cache[key] = (member.weights, member_logits(member, self.data))
        return self._cache[key][1]

    def fit(self, members: list[Member]) -> MixtureFit:
        return self.fitter(members, [self.logits(m) for m in members])

    def val_metrics(self, members: list[Member], fit: MixtureFit) -> dict[str, Any]:
        stacked = np.stack([self.logits(m)[1] for m in members], axis=1)
        out = combine(stacked, fit.weights, fit.bias)
        return outputs_metrics(out, self.data.y_val, self.data)

    def step(
        self,
        name: str,
        change: str,
        kept: bool,
        members: list[Member],
        fit: MixtureFit,
        **details: Any,
    ) -> EvaluationStep:
        return EvaluationStep(
            step=name,
            change=change,
            kept=kept,
            members=len(members),
            params=sum(m.params for m in members),
            nonzero_params=count_nonzero(members),
            validation_metrics=self.val_metrics(members, fit),
            objective=fit.objective,
            details=details,
        )

    def better(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        """The validation metric strictly improved."""
        if self.higher_is_better:
            return bool(new[self.metric] > old[self.metric])
        return bool(new[self.metric] < old[self.metric])

    def within_tolerance(self, new: dict[str, Any], base: dict[str, Any]) -> bool:
        """The validation metric lost no more than the spec's tolerance."""
        ev = self.spec.evaluation
        if self.higher_is_better:
            return bool(new[self.metric] >= base[self.metric] - ev.accuracy_tolerance - 1e-12)
        return bool(
            new[self.metric] <= base[self.metric] * (1 + ev.relative_error_tolerance) + 1e-12
        )

    def objective_within_tolerance(self, new: MixtureFit, base: MixtureFit) -> bool:
        """F (class-weighted, as the search scores it) rose no more than the spec allows.

        The metric alone is blind where a class is rare: a pruned model that lost most of a
        class's few validation rows can keep its balanced accuracy within a point while its
        weighted loss doubles."""
        limit = base.objective * (1 + self.spec.evaluation.objective_tolerance)
        return bool(new.objective <= limit + 1e-12)

    def keep_grown(
        self,
        trial_fit: MixtureFit,
        trial_metrics: dict[str, Any],
        fit: MixtureFit,
        metrics: dict[str, Any],
    ) -> bool:
        """A grown member is kept only if F (class-weighted) falls and the metric rises."""
        return trial_fit.objective < fit.objective and self.better(trial_metrics, metrics)

    def retrain(self, member: Member, hparams: dict[str, Any], name: str) -> Member | None:
        cspec = CandidateSpec(
            name=name,
            iteration=member.iteration,
            index=0,
            hparams=hparams,
            seed=member.seed,
            epochs=self.spec.epochs,
            early_stopping_patience=self.spec.early_stopping_patience,
            origin="evaluation",
        )
        res = train_candidate(cspec, TrainingData.from_prepared(self.data))
        return member_from_result(res, self.measure) if res.ok else None


def cross_validate(
    spec: SearchSpec, data: PreparedData, members: list[Member], fit: MixtureFit
) -> dict[str, Any]:
    """Stratified k-fold over the non-test rows: every member's architecture retrained per fold
    with its hyperparameters and seed, combined with the chosen mixture weights. Scored by the
    metric the evaluation rules compare (balanced accuracy under class weights)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    k = spec.evaluation.cv_folds
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    splitter = (
        StratifiedKFold(k, shuffle=True, random_state=spec.seed)
        if data.task == "classification"
        else KFold(k, shuffle=True, random_state=spec.seed)
    )
    metric = selection_metric(data.task, bool(data.class_weights))[0]
    scores: list[dict[str, Any]] = []
    for fold, (tr, te) in enumerate(
        splitter.split(x, y if data.task == "classification" else None)
    ):
        fold_data = TrainingData(
            x[tr],
            y[tr],
            x[te],
            y[te],
            data.task,
            data.n_outputs,
            data.dataset.input_shape,
            data.class_weights,
        )
        logits = []
        for m in members:
            res = train_candidate(
                CandidateSpec(
                    name=f"cv{fold}_{m.name}",
                    iteration=m.iteration,
                    index=0,
                    hparams=m.hparams,
                    seed=m.seed,
                    epochs=spec.epochs,
                    origin="cv",
                ),
                fold_data,
            )
            if not res.ok or res.logits_val is None:
                raise RuntimeError(f"member {m.name} failed in fold {fold}:\n{res.error}")
            logits.append(res.logits_val)
        out = combine(np.stack(logits, axis=1), fit.weights, fit.bias)
        yt = y[te]
        if data.task == "regression":  # metrics in the target's own units
            out = out * data.target_std + data.target_mean
            yt = yt * data.target_std + data.target_mean
        scores.append(outputs_metrics(out, yt, data))
    values = np.array([s[metric] for s in scores])
    return {
        "folds": k,
        "metric": metric,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "per_fold": [float(v) for v in values],
    }


def _mask_holder(masks: list[np.ndarray | None]) -> Any:
    import keras

    class HoldMask(keras.callbacks.Callback):
        """Re-apply the pruning mask after every step so pruned weights stay exactly zero."""

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            weights = self.model.weights
            for var, mask in zip(weights, masks, strict=True):
                if mask is not None:
                    var.assign(var.numpy() * mask)

    return HoldMask()


def fine_tune_pruned(
    member: Member, data: PreparedData, sparsity: float, epochs: int
) -> tuple[Member, list[np.ndarray | None]]:
    """Zero the smallest weights of each kernel, then train on the member's own loss with the
    mask held."""

    from automl.model import build_member_model, data_info
    from automl.optimizers import create_optimizer
    from automl.training import _loss, enable_determinism

    masks = magnitude_masks(member.weights, sparsity)
    pruned = tuple(
        w * m if m is not None else w for w, m in zip(member.weights, masks, strict=True)
    )
    model = build_member_model(replace(member, weights=pruned), data_info(data))
    if epochs > 0:
        hp = member.hparams
        enable_determinism(member.seed)  # as every candidate's training: same seed, same result
        model.compile(
            optimizer=create_optimizer(str(hp["optimizer"]), float(hp["learning_rate"]) * 0.1),
            loss=_loss(data.task),
        )
        # the mask must line up with model.weights, the order get_weights() uses too
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=int(hp["batch_size"]),
            epochs=epochs,
            verbose=0,
            callbacks=[_mask_holder(masks)],
            class_weight=data.class_weights,
        )
    # no multiply here: the callback alone keeps pruned weights at zero (the tests count them)
    weights = tuple(np.asarray(w) for w in model.get_weights())
    return replace(member, weights=weights), masks


def evaluate(
    spec: SearchSpec,
    data: PreparedData,
    ensemble: FinalEnsemble,
    on_step: Callable[[EvaluationStep], None] | None = None,
    bench: _Bench | None = None,
) -> EvaluationResult:
    """Run the phase; return the improved ensemble and the record of every step.

    ``bench`` holds the outputs, fits and keep rules; a subclass may change a rule (tests).
    """
    started = time.perf_counter()
    ev = spec.evaluation
    bench = bench or _Bench(spec, data)
    steps: list[EvaluationStep] = []

    def record(step: EvaluationStep) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    members = list(ensemble.members)
    fit = bench.fit(members)
    base = bench.step("baseline", "the ensemble the search chose", True, members, fit)
    record(base)
    current_metrics = base.validation_metrics

    cv = None
    if ev.cv_folds >= 2:
        cv = cross_validate(spec, data, members, fit)
        record(
            bench.step(
                "cross_validation",
                f"{cv['folds']}-fold {cv['metric']}: {cv['mean']:.4f} ± {cv['std']:.4f}",
                True,
                members,
                fit,
                **cv,
            )
        )

    if ev.grow and members:
        last = members[-1]
        wide_key = "filters" if last.hparams["family"] in ("conv1d", "conv2d") else "width"
        for rule in ("grow_depth", "grow_width"):
            # each rule grows the member as the previous kept step left it: widening after a
            # kept depth step widens the deeper member (built here, inside the loop, from the
            # current ``last``), it does not retrain the original depth
            key = "depth" if rule == "grow_depth" else wide_key
            before = int(last.hparams[key])
            after = before + 1 if rule == "grow_depth" else before * 2
            hparams = {**last.hparams, key: after}
            change = f"{last.name}: {key} {before} → {after}"
            grown = bench.retrain(last, hparams, f"{last.name}_{rule}")
            if grown is None:
                record(
                    bench.step(
                        rule, change + " (training failed)", False, members, fit, hparams=hparams
                    )
                )
                continue
            trial = [*members[:-1], grown]
            trial_fit = bench.fit(trial)
            trial_metrics = bench.val_metrics(trial, trial_fit)
            keep = bench.keep_grown(trial_fit, trial_metrics, fit, current_metrics)
            record(
                bench.step(
                    rule,
                    change,
                    keep,
                    trial,
                    trial_fit,
                    hparams=hparams,
                    metric=bench.metric,
                    reference=current_metrics[bench.metric],
                    reference_objective=fit.objective,
                )
            )
            if keep:
                members, fit, current_metrics = trial, trial_fit, trial_metrics
                last = grown

    if len(members) > 1:
        l1 = fit.l1_per_member()
        keep_idx = [i for i, v in enumerate(l1) if v >= ev.prune_members_threshold]
        if keep_idx and len(keep_idx) < len(members):
            trial = [members[i] for i in keep_idx]
            trial_fit = bench.fit(trial)
            keep = trial_fit.objective <= fit.objective + OBJECTIVE_TOL
            dropped = [members[i].name for i in range(len(members)) if i not in keep_idx]
            record(
                bench.step(
                    "prune_members",
                    f"drop {', '.join(dropped)} (|w|₁ < {ev.prune_members_threshold})",
                    keep,
                    trial,
                    trial_fit,
                    dropped=dropped,
                )
            )
            if keep:
                members, fit = trial, trial_fit
                current_metrics = bench.val_metrics(members, fit)
        else:
            record(
                bench.step(
                    "prune_members",
                    "every member's |w|₁ is above the threshold",
                    False,
                    members,
                    fit,
                )
            )

    sparsity = 0.0
    dense_metrics, dense_fit = current_metrics, fit
    chosen: tuple[list[Member], MixtureFit] | None = None
    for level in ev.sparsities:
        tuned = [fine_tune_pruned(m, data, level, ev.fine_tune_epochs)[0] for m in members]
        tuned_fit = bench.fit(tuned)
        metrics = bench.val_metrics(tuned, tuned_fit)
        metric_ok = bench.within_tolerance(metrics, dense_metrics)
        objective_ok = bench.objective_within_tolerance(tuned_fit, dense_fit)
        ok = metric_ok and objective_ok
        kernels = sum(w.size for m in tuned for w in m.weights if is_kernel(w))
        zeros = sum(int(np.sum(w == 0)) for m in tuned for w in m.weights if is_kernel(w))
        record(
            bench.step(
                f"prune_weights_{level:g}",
                f"zero {level:.0%} of each kernel by magnitude, fine-tune {ev.fine_tune_epochs} "
                "epoch(s) with the mask held",
                False,
                tuned,
                tuned_fit,
                target_sparsity=level,
                kernel_sparsity=zeros / max(kernels, 1),
                within_tolerance=ok,
                metric_within_tolerance=metric_ok,
                objective_within_tolerance=objective_ok,
                metric=bench.metric,
                reference=dense_metrics[bench.metric],
                reference_objective=dense_fit.objective,
            )
        )
        if ok:
            chosen = (tuned, tuned_fit)
            sparsity = level
    if chosen is not None:
        members, fit = chosen
        for s in steps:
            if s.step == f"prune_weights_{sparsity:g}":
                s.kept = True
    return EvaluationResult(
        members, fit, steps, cv, sparsity, time.perf_counter() - started, bench.metric
    )
