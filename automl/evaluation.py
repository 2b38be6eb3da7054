"""The evaluation/pruning phase on the winning ensemble (the seed's "improve by rules").

In order: cross-validation of the winner as found; grow rules on its last member (one layer
deeper, then twice as wide, each on the member as the previous kept step left it: kept only if
the objective and the validation metric both improve); member pruning (drop members whose |w|₁
is under a threshold, refit the rest, keep if F is not worse; then drop members one at a time
while the validation metric does not fall); weight pruning (zero the smallest-magnitude weights
of every kernel to each target sparsity, each level from the weights the previous level left,
fine-tune with the mask held, keep the sparsest model within the tolerance). Member and weight
pruning together are held to the tolerances against the model before pruning. Weight pruning
comes last so nothing regrows the zeros. Every step is recorded.

Every rule judges as the search does: F is the class-weighted objective of ``SelectionFit``, and
the metric compared is ``automl.metrics.selection_metric`` — balanced accuracy when the search
trains with class weights, so that a model collapsing onto the majority class (whose plain
accuracy is the majority rate) is never kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from automl.budget import EvaluationPlan
from automl.complexity import create_complexity_measure
from automl.data import PreparedData
from automl.ensemble import Member, MixtureFit, combine, softmax
from automl.executors import Executor, InProcessExecutor, StopCheck
from automl.metrics import classification_metrics, regression_metrics, selection_metric
from automl.model import member_logits
from automl.search import FinalEnsemble, SelectionFit, member_from_result
from automl.spec import EvaluationSpec, SearchSpec
from automl.training import (
    CandidateResult,
    CandidateSpec,
    TrainingData,
    fold_indices,
    magnitude_masks,
    train_candidate,
)
from automl.training_store import TrainingStore

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

    def objective_within_tolerance(
        self, new: MixtureFit, base: MixtureFit, tolerance: float | None = None
    ) -> bool:
        """F (class-weighted, as the search scores it) rose no more than ``tolerance`` (the
        spec's ``objective_tolerance`` by default).

        The metric alone is blind where a class is rare: a pruned model that lost most of a
        class's few validation rows can keep its balanced accuracy within a point while its
        weighted loss doubles."""
        if tolerance is None:
            tolerance = self.spec.evaluation.objective_tolerance
        limit = base.objective * (1 + tolerance)
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

    def remember(self, member: Member, logits: tuple[np.ndarray, np.ndarray]) -> None:
        """The member's outputs, as its training (on a worker) computed them."""
        self._cache[id(member.weights)] = (member.weights, logits)


def training_record(result: CandidateResult) -> dict[str, Any]:
    """One training of the phase, recorded as the search records a candidate."""
    s = result.spec
    error = (result.error or "").strip()
    return {
        "name": s.name,
        "kind": "cross_validation" if s.folds else s.kind,
        "origin": s.origin,
        "fold": s.fold,
        "sparsity": s.sparsity,
        "state": result.state,
        "node": result.node,
        "duration_s": round(result.duration_s, 3),
        "train_s": round(result.train_s, 3),
        "epochs_run": result.epochs_run,
        "attempts": result.attempts,
        "failure_kind": result.failure_kind,
        # the last line of a traceback says what went wrong; the whole goes to the event
        "error": error.splitlines()[-1][:500] if error else None,
    }


class _Trainings:
    """Runs a batch of the phase's trainings through the executor, all at once (as many in
    parallel as it has workers), and records each as it finishes."""

    def __init__(
        self,
        executor: Executor,
        should_stop: StopCheck | None,
        on_training: Callable[[CandidateResult, dict[str, Any]], None] | None,
        store: TrainingStore | None = None,
    ) -> None:
        self.executor = executor
        self.should_stop = should_stop
        self.on_training = on_training
        self.store = store

    def run(
        self,
        specs: Sequence[CandidateSpec],
        init_weights: Mapping[str, Sequence[np.ndarray]] | None = None,
    ) -> dict[str, CandidateResult]:
        """Train ``specs`` (a stored training of the same spec and start is reused instead)."""
        results: dict[str, CandidateResult] = {}
        starts = init_weights or {}
        todo = []
        for cspec in specs:
            found = self.store.get(cspec, starts.get(cspec.name)) if self.store else None
            if found is None:
                todo.append(cspec)
                continue
            results[cspec.name] = found
            if self.on_training is not None:
                self.on_training(found, {**training_record(found), "reused": True})
        if not todo:
            return results
        stream = self.executor.run(todo, None, None, self.should_stop, init_weights)
        for result in stream:
            results[result.spec.name] = result
            if self.store is not None:
                self.store.put(result, starts.get(result.spec.name))
            if self.on_training is not None:
                self.on_training(result, training_record(result))
        return results


def _failure(result: CandidateResult | None, name: str) -> str:
    if result is None:
        return f"{name}: no result came back"
    lines = (result.error or "").strip().splitlines()
    return f"{name}: {lines[-1] if lines else result.state}"


def _cv_specs(spec: SearchSpec, members: list[Member], k: int) -> list[CandidateSpec]:
    """Every member's architecture, hyperparameters and seed, once per fold."""
    return [
        CandidateSpec(
            name=f"cv{fold}_{m.name}",
            iteration=m.iteration,
            index=0,
            hparams=m.hparams,
            seed=m.seed,
            epochs=spec.train_epochs,
            origin="cv",
            timeout_s=spec.candidate_timeout_s,
            folds=k,
            fold=fold,
            fold_seed=spec.seed,
        )
        for fold in range(k)
        for m in members
    ]


def _score_folds(
    spec: SearchSpec,
    data: PreparedData,
    members: list[Member],
    fit: MixtureFit,
    results: Mapping[str, CandidateResult],
    k: int,
) -> dict[str, Any]:
    """Stratified k-fold over the non-test rows: the members retrained per fold (``results``),
    combined with the chosen mixture weights. Scored by the metric the evaluation rules compare
    (balanced accuracy under class weights)."""
    y = np.concatenate([data.y_train, data.y_val])
    metric = selection_metric(data.task, bool(data.class_weights))[0]
    scores: list[dict[str, Any]] = []
    for fold, (_tr, te) in enumerate(fold_indices(y, data.task, k, spec.seed)):
        logits = []
        for m in members:
            name = f"cv{fold}_{m.name}"
            res = results.get(name)
            if res is None or not res.ok or res.logits_val is None:
                raise RuntimeError(f"member {m.name} failed in fold {fold}: {_failure(res, name)}")
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


def cross_validate(
    spec: SearchSpec,
    data: PreparedData,
    members: list[Member],
    fit: MixtureFit,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Cross-validation of ``members`` as combined by ``fit``; every fold of every member
    trains at once on ``executor`` (in this process by default)."""
    executor = executor or InProcessExecutor()
    executor.start(TrainingData.from_prepared(data))
    k = spec.evaluation.cv_folds
    results = _Trainings(executor, None, None).run(_cv_specs(spec, members, k))
    return _score_folds(spec, data, members, fit, results, k)


def _grow_spec(spec: SearchSpec, member: Member, rule: str) -> tuple[CandidateSpec, str]:
    """One layer deeper, or twice as wide; the spec and the change in words."""
    wide_key = "filters" if member.hparams["family"] in ("conv1d", "conv2d") else "width"
    key = "depth" if rule == "grow_depth" else wide_key
    before = int(member.hparams[key])
    after = before + 1 if rule == "grow_depth" else before * 2
    cspec = CandidateSpec(
        name=f"{member.name}_{rule}",
        iteration=member.iteration,
        index=0,
        hparams={**member.hparams, key: after},
        seed=member.seed,
        epochs=spec.train_epochs,
        early_stopping_patience=spec.early_stopping_patience,
        origin="evaluation",
        timeout_s=spec.candidate_timeout_s,
    )
    return cspec, f"{member.name}: {key} {before} → {after}"


def _fine_tune_spec(
    member: Member,
    sparsity: float,
    epochs: int,
    ev: EvaluationSpec,
    timeout_s: float | None = None,
) -> CandidateSpec:
    return CandidateSpec(
        name=f"{member.name}_prune{sparsity:g}",
        iteration=member.iteration,
        index=0,
        hparams=member.hparams,
        seed=member.seed,
        epochs=epochs,
        origin="prune_weights",
        kind="fine_tune",
        sparsity=sparsity,
        timeout_s=timeout_s,
        tune_lr_scale=ev.fine_tune_learning_rate,
        tune_schedule=ev.fine_tune_schedule,
    )


def fine_tune_pruned(
    member: Member,
    data: PreparedData,
    sparsity: float,
    epochs: int,
    ev: EvaluationSpec | None = None,
) -> tuple[Member, list[np.ndarray | None]]:
    """Zero the smallest weights of each kernel, then train on the member's own loss with the
    mask held (in this process), at the learning rate and schedule ``ev`` gives (the
    defaults without it)."""
    res = train_candidate(
        _fine_tune_spec(member, sparsity, epochs, ev or EvaluationSpec()),
        TrainingData.from_prepared(data),
        init_weights=member.weights,
    )
    if not res.ok:
        raise RuntimeError(f"fine-tuning {member.name} failed:\n{res.error}")
    return replace(member, weights=tuple(res.weights)), magnitude_masks(member.weights, sparsity)


def _with_trained_weights(
    bench: _Bench,
    members: list[Member],
    names: list[str],
    results: Mapping[str, CandidateResult],
) -> list[Member]:
    """Each member with the weights its training (``names``, in order) ended with; the outputs
    that training computed are remembered for them."""
    out = []
    for m, n in zip(members, names, strict=True):
        res = results[n]
        t = replace(m, weights=tuple(res.weights))
        if res.logits_train is not None and res.logits_val is not None:
            bench.remember(t, (res.logits_train, res.logits_val))
        out.append(t)
    return out


def _refit(
    bench: _Bench,
    members: list[Member],
    fit: MixtureFit,
    sparsity: float,
    epochs: int,
    spec: SearchSpec,
    trainings: _Trainings,
    record: Callable[[EvaluationStep], None],
) -> list[Member]:
    """Every final member fine-tuned on the training and validation rows together, its zeros
    held (the mask of ``sparsity`` is the one its weights already carry); the mixture weights
    stay. Kept unless a training fails (then the members stay as they were)."""
    batch = [
        replace(
            _fine_tune_spec(m, sparsity, epochs, spec.evaluation, spec.candidate_timeout_s),
            name=f"{m.name}_refit",
            origin="refit",
            refit=True,
        )
        for m in members
    ]
    results = trainings.run(batch, {c.name: m.weights for c, m in zip(batch, members, strict=True)})
    names = [c.name for c in batch]
    change = (
        f"fine-tune every member {epochs} epoch(s) on the training and validation rows "
        "together, zeros held, mixture weights kept"
    )
    listed = [training_record(results[n]) for n in names if n in results]
    failed = [n for n in names if n not in results or not results[n].ok]
    if failed:
        record(
            bench.step(
                "refit",
                change + " (training failed; the members stay as they were)",
                False,
                members,
                fit,
                error="; ".join(_failure(results.get(n), n) for n in failed),
                trainings=listed,
            )
        )
        return members
    refitted = _with_trained_weights(bench, members, names, results)
    record(
        bench.step(
            "refit",
            change + "; its validation metrics are no longer held out",
            True,
            refitted,
            fit,
            held_out=False,
            trainings=listed,
        )
    )
    return refitted


def _drop_members(
    bench: _Bench,
    members: list[Member],
    fit: MixtureFit,
    metrics: dict[str, Any],
    reference_metrics: dict[str, Any],
    reference_fit: MixtureFit,
    record: Callable[[EvaluationStep], None],
) -> tuple[list[Member], MixtureFit, dict[str, Any]]:
    """Backward elimination: drop one member at a time while that costs nothing on validation.

    Each round refits the mixture without each member in turn and tries those ensembles from
    the lowest F up; the first whose validation metric is not below the reference's (the
    model before pruning) and whose F is within ``drop_objective_tolerance`` (unset:
    ``objective_tolerance``) of the reference's is kept, and the next round starts from it. It
    stops when no removal passes or one member is left. The metric may not fall at all here, so
    weight pruning, after it, still has the whole accuracy tolerance. One step records the
    members dropped and every round."""
    ev = bench.spec.evaluation
    tolerance = (
        ev.drop_objective_tolerance
        if ev.drop_objective_tolerance is not None
        else ev.objective_tolerance
    )
    start_members, start_fit = members, fit
    dropped: list[str] = []
    rounds: list[dict[str, Any]] = []
    while len(members) > 1:
        trials = []
        for i in range(len(members)):
            trial = members[:i] + members[i + 1 :]
            trials.append((bench.fit(trial), i, trial))
        trials.sort(key=lambda t: (t[0].objective, t[1]))
        taken = None
        for trial_fit, i, trial in trials:
            trial_metrics = bench.val_metrics(trial, trial_fit)
            if not bench.better(reference_metrics, trial_metrics) and (
                bench.objective_within_tolerance(trial_fit, reference_fit, tolerance)
            ):
                taken = (trial_fit, i, trial, trial_metrics)
                break
        if taken is None:
            break
        trial_fit, i, trial, trial_metrics = taken
        rounds.append(
            {
                "dropped": members[i].name,
                "objective": trial_fit.objective,
                bench.metric: trial_metrics[bench.metric],
                "members": len(trial),
            }
        )
        dropped.append(members[i].name)
        members, fit, metrics = trial, trial_fit, trial_metrics
    if dropped:
        change = (
            f"drop {', '.join(dropped)}: validation {bench.metric} "
            f"{reference_metrics[bench.metric]:.4f} → {metrics[bench.metric]:.4f}"
        )
    else:
        change = f"no member can be dropped without losing validation {bench.metric}"
    record(
        bench.step(
            "drop_members",
            change,
            bool(dropped),
            members if dropped else start_members,
            fit if dropped else start_fit,
            dropped=dropped,
            rounds=rounds,
            metric=bench.metric,
            reference=reference_metrics[bench.metric],
            reference_objective=reference_fit.objective,
        )
    )
    return members, fit, metrics


def goal_sparsity(members: list[Member], goal: int) -> float | None:
    """The fraction of each kernel to zero for ``members`` to hold at most ``goal`` non-zero
    parameters, rounded up to a hundredth (with half a hundredth to spare for each kernel's
    rounding); None when pruning kernels cannot get there (biases and the like, which are not
    pruned, already hold ``goal`` or more) or it would take 99% or more."""
    kernels = sum(w.size for m in members for w in m.weights if is_kernel(w))
    rest = sum(int(np.count_nonzero(w)) for m in members for w in m.weights if not is_kernel(w))
    if kernels == 0 or goal <= rest:
        return None
    needed = 1.0 - (goal - rest) / kernels
    if needed <= 0:
        return 0.0
    level = math.ceil(needed * 100 + 0.5) / 100
    return level if level < 0.99 else None


def _drop_to_goal(
    bench: _Bench, members: list[Member], fit: MixtureFit, goal: int
) -> tuple[list[Member], MixtureFit, list[str]]:
    """Drop members one at a time, each round the one whose removal leaves F lowest, until
    ``members`` hold at most ``goal`` non-zero parameters or one is left."""
    dropped: list[str] = []
    while count_nonzero(members) > goal and len(members) > 1:
        trials = []
        for i in range(len(members)):
            trial = members[:i] + members[i + 1 :]
            trials.append((bench.fit(trial), i, trial))
        trial_fit, i, trial = min(trials, key=lambda t: (t[0].objective, t[1]))
        dropped.append(members[i].name)
        members, fit = trial, trial_fit
    return members, fit, dropped


def _meet_size_goal(
    bench: _Bench,
    goal: int,
    members: list[Member],
    fit: MixtureFit,
    sparsity: float,
    at_hand: list[tuple[float, list[Member], MixtureFit]],
    reference_fit: MixtureFit,
    reference_metrics: dict[str, Any],
    record: Callable[[EvaluationStep], None],
) -> tuple[list[Member], MixtureFit, float]:
    """``evaluation.max_nonzero_params``: the goal outranks the tolerances.

    Every model at hand (the members before weight pruning and each level that trained) is
    brought to the goal by dropping members, the one whose removal leaves F lowest first, where
    it is over it; of those that meet the goal, the one of lowest F is kept (AdaNet's objective
    decides between the dense model, a sparser level and fewer members), whatever F and the
    metric lost against the model before pruning (both recorded, with every option weighed).
    The tolerances' own choice (``members`` at ``sparsity``) is one of the options: when the
    dense model meets the goal, no level is kept that does not lower F, since pruning further
    than the user asked costs accuracy (benchmarks/pruning.py: sparsity 0.5, which the
    tolerances keep, costs a member 0.26-0.35 test points on MNIST-1D) for a size nobody asked
    for. When none meets it, the smallest model reached is kept and the goal is recorded as
    missed."""
    before = count_nonzero(members)
    common = {
        "goal": goal,
        "nonzero_before": before,
        "tolerance_sparsity": sparsity,
        "metric": bench.metric,
        "reference": reference_metrics[bench.metric],
        "reference_objective": reference_fit.objective,
    }
    options = []
    for level, start, start_fit in at_hand:
        kept, kept_fit, dropped = _drop_to_goal(bench, start, start_fit, goal)
        options.append((level, kept, kept_fit, dropped, count_nonzero(kept)))
    meeting = [o for o in options if o[4] <= goal]
    if meeting:
        chosen = min(meeting, key=lambda o: (o[2].objective, o[4]))
    else:
        chosen = min(options, key=lambda o: (o[4], o[2].objective))
    level, kept, kept_fit, dropped, nonzero = chosen
    met = nonzero <= goal
    # the rules' own model stands when the goal picks the same level with no member dropped
    changed = level != sparsity or bool(dropped)
    change = (
        (f"sparsity {level:g}" if level else "the members before weight pruning")
        + (f", without {', '.join(dropped)}" if dropped else "")
        + f": {nonzero:,} non-zero parameters"
        + (
            f" meet the goal of {goal:,} at the lowest F of the {len(meeting)} way(s) that do"
            if met
            else f"; the goal of {goal:,} is missed (the fewest any way reached)"
        )
        + " (the tolerances kept "
        + (f"sparsity {sparsity:g}" if sparsity else "the dense model")
        + f", {before:,})"
    )
    record(
        bench.step(
            "size_goal",
            change,
            changed,
            kept,
            kept_fit,
            met=met,
            sparsity=level,
            dropped=dropped,
            options=[
                {
                    "sparsity": o[0],
                    "dropped": o[3],
                    "members": len(o[1]),
                    "nonzero_params": o[4],
                    "objective": o[2].objective,
                    bench.metric: bench.val_metrics(o[1], o[2])[bench.metric],
                }
                for o in options
            ],
            **common,
        )
    )
    return kept, kept_fit, level


def evaluate(
    spec: SearchSpec,
    data: PreparedData,
    ensemble: FinalEnsemble,
    on_step: Callable[[EvaluationStep], None] | None = None,
    bench: _Bench | None = None,
    executor: Executor | None = None,
    should_stop: StopCheck | None = None,
    on_training: Callable[[CandidateResult, dict[str, Any]], None] | None = None,
    member_logits: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    plan: EvaluationPlan | None = None,
    store: TrainingStore | None = None,
) -> EvaluationResult:
    """Run the phase; return the improved ensemble and the record of every step.

    Every training of the phase goes through ``executor`` (in this process by default), in
    batches each trained at once: the cross-validation folds of every member together with
    both grow rules' members; the wider member again when the deeper one was kept (the width
    rule then widens the deeper member); then, per sparsity level from the least sparse, every
    member fine-tuned from the weights the level before left.
    Each training is reported to ``on_training`` and listed in its step's ``trainings``.
    ``member_logits`` are the search's outputs of the ensemble's members (else predicted
    here). ``plan`` (``automl.budget.plan_evaluation``) says which folds, grow rules and
    sparsities fit in the time the job's budget left; its cuts are the ``time_plan`` step, and a
    batch (a sparsity level too) that would start past the plan's time is skipped (recorded).
    ``bench`` holds the
    outputs, fits and keep rules; a subclass may change a rule (tests). With ``store`` every
    completed training is kept there and a training it already holds (the same spec, from the
    same weights: an earlier, interrupted run of this phase) is not trained again; it is
    reported with ``reused: True``.
    """
    started = time.perf_counter()
    ev = spec.evaluation
    folds = plan.cv_folds if plan is not None else (ev.cv_folds if ev.cv_folds >= 2 else 0)
    grow_rules = plan.grow if plan is not None else ev.grow
    levels = list(plan.sparsities) if plan is not None else list(ev.sparsities)
    tune_epochs = (
        plan.fine_tune_epochs
        if plan is not None and plan.fine_tune_epochs is not None
        else ev.tune_epochs
    )
    deadline = (
        started + plan.time_left_s if plan is not None and plan.time_left_s is not None else None
    )

    def out_of_time() -> bool:
        return deadline is not None and time.perf_counter() > deadline

    bench = bench or _Bench(spec, data)
    executor = executor or InProcessExecutor()
    executor.start(TrainingData.from_prepared(data))
    trainings = _Trainings(executor, should_stop, on_training, store)
    steps: list[EvaluationStep] = []

    def record(step: EvaluationStep) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    def listed(results: Mapping[str, CandidateResult], *names: str) -> list[dict[str, Any]]:
        return [training_record(results[n]) for n in names if n in results]

    members = list(ensemble.members)
    for m in members:
        if member_logits is not None and m.name in member_logits:
            bench.remember(m, member_logits[m.name])
    fit = bench.fit(members)
    base = bench.step("baseline", "the ensemble the search chose", True, members, fit)
    record(base)
    current_metrics = base.validation_metrics
    if plan is not None and plan.time_left_s is not None:
        record(
            bench.step(
                "time_plan",
                (
                    "to fit the time budget: " + "; ".join(plan.cuts)
                    if plan.cuts
                    else f"every step fits the time budget (~{plan.estimate_s:.0f} s of "
                    f"{plan.time_left_s:.0f} s left)" + "".join(f"; {e}" for e in plan.extended)
                ),
                True,
                members,
                fit,
                **plan.to_dict(),
            )
        )

    # batch 1: the folds of every member, and both grow rules on the last member as it is
    cv_specs = _cv_specs(spec, members, folds) if folds >= 2 else []
    grow: dict[str, tuple[CandidateSpec, str]] = {}
    if grow_rules and members:
        grow = {rule: _grow_spec(spec, members[-1], rule) for rule in ("grow_depth", "grow_width")}
    results = trainings.run([*cv_specs, *(g[0] for g in grow.values())])

    cv = None
    if cv_specs:
        cv_names = [c.name for c in cv_specs]
        try:
            cv = _score_folds(spec, data, members, fit, results, folds)
        except RuntimeError as exc:
            # recorded, not fatal: the model itself does not depend on it
            record(
                bench.step(
                    "cross_validation",
                    f"{folds}-fold cross-validation failed: {exc}",
                    False,
                    members,
                    fit,
                    error=str(exc),
                    trainings=listed(results, *cv_names),
                )
            )
        else:
            record(
                bench.step(
                    "cross_validation",
                    f"{cv['folds']}-fold {cv['metric']}: {cv['mean']:.4f} ± {cv['std']:.4f}",
                    True,
                    members,
                    fit,
                    **cv,
                    trainings=listed(results, *cv_names),
                )
            )

    if grow:
        last = original_last = members[-1]
        for rule in ("grow_depth", "grow_width"):
            # each rule grows the member as the previous kept step left it: widening after a
            # kept depth step widens the deeper member (trained now, in a batch of its own),
            # not the original depth
            cspec, change = grow[rule]
            # the width rule's member trained beside the depth rule's, on the member as it was;
            # when the deeper member was kept, that training is listed here but not used
            unused: list[str] = []
            if rule == "grow_width" and last is not original_last:
                unused = [cspec.name]
                cspec, change = _grow_spec(spec, last, rule)
                if out_of_time():
                    record(
                        bench.step(
                            rule,
                            change + " (skipped: the time budget is spent)",
                            False,
                            members,
                            fit,
                            hparams=cspec.hparams,
                            trainings=listed(results, *unused),
                            unused_trainings=unused,
                        )
                    )
                    continue
                results = {**results, **trainings.run([cspec])}
            res = results.get(cspec.name)
            if res is None or not res.ok:
                record(
                    bench.step(
                        rule,
                        change + " (training failed)",
                        False,
                        members,
                        fit,
                        hparams=cspec.hparams,
                        error=_failure(res, cspec.name),
                        trainings=listed(results, cspec.name, *unused),
                    )
                )
                continue
            grown = member_from_result(res, bench.measure)
            if res.logits_train is not None and res.logits_val is not None:
                bench.remember(grown, (res.logits_train, res.logits_val))
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
                    hparams=cspec.hparams,
                    metric=bench.metric,
                    reference=current_metrics[bench.metric],
                    reference_objective=fit.objective,
                    trainings=listed(results, cspec.name, *unused),
                    unused_trainings=unused,
                )
            )
            if keep:
                members, fit, current_metrics = trial, trial_fit, trial_metrics
                last = grown

    # the model before any pruning: member and weight pruning together may lose no more than
    # the tolerances against it
    dense_metrics, dense_fit = current_metrics, fit
    if len(members) > 1:
        l1 = fit.l1_per_member()
        keep_idx = [i for i, v in enumerate(l1) if v >= ev.prune_members_threshold]
        if keep_idx and len(keep_idx) < len(members):
            trial = [members[i] for i in keep_idx]
            trial_fit = bench.fit(trial)
            trial_metrics = bench.val_metrics(trial, trial_fit)
            # as backward elimination's rule: F may not rise and the validation metric may not
            # fall. F alone barely moves for a member of small weight (its loss share and its
            # complexity term are both small), yet its logits can still tip close rows
            keep = trial_fit.objective <= fit.objective + OBJECTIVE_TOL and not bench.better(
                current_metrics, trial_metrics
            )
            dropped = [members[i].name for i in range(len(members)) if i not in keep_idx]
            record(
                bench.step(
                    "prune_members",
                    f"drop {', '.join(dropped)} (|w|₁ < {ev.prune_members_threshold})",
                    keep,
                    trial,
                    trial_fit,
                    dropped=dropped,
                    metric=bench.metric,
                    reference=current_metrics[bench.metric],
                )
            )
            if keep:
                members, fit, current_metrics = trial, trial_fit, trial_metrics
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

    if ev.drop_members and len(members) > 1:
        if out_of_time():
            record(
                bench.step(
                    "drop_members",
                    "skipped: the time budget is spent",
                    False,
                    members,
                    fit,
                )
            )
        else:
            members, fit, current_metrics = _drop_members(
                bench, members, fit, current_metrics, dense_metrics, dense_fit, record
            )

    # a size goal the members as they stand exceed: the sparsity level that just meets it is
    # tried too, in its place among the listed levels (the plan counted one level more for
    # it). Between two listed levels it is the least pruning that meets the goal: with 0.25
    # over it and 0.5 under, 0.5 costs a MNIST-1D member 0.27 test points, 0.3 0.02 and 0.4
    # 0.10 (benchmarks/pruning.py; README, evaluation phase)
    goal = ev.max_nonzero_params
    if goal is not None and count_nonzero(members) > goal:
        goal_level = goal_sparsity(members, goal)
        if goal_level is not None and goal_level not in levels:
            levels = sorted([*levels, goal_level])

    # last: every member fine-tuned at each sparsity level, level by level from the least
    # sparse, each level starting from the weights the level before it left (gradual pruning)
    if out_of_time():
        record(
            bench.step(
                "prune_weights",
                "skipped: the time budget is spent; the model stays dense",
                False,
                members,
                fit,
            )
        )
        levels = []
    tune_specs = {
        (level, m.name): _fine_tune_spec(m, level, tune_epochs, ev, spec.candidate_timeout_s)
        for level in levels
        for m in members
    }
    # each member's weights as the last level that trained left them (pruned and fine-tuned):
    # the next level prunes those further, so the zeros of one level stay zero in the next
    # and the survivors have adapted once already (iterative magnitude pruning recovers far
    # more than one cut of the dense weights to the same sparsity)
    start_from = {m.name: m.weights for m in members}
    previous_level = 0.0
    results = {}
    sparsity = 0.0
    chosen: tuple[list[Member], MixtureFit] | None = None
    # the model before weight pruning and every level that trained: the size goal may keep
    # one the tolerances did not
    unpruned = (members, fit)
    tried: list[tuple[float, list[Member], MixtureFit]] = []
    for level in levels:
        names = [tune_specs[(level, m.name)].name for m in members]
        name = f"prune_weights_{level:g}"
        change = (
            f"zero {level:.0%} of each kernel by magnitude"
            + (f" (from the {previous_level:g} level's weights)" if previous_level else "")
            + f", fine-tune {tune_epochs} epoch(s) with the mask held"
        )
        if out_of_time():
            record(
                bench.step(
                    name,
                    change + " (skipped: the time budget is spent)",
                    False,
                    members,
                    fit,
                    target_sparsity=level,
                    within_tolerance=False,
                )
            )
            continue
        batch = [tune_specs[(level, m.name)] for m in members]
        results.update(
            trainings.run(
                batch, {c.name: start_from[m.name] for c, m in zip(batch, members, strict=True)}
            )
        )
        failed = [n for n in names if n not in results or not results[n].ok]
        if failed:
            record(
                bench.step(
                    name,
                    change + " (fine-tuning failed)",
                    False,
                    members,
                    fit,
                    target_sparsity=level,
                    within_tolerance=False,
                    error="; ".join(_failure(results.get(n), n) for n in failed),
                    trainings=listed(results, *names),
                )
            )
            continue
        tuned = _with_trained_weights(bench, members, names, results)
        start_from = {t.name: t.weights for t in tuned}
        previous_level = level
        tuned_fit = bench.fit(tuned)
        tried.append((level, tuned, tuned_fit))
        metrics = bench.val_metrics(tuned, tuned_fit)
        metric_ok = bench.within_tolerance(metrics, dense_metrics)
        objective_ok = bench.objective_within_tolerance(tuned_fit, dense_fit)
        ok = metric_ok and objective_ok
        kernels = sum(w.size for m in tuned for w in m.weights if is_kernel(w))
        zeros = sum(int(np.sum(w == 0)) for m in tuned for w in m.weights if is_kernel(w))
        record(
            bench.step(
                name,
                change,
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
                trainings=listed(results, *names),
            )
        )
        if ok:
            chosen = (tuned, tuned_fit)
            sparsity = level
    if chosen is not None:
        members, fit = chosen
    if goal is not None:
        members, fit, sparsity = _meet_size_goal(
            bench,
            goal,
            members,
            fit,
            sparsity,
            [(0.0, *unpruned), *tried],
            dense_fit,
            dense_metrics,
            record,
        )
    if sparsity > 0:
        for s in steps:
            if s.step == f"prune_weights_{sparsity:g}":
                s.kept = True

    if ev.refit and members and tune_epochs > 0:
        if out_of_time():
            record(
                bench.step(
                    "refit",
                    "skipped: the time budget is spent; the members stay as trained",
                    False,
                    members,
                    fit,
                )
            )
        else:
            members = _refit(bench, members, fit, sparsity, tune_epochs, spec, trainings, record)
    return EvaluationResult(
        members, fit, steps, cv, sparsity, time.perf_counter() - started, bench.metric
    )
