"""Successive halving of an iteration's candidates (``spec.early_stopping``).

Each candidate is an Optuna trial (``automl.generator``). After every epoch its training reports
a cheap proxy of the objective F of its candidate ensemble; the driver reports it to the trial
(``trial.report(value, epoch)``) and asks Optuna's ``SuccessiveHalvingPruner``
(``trial.should_prune()``), which at each rung (``min_epochs`` · ``reduction_factor``^k epochs)
lets a candidate go on only if it ranks in the top 1/``reduction_factor`` of the iteration's
candidates that reached that rung. A pruned candidate stops after an epoch: it comes back
``stopped_early`` with ``stop_reason="pruned"``, its weights as of that epoch.

Choices, and why:

- **The proxy.** F of "current ensemble + candidate" with the mixture refitted would cost a fit
  per candidate per epoch, and on Ray the frozen members' outputs would have to travel to every
  worker. The proxy is the candidate's own validation loss plus its complexity term
  λ·r(h) + β, from numbers every epoch's logs already hold (``val_loss``, ``params``). It ranks
  like F within an iteration: all candidate ensembles there share the same frozen members and
  mixture, so F differs between them by how well the new subnetwork fits where the ensemble
  errs and by the penalty it brings; a subnetwork that fits held-out data better lowers the
  ensemble's loss more (the subnetwork trains on its own loss, as in adanet), and the penalty
  is the one it adds at mixture weight 1. It ignores diversity (a near-copy of a member scores
  as well as a different one), which only the full refit sees — the final choice still uses F.
- **Within an iteration.** Candidates compete only with their own iteration's (a
  ``_CohortPruner`` shows the pruner those trials alone): later iterations' proxies are not
  worse or better in the same way, and every iteration's decisions then depend on that
  iteration alone, so resuming needs no rung state from earlier ones.
- **Pruned candidates are scored.** A pruned subnetwork is trained, if for fewer epochs: it
  joins the iteration's candidate ensembles like any other, and wins only if its F is the
  lowest. Its training time is already spent; excluding it would only lose information.
- **The sampler** is told ``TrialState.PRUNED`` for a pruned candidate (Optuna then takes the
  last reported proxy as its value; TPE ranks pruned trials below completed ones by the epoch
  they reached) and the candidate's F otherwise, as before. The proxies are stored in the
  candidate's ``history`` under ``PROXY_KEY``, so a resumed search reports them again before
  telling, and its sampler is where it was.
- **No decision at the last epoch.** Stopping a candidate after its last epoch saves nothing,
  and then ``pruned`` always means ``epochs_run < epochs``.

Determinism: in process, candidates train one after another and report in a fixed order, so
the same seed gives the same decisions. On Ray, several train at once and a rung's decision
depends on which candidates reached it first (asynchronous successive halving); the news also
reaches a worker an epoch or two late. Either way what was decided is recorded and replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.pruners import BasePruner, SuccessiveHalvingPruner
from optuna.trial import FrozenTrial

from automl.complexity import SubnetworkShape
from automl.training import CandidatePrunedError, CandidateResult, CandidateSpec, EpochCallback

if TYPE_CHECKING:
    from automl.generator import CandidateGenerator
    from automl.spec import EarlyStoppingSpec, SearchSpec

# the per-epoch proxy values reported to a candidate's trial, in its record's history
PROXY_KEY = "proxy_objective"
# the user attribute of a trial that says which iteration proposed it
ITERATION_ATTR = "iteration"


class _CohortView:
    """The study as seen by the wrapped pruner: the trials of one iteration only. Everything
    else (storage, direction) is the study's."""

    def __init__(self, study: optuna.Study, iteration: Any) -> None:
        self._study = study
        self._iteration = iteration

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return [
            t
            for t in self._study.get_trials(deepcopy=deepcopy, states=states)
            if t.user_attrs.get(ITERATION_ATTR) == self._iteration
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class _CohortPruner(BasePruner):
    """Runs a pruner over the trials of the judged trial's own iteration (its
    ``ITERATION_ATTR``), so that candidates compete within their iteration."""

    def __init__(self, inner: BasePruner) -> None:
        self.inner = inner

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        view = _CohortView(study, trial.user_attrs.get(ITERATION_ATTR))
        return self.inner.prune(view, trial)  # type: ignore[arg-type]


def create_pruner(settings: EarlyStoppingSpec) -> BasePruner:
    """The study's pruner for these settings: Optuna's successive halving within an iteration,
    or none."""
    if not settings.enabled:
        return optuna.pruners.NopPruner()
    return _CohortPruner(
        SuccessiveHalvingPruner(
            min_resource=settings.min_epochs,
            reduction_factor=settings.reduction_factor,
            min_early_stopping_rate=0,
        )
    )


def rung_epochs(settings: EarlyStoppingSpec, epochs: int) -> list[int]:
    """The epochs, before the last, at which a candidate of ``epochs`` epochs may be pruned."""
    out, k = [], 0
    while (e := settings.min_epochs * settings.reduction_factor**k) < epochs:
        out.append(e)
        k += 1
    return out


def was_pruned(
    state: str, stop_reason: str | None, history: Mapping[str, Any], spec: SearchSpec
) -> bool:
    """Whether a stored candidate was pruned (what its trial was told).

    Its ``stop_reason`` says so; a record that lacks one (stored where that field is not kept)
    was pruned if it stopped early with proxies reported and no patience rule could have
    stopped it.
    """
    if stop_reason is not None:
        return stop_reason == "pruned"
    return (
        state == "stopped_early"
        and bool(history.get(PROXY_KEY))
        and spec.early_stopping_patience is None
    )


def stop_after(epoch: int) -> EpochCallback:
    """An epoch hook that stops a training after ``epoch``, as the pruner did: retraining a
    pruned candidate's spec with it gives its recorded weights (the learning-rate schedule
    still spans the spec's epochs)."""

    def hook(reached: int, logs: dict[str, float]) -> None:
        if reached >= epoch:
            raise CandidatePrunedError(f"stopped after epoch {epoch}, as recorded")

    return hook


class SuccessiveHalving:
    """The driver's side of successive halving for one search.

    ``on_epoch`` is the executor's epoch hook (after the search's callbacks); ``finish`` fills
    in the epochs an executor did not report before the result came back.

    Args:
        generator: Owns the candidates' trials.
        spec: The search spec (λ, β, ``early_stopping``).
        measure: The complexity measure r(h) of the search.
    """

    def __init__(
        self,
        generator: CandidateGenerator,
        spec: SearchSpec,
        measure: Callable[[SubnetworkShape], float],
    ) -> None:
        self.generator = generator
        self.lambda_, self.beta = spec.lambda_, spec.beta
        self.measure = measure
        # first value reported per epoch (a retried candidate reports its epochs again; Optuna
        # keeps the first one, and so do we, so the stored values are the trial's)
        self._values: dict[str, dict[int, float]] = {}
        self._pruned: dict[str, int] = {}  # name -> epoch of the decision

    def proxy(self, val_loss: float, depth: int, params: int) -> float:
        """The candidate's own validation loss plus its complexity term λ·r(h) + β."""
        r = self.measure(SubnetworkShape(depth, params))
        return float(val_loss) + self.lambda_ * r + self.beta

    def _report(self, spec: CandidateSpec, epoch: int, value: float) -> bool:
        seen = self._values.setdefault(spec.name, {})
        if epoch in seen:
            return False
        seen[epoch] = value
        self.generator.report(spec.name, epoch, value)
        return True

    def on_epoch(self, spec: CandidateSpec, epoch: int, logs: Mapping[str, float]) -> None:
        """Report this epoch's proxy; raise ``CandidatePrunedError`` if the pruner stops it."""
        if "val_loss" not in logs or "params" not in logs or not self.generator.has(spec.name):
            return
        value = self.proxy(logs["val_loss"], int(spec.hparams["depth"]), int(logs["params"]))
        if not self._report(spec, epoch, value):
            return
        if spec.name in self._pruned or epoch >= spec.epochs:
            return
        if self.generator.should_prune(spec.name):
            self._pruned[spec.name] = epoch
            raise CandidatePrunedError(
                f"{spec.name}: pruned after epoch {epoch} by successive halving (proxy "
                f"objective {value:.4f} not in the top of its rung)"
            )

    def finish(self, result: CandidateResult) -> list[float]:
        """Report the epochs of ``result`` not reported yet (from its history) and return the
        values reported, by epoch (what goes into its record's history)."""
        spec = result.spec
        if result.ok and self.generator.has(spec.name):
            val_losses = result.history.get("val_loss", [])
            for i, val_loss in enumerate(val_losses):
                if i + 1 not in self._values.get(spec.name, {}):
                    self._report(spec, i + 1, self.proxy(val_loss, result.depth, result.params))
        seen = self._values.pop(spec.name, {})
        self._pruned.pop(spec.name, None)
        return [seen[e] for e in sorted(seen)]


def replay_reports(
    generator: CandidateGenerator, name: str, values: Sequence[float | None]
) -> None:
    """Report a stored candidate's proxies to its trial again, epoch by epoch (a value stored
    as null, where JSON could not hold NaN, is NaN again)."""
    for i, value in enumerate(values):
        generator.report(name, i + 1, math.nan if value is None else float(value))
