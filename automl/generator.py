"""The candidate generator: the paper's two candidates plus ones sampled through Optuna.

Deterministic for its inputs: the same spec, seed and history of told values give the same
candidates. Every candidate, the paper's included, is an Optuna trial (the paper's are enqueued
with fixed parameters), so the sampler learns from all of them through ask/tell.
"""

from __future__ import annotations

import logging
from typing import Any

from automl.samplers import LOST_ATTR, create_sampler, is_multi_objective
from automl.spec import Conv1DSpace, ConvSpace, FloatRange, SearchSpec
from automl.training import CandidateSpec

log = logging.getLogger("automl.generator")

# A warm-start configuration's keys: the family, the shared training choices, and each family's
# own (``SubnetworkBuilder.suggest``); conditional ones (decay_power, decay_rate) may be there.
_COMMON_KEYS = ("depth", "width", "activation", "dropout", "l2", "batch_norm")
_CONV_KEYS = ("filters", "kernel_size")
_SHARED_KEYS = ("optimizer", "learning_rate", "schedule", "decay_power", "decay_rate", "batch_size")


def candidate_seed(seed: int, iteration: int, index: int) -> int:
    return (seed * 1_000_003 + iteration * 1_009 + index * 7_919) % (2**31 - 1)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _in_choices(value: Any, choices: list[Any]) -> bool:
    # True == 1 in Python; a batch_norm of 1 or a width of True is still not a choice
    return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices)


def _in_range(value: Any, bounds: FloatRange) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and bounds.low <= float(value) <= bounds.high


def check_configuration(
    spec: SearchSpec, families: list[str], hparams: dict[str, Any]
) -> str | None:
    """Why a warm-start configuration cannot be tried in this search, or ``None`` if it can.

    It can when its family applies to the data (is in ``families``), it names no unknown
    hyperparameter, and each value it gives lies in the spec's space: a listed choice, or
    within a range. Keys it leaves out are sampled as usual.
    """
    family = hparams.get("family")
    if family not in families:
        return f"family {_short(family)} does not apply here (searching {', '.join(families)})"
    space = spec.space_for(str(family))
    own = _COMMON_KEYS + (_CONV_KEYS if isinstance(space, ConvSpace) else ())
    own += ("shift",) if isinstance(space, Conv1DSpace) else ()
    unknown = [k for k in hparams if k != "family" and k not in own + _SHARED_KEYS]
    if unknown:
        return f"{_short(unknown[0])} is not a hyperparameter of the {family} family"
    choices: dict[str, list[Any]] = {
        "width": list(space.width),
        "activation": list(space.activation),
        "batch_norm": list(space.batch_norm),
        "optimizer": list(spec.optimizers),
        "schedule": list(spec.schedules),
        "batch_size": list(spec.batch_size),
    }
    if isinstance(space, ConvSpace):
        choices.update(filters=list(space.filters), kernel_size=list(space.kernel_size))
    if isinstance(space, Conv1DSpace):
        choices.update(shift=list(space.shift))
    ranges = {
        "dropout": space.dropout,
        "l2": space.l2,
        "learning_rate": spec.learning_rate,
        "decay_power": spec.decay_power,
        "decay_rate": spec.decay_rate,
    }
    for key, value in hparams.items():
        if key in choices and not _in_choices(value, choices[key]):
            return f"{key}={_short(value)} is not one of the spec's choices {choices[key]}"
        if key in ranges and not _in_range(value, ranges[key]):
            r = ranges[key]
            return f"{key}={_short(value)} is outside the spec's range [{r.low}, {r.high}]"
    depth = hparams.get("depth", space.depth.low)
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or not space.depth.low <= depth <= space.depth.high
    ):
        low, high = space.depth.low, space.depth.high
        return f"depth={_short(depth)} is outside the spec's range [{low}, {high}]"
    return None


