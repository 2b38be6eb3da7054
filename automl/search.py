"""The AdaNet loop (Cortes et al., 2017).

Each iteration: the generator proposes subnetworks, an executor trains them on their own loss,
each strategy forms candidate ensembles (previous members frozen + new ones), the ensembler fits
their mixture weights, and the candidate ensemble with the lowest objective
F = loss + Σ_j (λ·r(h_j) + β)·|w_j|₁ wins — unless the previous ensemble, itself a candidate,
is at least as good, in which case the search stops. Frozen members' outputs are computed once,
when they are trained, and reused by every later candidate ensemble.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.budget import Timing, iteration_candidates
from automl.complexity import SubnetworkShape, create_complexity_measure
from automl.data import PreparedData
from automl.ensemble import (
    Candidate,
    ComplexityRegularizedEnsembler,
    Member,
    MixtureFit,
    create_strategy,
)
from automl.errors import SearchAbortedError
from automl.executors import EpochReporter, Executor, InProcessExecutor
from automl.generator import CandidateGenerator
from automl.spec import SearchSpec
from automl.training import CandidateResult, CandidateSpec, TrainingData

if TYPE_CHECKING:
    from automl.halving import SuccessiveHalving

# F must fall by more than the solver's tolerance to count as progress: a candidate whose mixture
# weights all went to zero equals the previous ensemble up to round-off, and must not win.
IMPROVEMENT_TOL = 1e-7


@dataclass
class EnsembleRecord:
    """One candidate ensemble of an iteration with its fitted mixture weights and objective."""

    name: str
    strategy: str
    members: list[str]
    new_members: list[str]
    mixture_weights: list[Any]
    bias: list[float]
    loss: float
    complexity: float
    objective: float
    metrics: dict[str, float]
    chosen: bool = False
    # its members' parameters together (0 in records from before it was kept): with a size
    # goal the search chooses none over spec.evaluation.search_param_cap
    params: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CandidateRecord:
    """One candidate subnetwork: what was tried, how it trained, and how its ensembles scored.

    ``loss``/``complexity``/``objective`` are those of the best candidate ensemble it belongs to.
    """

    name: str
    iteration: int
    origin: str
    hparams: dict[str, Any]
    seed: int
    state: str
    depth: int = 0
    params: int = 0
    complexity_measure: float = 0.0
    loss: float | None = None
    complexity: float | None = None
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    own_metrics: dict[str, float] = field(default_factory=dict)
    chosen: bool = False
    epochs_run: int = 0
    duration_s: float = 0.0
    train_s: float = 0.0
    node: str = ""
    error: str | None = None
    attempts: int = 1
    failure_kind: str | None = None  # training | infrastructure, for a failed candidate
    # per-epoch training curves as Keras logs them (loss, val_loss, accuracy, val_accuracy...),
    # and with successive halving the proxy objective reported each epoch (automl.halving)
    history: dict[str, list[float]] = field(default_factory=dict)
    # of a stopped_early candidate: "pruned" (successive halving) or "patience"
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IterationRecord:
    iteration: int
    previous_objective: float
    candidates: list[CandidateRecord] = field(default_factory=list)
    ensembles: list[EnsembleRecord] = field(default_factory=list)
    chosen: str | None = None
    best_objective: float | None = None
    improved: bool = False
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "previous_objective": self.previous_objective,
            "best_objective": self.best_objective,
            "chosen": self.chosen,
            "improved": self.improved,
            "duration_s": self.duration_s,
            "candidates": [c.to_dict() for c in self.candidates],
            "ensembles": [e.to_dict() for e in self.ensembles],
        }


@dataclass
class FinalEnsemble:
    """The ensemble the search ended with: frozen members and their mixture weights."""

    members: list[Member]
    fit: MixtureFit
    strategy: str = "grow"

    @property
    def params(self) -> int:
        return sum(m.params for m in self.members)


@dataclass
class SearchResult:
    spec: SearchSpec
    data: PreparedData
    families: list[str]
    iterations: list[IterationRecord]
    ensemble: FinalEnsemble
    stop_reason: str
    wall_s: float  # the search's time, over every run of a resumed one
    member_logits: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    # the sampler's own state where it has one (the rl controller's policy), for the report
    sampler_state: dict[str, Any] | None = None
    # with spec.time_budget_s: the seconds left of it when the search stopped, and what the
    # search measured (to plan the evaluation phase in what is left)
    budget_left_s: float | None = None
    timing: Timing | None = None
    stop_detail: str = ""  # why the budget (or the size goal's cap) stopped it, in words
    # iterations the budget shortened (fewer candidates than the spec's), each with why
    iteration_notes: list[str] = field(default_factory=list)


@dataclass
class ResumeState:
    """What an interrupted search had finished: its completed iterations (with every candidate's
    stored record) and the trained weights of the members of its last chosen ensemble.

    The generator is deterministic, so replaying the completed iterations' proposals and told
    values puts the sampler back where it was; the search then continues with the next iteration
    and no completed candidate is trained again.
    """

    iterations: list[IterationRecord]
    member_weights: dict[str, list[np.ndarray]]

    @property
    def elapsed_s(self) -> float:
        """Time the completed iterations took: it counts against ``spec.time_budget_s``."""
        return sum(rec.duration_s for rec in self.iterations)


class SearchCallback:
    """Observes a search. The CLI, the tests and the service subclass it; every hook is optional."""

    def on_search_start(self, spec: SearchSpec, data: PreparedData, families: list[str]) -> None:
        """Called once before the first iteration."""

    def on_iteration_start(self, iteration: int, specs: list[CandidateSpec]) -> None:
        """Called with the candidates proposed for this iteration."""

    def on_candidate_start(self, spec: CandidateSpec) -> None:
        """Called when a candidate starts training."""

    def on_epoch_end(self, spec: CandidateSpec, epoch: int, logs: dict[str, float]) -> None:
        """Called after each training epoch of a candidate (where the executor reports them)."""

    def on_candidate_result(self, result: CandidateResult) -> None:
        """Called with the raw result (trained weights included) before it is scored."""

    def on_candidate_end(self, record: CandidateRecord) -> None:
        """Called when a candidate finished training and its ensembles were scored."""

    def on_ensemble_chosen(self, record: IterationRecord, ensemble: FinalEnsemble) -> None:
        """Called at the end of each iteration with the ensemble now in force."""

    def on_note(self, message: str) -> None:
        """Called with a decision the search took that the record should say in words (an
        iteration the time budget shortened)."""

    def on_search_end(self, result: SearchResult) -> None:
        """Called once when the search stops."""

    def should_stop(self) -> bool:
        """Polled while candidates train; return True to cancel the search."""
        return False


class CallbackList(SearchCallback):
    """Forwards every hook to each callback in order."""

    def __init__(self, callbacks: Sequence[SearchCallback]) -> None:
        self.callbacks = list(callbacks)

    def on_search_start(self, spec: SearchSpec, data: PreparedData, families: list[str]) -> None:
        for cb in self.callbacks:
            cb.on_search_start(spec, data, families)

    def on_iteration_start(self, iteration: int, specs: list[CandidateSpec]) -> None:
        for cb in self.callbacks:
            cb.on_iteration_start(iteration, specs)

    def on_candidate_start(self, spec: CandidateSpec) -> None:
        for cb in self.callbacks:
            cb.on_candidate_start(spec)

    def on_epoch_end(self, spec: CandidateSpec, epoch: int, logs: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(spec, epoch, logs)

    def on_candidate_result(self, result: CandidateResult) -> None:
        for cb in self.callbacks:
            cb.on_candidate_result(result)

    def on_candidate_end(self, record: CandidateRecord) -> None:
        for cb in self.callbacks:
            cb.on_candidate_end(record)

    def on_ensemble_chosen(self, record: IterationRecord, ensemble: FinalEnsemble) -> None:
        for cb in self.callbacks:
            cb.on_ensemble_chosen(record, ensemble)

    def on_note(self, message: str) -> None:
        for cb in self.callbacks:
            cb.on_note(message)

    def on_search_end(self, result: SearchResult) -> None:
        for cb in self.callbacks:
            cb.on_search_end(result)

    def should_stop(self) -> bool:
        return any(cb.should_stop() for cb in self.callbacks)


class SelectionFit:
    """Mixture weights fitted, and F scored, on the spec's selection split (train or
    validation) with class weights — the one way the search, the evaluation phase and replay
    fit an ensemble of trained members."""

    def __init__(self, spec: SearchSpec, data: PreparedData) -> None:
        self.split = 0 if spec.selection == "train" else 1
        self.y = data.y_train if spec.selection == "train" else data.y_val
        self.sample_weight = (
            np.array([data.class_weights[int(c)] for c in self.y]) if data.class_weights else None
        )
        self.lambda_, self.beta, self.n_outputs = spec.lambda_, spec.beta, data.n_outputs
        self.ensembler = ComplexityRegularizedEnsembler(
            data.task,
            spec.mixture_weight_type,
            use_bias=spec.mixture_bias,
            nonnegative=spec.mixture_nonnegative,
        )

    def __call__(
        self, members: Sequence[Member], logits: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> MixtureFit:
        """``logits[j]`` holds member j's outputs on (train, validation)."""
        stacked = (
            np.stack([pair[self.split] for pair in logits], axis=1)
            if members
            else np.zeros((len(self.y), 0, self.n_outputs), np.float32)
        )
        coef = np.array([self.lambda_ * m.complexity + self.beta for m in members])
        return self.ensembler.fit(stacked, self.y, coef, self.sample_weight)


