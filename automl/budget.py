"""The whole-job time budget: plan the search's iterations and the evaluation phase to fit.

``spec.time_budget_s`` bounds the whole job — search, evaluation phase, final model and export.
With ``max_iterations`` unset the budget decides how many iterations run (as with NNI's
``maxExperimentDuration`` without a trial count): the search starts another one only if, after
it, the evaluation phase's grow rules and every sparsity level and the export still fit. With
``max_iterations`` set it ends at that count or sooner, keeping time for the smallest
evaluation phase and the export. The phase then picks the largest plan that fits in what is
left: every step as the spec asks, else fewer sparsity levels, fewer cross-validation folds,
no grow rules, no cross-validation — each cut recorded with the reason. Estimates come from what
the search measured: how long its candidates took to train and how many trained at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# the final model, its test metrics, latency and exports (SavedModel, Keras, JSON) take seconds
# on 2 cores; a floor and a share of the budget are kept for them
EXPORT_RESERVE_S = 15.0
EXPORT_RESERVE_SHARE = 0.03
# building, scoring and saving the final model grows with its members
EXPORT_PER_MEMBER_S = 1.0
# a fine-tune costs more than its epochs' share of a candidate: its model is built and
# compiled, and its outputs on the training and validation rows predicted, like a candidate's
# (measured on MNIST-1D: ~2.8 s per fine-tune where 3/30 of a 16 s candidate is 1.6 s)
FINE_TUNE_OVERHEAD_EPOCHS = 2.0
# a plan lengthens the fine-tunes only while its estimate stays within this share of the time
EXTEND_SHARE = 0.8


@dataclass
class Timing:
    """What the search measured: the mean seconds a candidate took, the mean wall time of an
    iteration, how many candidates trained at once, and the seconds each member of the current
    ensemble took to train (in order; the phase retrains those, and the members a search
    keeps are often not its average candidates: bigger, with smaller batches)."""

    candidate_s: float
    iteration_s: float
    parallel: int = 1
    member_s: list[float] = field(default_factory=list)

    def members(self, n: int) -> list[float]:
        """Seconds to train each of ``n`` members: the measured ones, then the mean candidate's
        for members not measured (the one an iteration is about to add)."""
        measured = list(self.member_s[:n])
        return measured + [self.candidate_s] * (n - len(measured))


@dataclass
class EvaluationPlan:
    """The evaluation steps to run: the folds, whether to grow, which sparsities; and what was
    cut from the spec's phase to fit the time left, each with its reason."""

    cv_folds: int
    grow: bool
    sparsities: list[float]
    estimate_s: float
    time_left_s: float | None
    cuts: list[str] = field(default_factory=list)
    # epochs of each pruned member's fine-tune: the spec's, or more where the time left allows
    fine_tune_epochs: int | None = None
    extended: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cv_folds": self.cv_folds,
            "grow": self.grow,
            "sparsities": self.sparsities,
            "fine_tune_epochs": self.fine_tune_epochs,
            "extended": self.extended,
            "estimate_s": round(self.estimate_s, 1),
            "time_left_s": None if self.time_left_s is None else round(self.time_left_s, 1),
            "cuts": self.cuts,
        }


def export_reserve(budget_s: float, members: int = 0) -> float:
    """Seconds kept for the final model, its test metrics and its exports."""
    return EXPORT_RESERVE_S + EXPORT_RESERVE_SHARE * budget_s + EXPORT_PER_MEMBER_S * members


def _rounds(trainings: int, parallel: int) -> int:
    return math.ceil(trainings / max(1, parallel)) if trainings > 0 else 0


def _makespan(durations: list[float], parallel: int) -> float:
    """Seconds ``durations`` take on ``parallel`` workers, each training the next one when it
    is free (longest first)."""
    workers = [0.0] * max(1, parallel)
    for d in sorted(durations, reverse=True):
        workers[workers.index(min(workers))] += d
    return max(workers)


def estimate_evaluation(
    timing: Timing,
    members: int,
    cv_folds: int,
    grow: bool,
    sparsities: int,
    epochs: int,
    fine_tune_epochs: int,
) -> float:
    """Seconds the phase should take: its trainings on ``timing.parallel`` workers.

    Each member's trainings cost what it took to train in the search (``Timing.members``). A
    fold trains on (k−1)/k of the training and validation rows (about the training split's
    size: counted as the member once); a grown member as the last member, and the wider one
    again when the deeper was kept (counted); a fine-tune as ``(fine_tune_epochs +
    FINE_TUNE_OVERHEAD_EPOCHS) / epochs`` of its member.
    """
    each = timing.members(members)
    last = each[-1] if each else timing.candidate_s
    folds = cv_folds if cv_folds >= 2 else 0
    total = _makespan(each * folds + ([last, last] if grow else []), timing.parallel)
    if grow:
        total += last  # the width rule again on a kept deeper member
    share = (max(fine_tune_epochs, 0.5) + FINE_TUNE_OVERHEAD_EPOCHS) / max(epochs, 1)
    # one batch per sparsity level: each starts from the weights the level before left
    total += sparsities * _makespan([d * share for d in each], timing.parallel)
    return total