class CandidateGenerator:
    """Proposes ``CandidateSpec``s for an iteration and learns from their objectives.

    Args:
        spec: The search spec.
        families: The families that apply to the data (``SearchSpec.resolve_families``).
    """

    def __init__(self, spec: SearchSpec, families: list[str]) -> None:
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        self.spec = spec
        self.families = families
        multi = is_multi_objective(spec.sampler)
        self.halving = spec.early_stopping.enabled
        options: dict[str, Any] = {}
        if self.halving:
            from automl.halving import create_pruner

            options["pruner"] = create_pruner(spec.early_stopping)
        self.study = optuna.create_study(
            sampler=create_sampler(spec.sampler, spec.seed),
            directions=["minimize", "minimize"] if multi else ["minimize"],
            **options,
        )
        self.multi_objective = multi
        self._trials: dict[str, Any] = {}
        self._warm: list[dict[str, Any]] | None = None
        self.notes: list[str] = []

    def _sample(self, trial: Any) -> dict[str, Any]:
        from automl.subnetworks import create_subnetwork_builder

        s = self.spec
        family = trial.suggest_categorical("family", self.families)
        hp: dict[str, Any] = {"family": family}
        hp.update(create_subnetwork_builder(family).suggest(trial, s.space_for(family)))
        hp["optimizer"] = trial.suggest_categorical("optimizer", s.optimizers)
        hp["learning_rate"] = trial.suggest_float(
            "learning_rate", s.learning_rate.low, s.learning_rate.high, log=s.learning_rate.log
        )
        hp["schedule"] = trial.suggest_categorical("schedule", s.schedules)
        if hp["schedule"] == "inverse_time":
            hp["decay_power"] = trial.suggest_float(
                "decay_power", s.decay_power.low, s.decay_power.high
            )
        if hp["schedule"] == "exponential":
            hp["decay_rate"] = trial.suggest_float(
                "decay_rate", s.decay_rate.low, s.decay_rate.high
            )
        hp["batch_size"] = trial.suggest_categorical("batch_size", s.batch_size)
        return hp

    def _paper_params(self, last: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """As deep as the last chosen subnetwork, and one layer deeper (capped by the space)."""
        from automl.subnetworks import SubnetworkBuilder

        if last["family"] not in self.families:
            return []
        high = self.spec.space_for(last["family"]).depth.high
        out: list[tuple[str, dict[str, Any]]] = [("paper_same_depth", dict(last))]
        if int(last["depth"]) + 1 <= high:
            deeper = dict(last)
            deeper["depth"] = int(last["depth"]) + 1
            out.append(("paper_deeper", deeper))
        return [(origin, SubnetworkBuilder.to_trial_params(hp)) for origin, hp in out]

    def propose(
        self, iteration: int, last_member: dict[str, Any] | None, count: int | None = None
    ) -> list[CandidateSpec]:
        """Candidates for iteration ``iteration`` (0-based) given the last chosen member's
        hyperparameters (``None`` at the start): ``count`` of them (the spec's
        ``candidates_per_iteration`` unless the time budget shortened the iteration), the
        enqueued ones (history, starting configurations, the paper's) first."""
        from automl.subnetworks import SubnetworkBuilder

        n = self.spec.candidates_per_iteration if count is None else count
        origins: list[str] = []
        if iteration == 0:
            # the first iteration tries the configurations history suggested, then the
            # families' starting ones, before sampling; the paper's candidates need a chosen
            # member, so they only come from iteration 1
            first = [("history", hp) for hp in self.warm_start_configurations()]
            first += [("default", hp) for hp in self.starting_configurations()]
            for origin, hp in first[:n]:
                self.study.enqueue_trial(
                    SubnetworkBuilder.to_trial_params(hp), skip_if_exists=False
                )
                origins.append(origin)
        if self.spec.paper_candidates and last_member is not None:
            for origin, params in self._paper_params(last_member)[:n]:
                self.study.enqueue_trial(params, skip_if_exists=False)
                origins.append(origin)
        origins += ["sampled"] * (n - len(origins))
        specs = []
        for index, origin in enumerate(origins):
            trial = self.study.ask()
            hp = self._sample(trial)
            name = f"t{iteration}_c{index}"
            self._trials[name] = trial
            if self.halving:
                from automl.halving import ITERATION_ATTR

                # successive halving ranks a candidate among its own iteration's
                trial.set_user_attr(ITERATION_ATTR, iteration)
            specs.append(
                CandidateSpec(
                    name=name,
                    iteration=iteration,
                    index=index,
                    hparams=hp,
                    seed=candidate_seed(self.spec.seed, iteration, index),
                    epochs=self.spec.train_epochs,
                    early_stopping_patience=self.spec.early_stopping_patience,
                    origin=origin,
                    timeout_s=self.spec.candidate_timeout_s,
                    trial_number=trial.number,
                )
            )
        return specs

    def starting_configurations(self) -> list[dict[str, Any]]:
        """The built-in starting configurations of the families searched
        (``spec.starting_configurations``; none when it is off). A value the spec's space does
        not hold is left out, to be sampled: the user's space decides."""
        from automl.subnetworks import create_subnetwork_builder

        if not self.spec.starting_configurations:
            return []
        out = []
        for family in self.families:
            start = create_subnetwork_builder(family).starting_hparams or {}
            hp = {"family": family}
            for key, value in start.items():
                if check_configuration(self.spec, self.families, {**hp, key: value}) is None:
                    hp[key] = value
            if len(hp) > 1:
                out.append(hp)
        return out

    def warm_start_configurations(self) -> list[dict[str, Any]]:
        """The spec's warm-start configurations that fit this search, in their order; each one
        skipped gets a line in ``notes`` (and the log) saying why."""
        if self._warm is None:
            self._warm = []
            total = len(self.spec.warm_start_configurations)
            for i, hp in enumerate(self.spec.warm_start_configurations):
                why = check_configuration(self.spec, self.families, hp)
                if why is None:
                    self._warm.append(dict(hp))
                    continue
                note = f"warm-start configuration {i + 1} of {total} skipped: {why}"
                self.notes.append(note)
                log.warning(note)
            extra = len(self._warm) - self.spec.candidates_per_iteration
            if extra > 0:
                note = (
                    f"{extra} warm-start configuration(s) left out: iteration 0 has "
                    f"{self.spec.candidates_per_iteration} candidates"
                )
                self.notes.append(note)
                log.info(note)
        return self._warm

    def sampler_state(self) -> dict[str, Any] | None:
        """What the sampler learned, JSON-serialisable: the ``rl`` controller's policy
        (``automl.rl.ReinforceSampler.policy_state``); ``None`` for samplers that keep none."""
        policy_state = getattr(self.study.sampler, "policy_state", None)
        return None if policy_state is None else policy_state(self.study)

    def has(self, name: str) -> bool:
        """Whether the candidate ``name`` was proposed and not told yet."""
        return name in self._trials

    def report(self, name: str, epoch: int, value: float) -> None:
        """Report a candidate's intermediate objective after ``epoch`` (successive halving)."""
        self._trials[name].report(value, epoch)

    def should_prune(self, name: str) -> bool:
        """Whether the study's pruner stops the candidate at its last reported epoch."""
        return bool(self._trials[name].should_prune())

    def tell(
        self,
        name: str,
        loss: float | None,
        complexity: float | None,
        pruned: bool = False,
        lost: bool = False,
    ) -> None:
        """Report a candidate's loss and complexity term (``None`` for a failed candidate);
        a ``pruned`` one is told so (its value is then its last reported one). A ``lost`` one
        (its worker or node died, or none could be placed) fails with the user attribute
        ``lost``: it says nothing about its configuration, so the ``rl`` controller does not
        learn from it (TPE and random ignore every failed trial anyway)."""
        import optuna

        trial = self._trials.pop(name)
        if lost:
            trial.set_user_attr(LOST_ATTR, True)
        if pruned:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif loss is None or complexity is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif self.multi_objective:
            self.study.tell(trial, [loss, complexity])
        else:
            self.study.tell(trial, loss + complexity)
