"""The ``rl`` sampler: a REINFORCE controller that learns from told objectives, repeatably."""

from __future__ import annotations

import json
import math
from typing import Any

import optuna
import pytest

from automl.data import load_builtin
from automl.generator import CandidateGenerator
from automl.rl import ReinforceSampler
from automl.samplers import create_sampler
from automl.spec import SearchSpec

ARMS = ["a", "b", "c", "d"]


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(params: dict[str, Any]) -> float:
    """F: arm "a" is best by a wide margin; x is best near 10^-3.5 (bucket 1 of 8 on its range)."""
    arm_cost = 1.0 if params["arm"] == "a" else 2.0
    return arm_cost + 0.5 * abs(math.log10(params["x"]) + 3.5)


def _suggest(trial: optuna.trial.Trial) -> dict[str, Any]:
    return {
        "arm": trial.suggest_categorical("arm", ARMS),
        "x": trial.suggest_float("x", 1e-4, 1e-1, log=True),
        "k": trial.suggest_int("k", 1, 100),
    }


def _run(
    sampler: ReinforceSampler, n: int, sign: float = 1.0, fail_every: int = 0
) -> tuple[optuna.Study, list[dict[str, Any]]]:
    """Ask and tell ``n`` trials; ``sign=-1`` turns the objective upside down."""
    study = optuna.create_study(sampler=sampler)
    proposed = []
    for i in range(n):
        trial = study.ask()
        params = _suggest(trial)
        proposed.append(params)
        if fail_every and i % fail_every == fail_every - 1:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            # a scale no loss has: the advantage is normalised, so learning must not care
            study.tell(trial, sign * 100.0 * _objective(params))
    return study, proposed


def _probs(sampler: ReinforceSampler, study: optuna.Study, name: str) -> list[float]:
    probs: list[float] = sampler.policy_state(study)["parameters"][name]["probabilities"]
    return probs


def test_probability_moves_toward_the_better_arm_and_bucket() -> None:
    sampler = ReinforceSampler(seed=3)
    study, _ = _run(sampler, 40)
    arm = _probs(sampler, study, "arm")
    x = _probs(sampler, study, "x")
    assert arm[0] > 0.6, arm  # uniform is 0.25
    assert x[1] == max(x) and x[1] > 0.4, x  # uniform is 0.125
    # the same run with F upside down must move the mass away from the same arm and bucket
    flipped = ReinforceSampler(seed=3)
    study, _ = _run(flipped, 40, sign=-1.0)
    assert _probs(flipped, study, "arm")[0] < 0.1
    assert _probs(flipped, study, "x")[1] < 0.125


def test_proposals_concentrate_on_the_better_arm() -> None:
    _, proposed = _run(ReinforceSampler(seed=11), 60)
    early = sum(p["arm"] == "a" for p in proposed[:15])
    late = sum(p["arm"] == "a" for p in proposed[-15:])
    assert late >= 10 and late > early


def test_a_failed_trial_lowers_the_probability_of_its_choices() -> None:
    sampler = ReinforceSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    for arm, value in (("a", 1.0), ("b", 2.0)):
        study.enqueue_trial({"arm": arm, "x": 1e-3, "k": 5})
        trial = study.ask()
        _suggest(trial)
        study.tell(trial, value)
    before = _probs(sampler, study, "arm")
    study.enqueue_trial({"arm": "c", "x": 1e-3, "k": 5})
    trial = study.ask()
    _suggest(trial)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    after = _probs(sampler, study, "arm")
    assert after[2] < before[2] - 0.01
    assert sampler.policy_state(study)["failed"] == 1


def test_a_trial_lost_to_the_cluster_teaches_the_policy_nothing() -> None:
    """The generator tells a candidate whose worker died as ``lost``: a failure of the
    cluster, not of its settings, so the policy stays exactly where it was (a training
    failure, told the same way otherwise, lowers its arm: the test above)."""
    spec = SearchSpec(sampler="rl", candidates_per_iteration=3, seed=4)
    gen = CandidateGenerator(spec, spec.resolve_families(load_builtin("digits").kind))
    first = gen.propose(0, None)
    for i, c in enumerate(first):
        gen.tell(c.name, 1.0 + i, 0.1)
    before = gen.sampler_state()
    lost, failing, _ = gen.propose(1, first[0].hparams)
    gen.tell(lost.name, None, None, lost=True)
    after = gen.sampler_state()
    assert before is not None and after is not None
    assert after["parameters"] == before["parameters"] and after["failed"] == 0
    # a candidate failing in training, told the same way otherwise, is learned from
    gen.tell(failing.name, None, None)
    state = gen.sampler_state()
    assert state is not None and state["failed"] == 1
    assert state["parameters"] != before["parameters"]


def test_same_seed_and_told_values_give_the_same_proposals() -> None:
    _, first = _run(ReinforceSampler(seed=5), 25, fail_every=7)
    _, second = _run(ReinforceSampler(seed=5), 25, fail_every=7)
    _, other = _run(ReinforceSampler(seed=6), 25, fail_every=7)
    assert first == second
    assert first != other


def test_a_fresh_sampler_replaying_the_trials_reaches_the_same_policy() -> None:
    incremental = ReinforceSampler(seed=9)
    study, _ = _run(incremental, 30, fail_every=5)
    state = incremental.policy_state(study)
    assert state["completed"] == 24 and state["failed"] == 6
    # rebuilt from the finished trials alone, as a resumed search's new sampler is
    fresh = ReinforceSampler(seed=9)
    assert fresh.policy_state(study) == state
    # and it goes on proposing what the incremental one would have
    assert json.loads(json.dumps(state)) == state
    replay = optuna.create_study(sampler=ReinforceSampler(seed=9))
    for trial in study.trials:
        asked = replay.ask()
        assert _suggest(asked) == trial.params
        replay.tell(asked, trial.value, state=trial.state)
    replay_sampler = replay.sampler
    assert isinstance(replay_sampler, ReinforceSampler)
    assert replay_sampler.policy_state(replay) == state


