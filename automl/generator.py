"""The candidate generator: the paper's two candidates plus ones sampled through Optuna.

Deterministic for its inputs: the same spec, seed and history of told values give the same
candidates. Every candidate, the paper's included, is an Optuna trial (the paper's are enqueued
with fixed parameters), so the sampler learns from all of them through ask/tell.
"""

from __future__ import annotations

import logging
from typing import Any

from automl.samplers import create_sampler, is_multi_objective
from automl.spec import SearchSpec
from automl.training import CandidateSpec


def candidate_seed(seed: int, iteration: int, index: int) -> int:
    return (seed * 1_000_003 + iteration * 1_009 + index * 7_919) % (2**31 - 1)


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
        self.study = optuna.create_study(
            sampler=create_sampler(spec.sampler, spec.seed),
            directions=["minimize", "minimize"] if multi else ["minimize"],
        )
        self.multi_objective = multi
        self._trials: dict[str, Any] = {}

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

    def propose(self, iteration: int, last_member: dict[str, Any] | None) -> list[CandidateSpec]:
        """Candidates for iteration ``iteration`` (0-based) given the last chosen member's
        hyperparameters (``None`` at the start)."""
        n = self.spec.candidates_per_iteration
        origins: list[str] = []
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
            specs.append(
                CandidateSpec(
                    name=name,
                    iteration=iteration,
                    index=index,
                    hparams=hp,
                    seed=candidate_seed(self.spec.seed, iteration, index),
                    epochs=self.spec.epochs,
                    early_stopping_patience=self.spec.early_stopping_patience,
                    origin=origin,
                    trial_number=trial.number,
                )
            )
        return specs

    def sampler_state(self) -> dict[str, Any] | None:
        """What the sampler learned, JSON-serialisable: the ``rl`` controller's policy
        (``automl.rl.ReinforceSampler.policy_state``); ``None`` for samplers that keep none."""
        policy_state = getattr(self.study.sampler, "policy_state", None)
        return None if policy_state is None else policy_state(self.study)

    def tell(self, name: str, loss: float | None, complexity: float | None) -> None:
        """Report a candidate's loss and complexity term (``None`` for a failed candidate)."""
        import optuna

        trial = self._trials.pop(name)
        if loss is None or complexity is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif self.multi_objective:
            self.study.tell(trial, [loss, complexity])
        else:
            self.study.tell(trial, loss + complexity)