def member_from_result(result: CandidateResult, measure: Any) -> Member:
    """A trained subnetwork as a frozen member, its complexity r(h) measured."""
    return Member(
        name=result.spec.name,
        iteration=result.spec.iteration,
        hparams=result.spec.hparams,
        seed=result.spec.seed,
        depth=result.depth,
        params=result.params,
        complexity=measure(SubnetworkShape(result.depth, result.params)),
        weights=tuple(result.weights),
    )


@dataclass
class _State:
    """The ensemble in force and what the generator builds on next."""

    current_fit: MixtureFit
    current: list[str] = field(default_factory=list)
    strategy: str = "none"
    last_member: dict[str, Any] | None = None
    iterations: list[IterationRecord] = field(default_factory=list)
    finished: bool = False

    def adopt(self, best: EnsembleRecord, by_name: dict[str, CandidateRecord]) -> None:
        self.current = list(best.members)
        self.current_fit = MixtureFit(
            weights=np.asarray(best.mixture_weights, np.float32),
            bias=np.asarray(best.bias, np.float32),
            loss=best.loss,
            complexity=best.complexity,
            objective=best.objective,
            metrics=best.metrics,
        )
        self.strategy = best.strategy
        # the paper's next candidates build on the best new member (by its own loss)
        newest = min(
            best.new_members, key=lambda n: by_name[n].own_metrics.get("loss", float("inf"))
        )
        self.last_member = by_name[newest].hparams