def test_the_policy_follows_trial_numbers_not_the_order_results_arrive() -> None:
    """A search tells an iteration's candidates in the order they finish; a resume replays them
    in stored order. Both must leave the same policy."""
    states = []
    for order in ([0, 1, 2], [2, 0, 1]):
        sampler = ReinforceSampler(seed=1)
        study = optuna.create_study(sampler=sampler)
        for _iteration in range(3):
            trials = [study.ask() for _ in range(3)]
            values = [_objective(_suggest(t)) for t in trials]
            for i in order:
                study.tell(trials[i], values[i])
                # look at the policy mid-iteration: it must not keep a result seen out of order
                sampler.policy_state(study)
        states.append(sampler.policy_state(study))
    assert states[0] == states[1]
    assert states[0]["completed"] == 9


def test_enqueued_fixed_params_are_respected_and_teach_the_policy() -> None:
    sampler = ReinforceSampler(seed=2)
    study, _ = _run(sampler, 6)
    before = _probs(sampler, study, "arm")
    study.enqueue_trial({"arm": "d", "x": 0.05})
    trial = study.ask()
    params = _suggest(trial)
    assert params["arm"] == "d" and params["x"] == 0.05
    assert 1 <= params["k"] <= 100  # the free parameter is still sampled
    study.tell(trial, -1000.0)  # far better than anything seen
    assert _probs(sampler, study, "arm")[3] > before[3] + 0.05
    # a fixed value outside the space teaches that parameter nothing, and breaks nothing
    updates = sampler.policy_state(study)["parameters"]["k"]["updates"]
    study.enqueue_trial({"arm": "a", "k": 500})
    trial = study.ask()
    with pytest.warns(UserWarning, match="out of range"):
        assert _suggest(trial)["k"] == 500
    study.tell(trial, -2000.0)
    state = sampler.policy_state(study)
    assert state["parameters"]["k"]["updates"] == updates
    assert state["parameters"]["arm"]["updates"] == updates + 1


def test_numeric_actions_cover_their_ranges() -> None:
    sampler = ReinforceSampler(seed=4)
    study = optuna.create_study(sampler=sampler)
    seen: dict[str, set[Any]] = {"small": set(), "big": set(), "p": set()}
    for _ in range(200):
        trial = study.ask()
        small = trial.suggest_int("small", 2, 6)
        big = trial.suggest_int("big", 1, 5000, log=True)
        p = trial.suggest_float("p", 0.0, 0.3)
        assert 2 <= small <= 6 and 1 <= big <= 5000 and 0.0 <= p <= 0.3
        seen["small"].add(small)
        seen["big"].add(int(math.log10(big)))
        seen["p"].add(int(p / 0.0375))
        study.tell(trial, 1.0)
    assert seen["small"] == {2, 3, 4, 5, 6}
    assert seen["big"] == {0, 1, 2, 3}
    assert seen["p"] >= set(range(8))
    state = sampler.policy_state(study)["parameters"]
    assert state["small"]["choices"] == [2, 3, 4, 5, 6]
    assert len(state["big"]["choices"]) == 8
    assert state["big"]["choices"][0][0] == 1 and state["big"]["choices"][-1][1] == 5000


def test_the_generator_proposes_valid_candidates_with_rl() -> None:
    spec = SearchSpec(sampler="rl", candidates_per_iteration=4, seed=3)
    families = spec.resolve_families(load_builtin("digits").kind)
    assert families == ["dense", "conv2d"]
    assert isinstance(create_sampler("rl", 3), ReinforceSampler)

    def search(gen: CandidateGenerator) -> list[dict[str, Any]]:
        proposed = []
        last = None
        for iteration in range(4):
            specs = gen.propose(iteration, last)
            for s in reversed(specs):  # results arrive in any order
                hp = s.hparams
                proposed.append(hp)
                failed = hp["optimizer"] == "nesterov" and hp["family"] == "conv2d"
                loss = (0.5 if hp["family"] == "conv2d" else 1.0) + 0.1 * hp["depth"]
                gen.tell(s.name, None if failed else loss, None if failed else 0.01)
            last = specs[0].hparams
        return proposed

    gen = CandidateGenerator(spec, families)
    proposed = search(gen)
    assert len(proposed) == 16
    for hp in proposed:
        space = spec.space_for(hp["family"])
        assert hp["family"] in families
        assert space.depth.low <= hp["depth"] <= space.depth.high
        assert hp["width"] in space.width and hp["activation"] in space.activation
        assert space.dropout.low <= hp["dropout"] <= space.dropout.high
        assert space.l2.low <= hp["l2"] <= space.l2.high
        assert hp["optimizer"] in spec.optimizers and hp["batch_size"] in spec.batch_size
        assert spec.learning_rate.low <= hp["learning_rate"] <= spec.learning_rate.high
        assert ("decay_power" in hp) == (hp["schedule"] == "inverse_time")
        assert ("decay_rate" in hp) == (hp["schedule"] == "exponential")
        if hp["family"] == "conv2d":
            assert hp["filters"] in spec.conv2d.filters
            assert hp["kernel_size"] in spec.conv2d.kernel_size
    state = gen.sampler_state()
    assert state is not None and state["completed"] + state["failed"] <= 16
    assert json.loads(json.dumps(state)) == state
    assert state["parameters"]["family"]["choices"] == families
    # a resumed search rebuilds the generator and replays: the same proposals, the same policy
    again = CandidateGenerator(spec, families)
    assert search(again) == proposed
    assert again.sampler_state() == state