def smallest_evaluation(
    timing: Timing, members: int, epochs: int, fine_tune_epochs: int, refit: bool = False
) -> float:
    """The phase cut to its least: one sparsity level (and the refit), no folds, no grow
    rules."""
    return estimate_evaluation(timing, members, 0, False, 1 + refit, epochs, fine_tune_epochs)


def essential_evaluation(
    timing: Timing, members: int, epochs: int, fine_tune_epochs: int, ev: Any
) -> float:
    """What a budget-filling search keeps time for: every sparsity level and the refit (a
    fine-tune batch like a level's) — the steps that shrink the model. Neither
    cross-validation (an estimate) nor the grow rules: each grow rule retrains the last member
    at full length, as long as a search candidate, and on MNIST-1D (600 s jobs, 60 epochs) the
    time kept for them cost the search its second iteration, while the rules' changes, kept
    on a gain of one or two of 600 validation rows, lowered the test accuracy (97.5 / 98.3 /
    98.1% with them reserved, 98.4 / … without: README, search quality)."""
    levels = len(ev.sparsities) + bool(getattr(ev, "refit", False))
    return estimate_evaluation(timing, members, 0, False, levels, epochs, fine_tune_epochs)


def may_start_iteration(
    budget_s: float, spent_s: float, timing: Timing | None, members_after: int, spec: Any
) -> tuple[bool, str]:
    """Whether one more iteration fits: after it, the smallest evaluation phase and the export
    must still fit in the budget. Before the first iteration there is nothing to go by: it
    starts (a job must have a model)."""
    if timing is None:
        return True, ""
    ev = spec.evaluation
    after = spent_s + timing.iteration_s
    tail = export_reserve(budget_s, members_after)
    if ev.enabled:
        if getattr(spec, "fills_budget", False):
            # the budget, not an iteration count, ends this search: keep time for the steps
            # that shrink the model (every sparsity level); cross-validation and the grow
            # rules get what is left
            tail += essential_evaluation(
                timing, members_after, spec.train_epochs, ev.tune_epochs, ev
            )
        else:
            tail += smallest_evaluation(
                timing,
                members_after,
                spec.train_epochs,
                ev.tune_epochs,
                bool(getattr(ev, "refit", False)),
            )
    if after + tail <= budget_s:
        return True, ""
    return False, (
        f"{spent_s:.0f} s of the {budget_s:g} s budget spent; another iteration (~"
        f"{timing.iteration_s:.0f} s) and the evaluation phase and export (~{tail:.0f} s) would "
        "not fit"
    )


def iteration_candidates(
    budget_s: float,
    spent_s: float,
    timing: Timing | None,
    members_after: int,
    spec: Any,
    candidates: int,
) -> tuple[int, str]:
    """How many of an iteration's ``candidates`` to train so that it fits, and why fewer.

    All of them when the whole iteration fits (``may_start_iteration``). Else fewer rounds of
    trainings: with ``timing.parallel`` trainings at once an iteration of ``candidates`` takes
    ``ceil(candidates / parallel)`` rounds, and one of fewer candidates proportionally fewer
    (``Timing.iteration_s`` is a whole iteration's wall). The most rounds that fit, filled:
    on 2 workers an iteration of 4 candidates that does not fit may still train 2 (the
    paper's two after the first iteration: the last member's configuration again, and one
    layer deeper). 0, with ``may_start_iteration``'s reason, when not even one round fits.
    Before the first iteration: all of them. On MNIST-1D's 600 s jobs on a slow machine the
    search stopped after 2 iterations of ~170 s each with ~80–130 s of the budget unused: one
    round (~90 s) fitted where a whole iteration did not."""
    fits, why = may_start_iteration(budget_s, spent_s, timing, members_after, spec)
    if fits or timing is None:
        return candidates, ""
    full_rounds = _rounds(candidates, timing.parallel)
    for rounds in range(full_rounds - 1, 0, -1):
        shorter = Timing(
            timing.candidate_s,
            timing.iteration_s * rounds / full_rounds,
            timing.parallel,
            timing.member_s,
        )
        if may_start_iteration(budget_s, spent_s, shorter, members_after, spec)[0]:
            count = min(candidates, rounds * max(1, timing.parallel))
            return count, (
                f"{count} of {candidates} candidates: a whole iteration (~"
                f"{timing.iteration_s:.0f} s) would not fit in the budget's "
                f"{budget_s - spent_s:.0f} s left with the evaluation phase and export, "
                f"{rounds} round(s) of {max(1, timing.parallel)} training(s) at once (~"
                f"{shorter.iteration_s:.0f} s) do"
            )
    return 0, why