class AdaNetSearch:
    """Runs the AdaNet loop for a spec on prepared data.

    Args:
        spec: The search spec.
        data: The prepared split (``automl.data.prepare``).
        executor: Where candidates train; in this process by default.
        callbacks: Observers of progress.
    """

    def __init__(
        self,
        spec: SearchSpec,
        data: PreparedData,
        executor: Executor | None = None,
        callbacks: Sequence[SearchCallback] = (),
    ) -> None:
        # what the spec leaves to the data (epochs) is decided here, once: everything after
        # (generator, evaluation phase, report, replay) sees the spec as it ran
        self.spec = spec = spec.for_data(data.dataset.kind)
        self.data = data
        self.executor = executor or InProcessExecutor()
        self.cb = CallbackList(callbacks)
        self.families = spec.resolve_families(data.dataset.kind)
        self.measure = create_complexity_measure(spec.complexity_measure)
        self.strategies = [create_strategy(s) for s in spec.ensemble_strategies]
        self.fitter = SelectionFit(spec, data)
        self._members: dict[str, Member] = {}
        self._logits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # iterations the time budget shortened, in words (SearchResult.iteration_notes)
        self.iteration_notes: list[str] = []

    # ---- helpers --------------------------------------------------------------------------
    def fit_mixture(self, names: Sequence[str]) -> MixtureFit:
        """Fit the mixture weights of an ensemble of these (already trained) members."""
        return self.fitter([self._members[m] for m in names], [self._logits[m] for m in names])

    def _score(self, candidate: Candidate) -> EnsembleRecord:
        fit = self.fit_mixture(candidate.members)
        return EnsembleRecord(
            name=candidate.name,
            strategy=candidate.strategy,
            members=list(candidate.members),
            new_members=list(candidate.new_members),
            mixture_weights=fit.weights.tolist(),
            bias=fit.bias.tolist(),
            loss=fit.loss,
            complexity=fit.complexity,
            objective=fit.objective,
            metrics=fit.metrics,
            params=sum(self._members[m].params for m in candidate.members),
        )

    def _admit(self, result: CandidateResult) -> Member:
        assert result.logits_train is not None and result.logits_val is not None
        member = member_from_result(result, self.measure)
        self._members[member.name] = member
        self._logits[member.name] = (result.logits_train, result.logits_val)
        return member

    # ---- the loop -------------------------------------------------------------------------
    def run(self, resume: ResumeState | None = None) -> SearchResult:
        """Run the search, or continue one from ``resume``."""
        started = time.perf_counter()
        generator = CandidateGenerator(self.spec, self.families)
        self.cb.on_search_start(self.spec, self.data, self.families)
        self.executor.start(TrainingData.from_prepared(self.data))
        try:
            return self._loop(generator, started, resume)
        finally:
            self.executor.close()

    def _replay(self, generator: CandidateGenerator, resume: ResumeState) -> _State:
        """Put the generator and the ensemble back where the completed iterations left them."""
        state = _State(current_fit=self.fit_mixture([]))
        for rec in resume.iterations:
            # as many as it proposed: the budget may have shortened it (iteration_candidates)
            specs = generator.propose(rec.iteration, state.last_member, len(rec.candidates))
            if len(rec.candidates) < self.spec.candidates_per_iteration:
                self.iteration_notes.append(
                    f"iteration {rec.iteration} trained {len(rec.candidates)} of "
                    f"{self.spec.candidates_per_iteration} candidates (the time budget)"
                )
            stored = {c.name: c for c in rec.candidates}
            for done in rec.candidates:
                # r(h) is not stored with a candidate (the service keeps no column for it):
                # measure it again, as _admit did when the candidate was trained
                if done.state in ("completed", "stopped_early") and done.depth > 0:
                    done.complexity_measure = self.measure(SubnetworkShape(done.depth, done.params))
            for s in specs:
                c = stored.get(s.name)
                if c is None or c.hparams != s.hparams:
                    raise SearchAbortedError(
                        f"cannot resume: candidate {s.name} of iteration {rec.iteration} differs "
                        "from the stored one (was the spec or the code changed?)"
                    )
                ok = c.state != "failed" and c.loss is not None
                pruned = False
                if generator.halving and ok:
                    from automl.halving import PROXY_KEY, replay_reports, was_pruned

                    # the trial had these reports when it was told: report them again
                    replay_reports(generator, s.name, c.history.get(PROXY_KEY) or [])
                    pruned = was_pruned(c.state, c.stop_reason, c.history, self.spec)
                generator.tell(
                    s.name,
                    c.loss if ok else None,
                    c.complexity if ok else None,
                    pruned,
                    lost=c.failure_kind == "infrastructure",
                )
            state.iterations.append(rec)
            if rec.chosen:
                best = next(e for e in rec.ensembles if e.name == rec.chosen)
                state.adopt(best, stored)
            else:
                state.finished = not self.spec.force_grow
        for name in state.current:
            c = next(c for r in resume.iterations for c in r.candidates if c.name == name)
            self._admit_stored(c, resume.member_weights[name])
        return state

    def _admit_stored(self, rec: CandidateRecord, weights: list[np.ndarray]) -> None:
        from automl.model import member_logits

        member = Member(
            name=rec.name,
            iteration=rec.iteration,
            hparams=rec.hparams,
            seed=rec.seed,
            depth=rec.depth,
            params=rec.params,
            complexity=self.measure(SubnetworkShape(rec.depth, rec.params)),
            weights=tuple(weights),
        )
        self._members[member.name] = member
        self._logits[member.name] = member_logits(member, self.data)

    def _loop(
        self, generator: CandidateGenerator, started: float, resume: ResumeState | None
    ) -> SearchResult:
        spec = self.spec
        state = (
            self._replay(generator, resume) if resume else _State(current_fit=self.fit_mixture([]))
        )
        iterations = state.iterations
        # a resumed search's budget already lost the time its completed iterations took
        spent_before = resume.elapsed_s if resume else 0.0
        stop_reason = "no_improvement" if state.finished else "max_iterations"
        consecutive_failures = 0
        first = len(iterations)
        on_epoch: EpochReporter = self.cb.on_epoch_end
        halving = None
        if spec.early_stopping.enabled:
            from automl.halving import PROXY_KEY, SuccessiveHalving

            halving = SuccessiveHalving(generator, spec, self.measure)
            on_epoch = self._halving_hook(halving)
        self.budget_note = ""
        # a size goal: the search chooses no ensemble the phase could not prune to it
        cap = spec.evaluation.search_param_cap
        for t in range(first, spec.iteration_limit if not state.finished else first):
            count = spec.candidates_per_iteration
            if spec.time_budget_s is not None:
                spent = spent_before + time.perf_counter() - started
                count, why = iteration_candidates(
                    spec.time_budget_s,
                    spent,
                    self._timing(iterations, state.current),
                    len(state.current) + 1,
                    spec,
                    spec.candidates_per_iteration,
                )
                if spent > spec.time_budget_s or count == 0:
                    stop_reason = "time_budget"
                    spent_all = f"the {spec.time_budget_s:g} s budget is spent"
                    self.budget_note = why if count == 0 and why else spent_all
                    break
                if count < spec.candidates_per_iteration:
                    note = f"iteration {t} trains {why}"
                    self.iteration_notes.append(note)
                    self.cb.on_note(note)
            it_started = time.perf_counter()
            record = IterationRecord(iteration=t, previous_objective=state.current_fit.objective)
            specs = generator.propose(t, state.last_member, count)
            self.cb.on_iteration_start(t, specs)
            by_name: dict[str, CandidateRecord] = {}
            new_ok: list[str] = []
            lost: list[CandidateRecord] = []  # failed for infrastructure reasons
            stream = self.executor.run(
                specs, on_epoch, self.cb.on_candidate_start, self.cb.should_stop
            )
            for result in stream:
                self.cb.on_candidate_result(result)
                history = result.history
                if halving is not None:
                    proxies = halving.finish(result)
                    if result.ok and proxies:
                        history = {**history, PROXY_KEY: proxies}
                rec = CandidateRecord(
                    name=result.spec.name,
                    iteration=t,
                    origin=result.spec.origin,
                    hparams=result.spec.hparams,
                    seed=result.spec.seed,
                    state=result.state,
                    depth=result.depth,
                    params=result.params,
                    own_metrics=result.own_metrics,
                    epochs_run=result.epochs_run,
                    duration_s=result.duration_s,
                    train_s=result.train_s,
                    node=result.node,
                    error=result.error,
                    attempts=result.attempts,
                    failure_kind=None if result.ok else (result.failure_kind or "training"),
                    history=history,
                    stop_reason=result.stop_reason,
                )
                by_name[rec.name] = rec
                if not result.ok:
                    generator.tell(rec.name, None, None, lost=rec.failure_kind == "infrastructure")
                    record.candidates.append(rec)
                    self.cb.on_candidate_end(rec)
                    if rec.failure_kind == "infrastructure":
                        # a lost worker or node says nothing about the candidate: it neither
                        # counts toward max_consecutive_failures nor resets the count
                        lost.append(rec)
                        continue
                    consecutive_failures += 1
                    if consecutive_failures >= spec.max_consecutive_failures:
                        last_error = (result.error or "").strip().splitlines()[-1:] or ["?"]
                        raise SearchAbortedError(
                            f"{consecutive_failures} candidates in a row failed "
                            f"(max_consecutive_failures={spec.max_consecutive_failures}); "
                            f"the last one ({rec.name}) failed with: {last_error[0]}"
                        )
                    continue
                consecutive_failures = 0
                member = self._admit(result)
                rec.complexity_measure = member.complexity
                new_ok.append(rec.name)
                # grow and solo ensembles can be scored as soon as their subnetwork is trained
                for strategy in self.strategies:
                    if strategy.name == "all":
                        continue
                    for cand in strategy.candidates(state.current, [rec.name]):
                        record.ensembles.append(self._score(cand))
                self._summarise(rec, record.ensembles, cap)
                record.candidates.append(rec)
                self.cb.on_candidate_end(rec)
            if lost and not new_ok:
                # nothing of this iteration trained and the cluster is (partly) why: concluding
                # "no improvement" would end the search on a guess; stop it so it can be resumed
                last_error = (lost[-1].error or "").strip().splitlines()[-1:] or ["?"]
                raise SearchAbortedError(
                    f"no candidate of iteration {t} could be trained: {len(lost)} of "
                    f"{len(specs)} were lost to the cluster, not to training (their workers "
                    f"died or could not be placed); the last one ({lost[-1].name}): "
                    f"{last_error[0]}"
                )
            for strategy in self.strategies:
                if strategy.name == "all" and new_ok:
                    for cand in strategy.candidates(state.current, new_ok):
                        record.ensembles.append(self._score(cand))
            for name in new_ok:
                self._summarise(by_name[name], record.ensembles, cap)
                # told once every ensemble is scored, so the stored values are the told ones
                rec = by_name[name]
                generator.tell(name, rec.loss, rec.complexity, rec.stop_reason == "pruned")

            best = self._select(record, state, cap)
            record.best_objective = None if best is None else best.objective
            improved = (
                best is not None and best.objective < state.current_fit.objective - IMPROVEMENT_TOL
            )
            if best is not None and (improved or spec.force_grow):
                best.chosen = True
                for name in best.new_members:
                    by_name[name].chosen = True
                state.adopt(best, by_name)
                record.chosen = best.name
            record.improved = bool(improved)
            record.duration_s = time.perf_counter() - it_started
            iterations.append(record)
            ensemble = FinalEnsemble(
                [self._members[m] for m in state.current], state.current_fit, state.strategy
            )
            self.cb.on_ensemble_chosen(record, ensemble)
            # members that lost are not needed again: drop their cached outputs
            for name in [m for m in self._logits if m not in state.current]:
                del self._logits[name]
                del self._members[name]
            if not improved and not spec.force_grow:
                stop_reason = "no_improvement"
                break
        if not state.current:
            raise SearchAbortedError(
                "no candidate ensemble beat the empty ensemble (a constant prediction); "
                "try more epochs, a wider search space, or smaller lambda/beta"
            )
        outcome = SearchResult(
            spec=spec,
            data=self.data,
            families=self.families,
            iterations=iterations,
            ensemble=FinalEnsemble(
                [self._members[m] for m in state.current], state.current_fit, state.strategy
            ),
            stop_reason=stop_reason,
            # a resumed search counts its completed iterations' time from the earlier runs too
            # (the iteration a crash cut short is not counted: it was trained again here)
            wall_s=spent_before + time.perf_counter() - started,
            member_logits={m: self._logits[m] for m in state.current},
            sampler_state=generator.sampler_state(),
            budget_left_s=(
                None
                if spec.time_budget_s is None
                else spec.time_budget_s - spent_before - (time.perf_counter() - started)
            ),
            timing=self._timing(iterations, state.current),
            stop_detail=self.budget_note,
            iteration_notes=list(self.iteration_notes),
        )
        self.cb.on_search_end(outcome)
        return outcome

    def _halving_hook(self, halving: SuccessiveHalving) -> EpochReporter:
        """The executor's epoch hook: the callbacks first, then successive halving (which may
        raise ``CandidatePrunedError`` to stop the candidate)."""

        def on_epoch(spec: CandidateSpec, epoch: int, logs: dict[str, float]) -> None:
            self.cb.on_epoch_end(spec, epoch, logs)
            halving.on_epoch(spec, epoch, logs)

        return on_epoch

    def _timing(self, iterations: list[IterationRecord], members: list[str]) -> Timing | None:
        """How long candidates, iterations and the current ``members`` took so far (None
        before the first)."""
        done = {
            c.name: c.duration_s
            for it in iterations
            for c in it.candidates
            if c.state != "failed" and c.duration_s
        }
        parallel = self.executor.parallelism
        full = math.ceil(self.spec.candidates_per_iteration / max(1, parallel))
        # a whole iteration's wall: one the budget shortened (fewer rounds of trainings)
        # counts as the whole one it stands for
        walls = [
            it.duration_s * full / max(1, math.ceil(len(it.candidates) / max(1, parallel)))
            for it in iterations
            if it.duration_s and it.candidates
        ]
        if not done or not walls:
            return None
        mean = float(np.mean(list(done.values())))
        return Timing(
            candidate_s=mean,
            iteration_s=float(np.mean(walls)),
            parallel=parallel,
            member_s=[float(done.get(m, mean)) for m in members],
        )

    def _select(
        self, record: IterationRecord, state: _State, cap: int | None
    ) -> EnsembleRecord | None:
        """The iteration's candidate ensemble of lowest F, of those within the size cap
        (``search_param_cap``) when there is one. Over the cap counts only while the ensemble
        is empty and nothing fits (the search must end with a model: the phase then brings it
        as close to the goal as it can, and records the goal as missed if it cannot). Sets
        the stop detail when an ensemble over the cap was the one that would have improved."""
        best = min(record.ensembles, key=lambda e: e.objective, default=None)
        if cap is None or best is None or best.params <= cap:
            return best
        within = [e for e in record.ensembles if e.params <= cap]
        if not within and not state.current:
            return best
        chosen = min(within, key=lambda e: e.objective, default=None)
        if best.objective < state.current_fit.objective - IMPROVEMENT_TOL and (
            chosen is None or chosen.objective >= state.current_fit.objective - IMPROVEMENT_TOL
        ):
            self.budget_note = (
                f"the size goal: iteration {record.iteration}'s best candidate ensemble "
                f"({best.name}, {best.params:,} parameters) is over the search's cap of "
                f"{cap:,} (max_nonzero_params / (1 - goal_search_sparsity)), and none within "
                "it lowered F"
            )
        return chosen

    @staticmethod
    def _summarise(
        rec: CandidateRecord, ensembles: list[EnsembleRecord], cap: int | None = None
    ) -> None:
        """A candidate's loss, complexity and F: those of the best ensemble it is new in,
        within the size cap where it is in one (so a sampler learns what the cap allows)."""
        mine = [e for e in ensembles if rec.name in e.new_members]
        if cap is not None:
            mine = [e for e in mine if e.params <= cap] or mine
        if not mine:
            return
        best = min(mine, key=lambda e: e.objective)
        rec.loss, rec.complexity, rec.objective = best.loss, best.complexity, best.objective
        rec.metrics = dict(best.metrics)


def run_search(
    spec: SearchSpec,
    data: PreparedData,
    executor: Executor | None = None,
    callbacks: Sequence[SearchCallback] = (),
) -> SearchResult:
    """Convenience wrapper: ``AdaNetSearch(spec, data, executor, callbacks).run()``."""
    return AdaNetSearch(spec, data, executor, callbacks).run()