def plan_evaluation(
    spec: Any, timing: Timing | None, members: int, time_left_s: float | None
) -> EvaluationPlan:
    """The largest evaluation phase that fits in ``time_left_s`` (all of it without a budget).

    Cuts, in order, until the estimate fits: sparsity levels (keeping the middle ones, the
    likeliest to be kept), cross-validation folds (down to 2), the grow rules, then
    cross-validation itself; at the least one sparsity level is tried. When the budget decided
    the search's length (``spec.fills_budget``) cross-validation goes first (folds, then all
    of it), then the grow rules, since the search kept time for the sparsity levels.
    """
    ev = spec.evaluation
    folds = ev.cv_folds if ev.cv_folds >= 2 else 0
    grow = bool(ev.grow)
    levels = list(ev.sparsities)
    tune_epochs = ev.tune_epochs
    if time_left_s is None or timing is None:
        return EvaluationPlan(folds, grow, levels, 0.0, time_left_s, fine_tune_epochs=tune_epochs)

    refit = bool(getattr(ev, "refit", False))
    # a size goal may add the level that meets it (automl.evaluation.goal_sparsity)
    goal_level = getattr(ev, "max_nonzero_params", None) is not None

    def cost() -> float:
        # the refit is one more batch of fine-tunes, as a sparsity level's
        return estimate_evaluation(
            timing,
            members,
            folds,
            grow,
            len(levels) + refit + goal_level,
            spec.train_epochs,
            tune_epochs,
        )

    cuts: list[str] = []
    available = time_left_s
    # a search the budget ended kept time for the steps that shrink the model (the sparsity
    # levels): cross-validation, which only estimates the model, goes first there, then the
    # grow rules (see essential_evaluation)
    estimate_first = bool(getattr(spec, "fills_budget", False))
    while cost() > available:
        before = cost()
        if estimate_first and folds:
            folds = folds - 1 if folds > 2 else 0
            what = (
                f"cross-validation with {folds} folds instead of {ev.cv_folds}"
                if folds
                else "cross-validation skipped"
            )
        elif estimate_first and grow:
            grow = False
            what = "grow rules skipped"
        elif len(levels) > 2:
            # the extremes go first: the lowest saves least, the highest is the likeliest to
            # lose more than the tolerance
            drop = levels[-1] if len(levels) % 2 == 0 else levels[0]
            levels = [v for v in levels if v != drop]
            what = f"sparsity {drop:g} not tried"
        elif folds > 2:
            folds -= 1
            what = f"cross-validation with {folds} folds instead of {ev.cv_folds}"
        elif grow:
            grow = False
            what = "grow rules skipped"
        elif folds:
            folds = 0
            what = "cross-validation skipped"
        elif len(levels) > 1:
            levels = [levels[(len(levels) - 1) // 2]]
            what = f"only sparsity {levels[0]:g} tried"
        else:
            cuts.append(
                f"even the smallest phase (~{before:.0f} s) may not fit in the "
                f"{available:.0f} s left"
            )
            break
        cuts.append(f"{what} (~{before:.0f} s estimated, {available:.0f} s left)")
    extended: list[str] = []
    # only when every step the plan keeps time for is in: after a budget-filling search,
    # cutting cross-validation (an estimate of the model, not a change to it) or the grow rules
    # (which the search keeps no time for: essential_evaluation) does not stop it — the time
    # they could not use goes to the pruned members' fine-tunes instead of going unused (on
    # MNIST-1D 600 s jobs ended ~120 s early with 3-epoch fine-tunes at a sparsity that cost
    # 0.4 points on test)
    model_steps_cut = levels != list(ev.sparsities) or (
        grow != bool(ev.grow) and not estimate_first
    )
    if (
        (not cuts or (estimate_first and not model_steps_cut))
        and getattr(ev, "extend_fine_tune", False)
        and levels
        and tune_epochs > 0
    ):
        # time to spare (a search that stopped by its own rule before the budget): longer
        # fine-tunes, up to a candidate's epochs, with a fifth of the time left kept in hand
        # (estimates run short); pruned members recover more of what the mask cost them
        most = max(ev.tune_epochs, spec.train_epochs)
        before = tune_epochs
        while tune_epochs < most:
            tune_epochs += 1
            if cost() > EXTEND_SHARE * available:
                tune_epochs -= 1
                break
        if tune_epochs > before:
            extended.append(
                f"fine-tunes get {tune_epochs} epochs instead of {before}: the time left "
                f"({available:.0f} s) allows it (~{cost():.0f} s estimated)"
            )
    return EvaluationPlan(
        folds,
        grow,
        levels,
        cost(),
        time_left_s,
        cuts,
        fine_tune_epochs=tune_epochs,
        extended=extended,
    )
