"""The AdaNet paper's reinforcement-learning controller as an Optuna sampler.

A REINFORCE policy gradient with a moving-average baseline over a factorised policy: one softmax
over each parameter's actions, where an action is a categorical choice, an integer (or a bucket of
integers when the range is large) or a bucket of a float range (log-spaced for log
distributions). A numeric value is drawn uniformly inside the chosen bucket.

The policy is a pure function of the seed and the finished trials taken in trial-number order,
so rebuilding a study and replaying the same told values (what resuming a search does) puts the
sampler back in the same state and makes it propose the same parameters. Sampling draws from a
random stream derived from ``(seed, trial number, parameter name)``, never from a shared one.

Choices documented here rather than hidden in the code:

- Reward is ``-F`` (the told value; the sum of the values for a multi-objective study, each signed
  by its direction). The advantage ``(reward - baseline) / std`` divides by the standard deviation
  of the rewards seen so far, so the learning rate does not depend on the dataset's loss scale;
  it is clipped to ``±advantage_clip``.
- A failed trial is penalised rather than skipped: its reward counts as one standard deviation
  below the worst reward seen (advantage ``(worst - baseline) / std - 1``, at most ``-1``), so
  settings that crash or diverge lose probability. It does not move the baseline or the scale,
  which describe real objectives only. A failure before any completed trial has nothing to be
  compared with and is skipped, and so is a trial lost to the cluster (user attribute
  ``automl.samplers.LOST_ATTR``: its worker or node died), which says nothing about its
  settings.
- Trials whose parameters were fixed (the paper's enqueued candidates, which Optuna fills in
  without asking the sampler) update the policy like sampled ones. That is off-policy (no
  importance weight), but they are deliberate, usually good proposals and the controller should
  learn from their outcome.
- A value the policy cannot map to an action (an enqueued value outside the range or choices)
  teaches that parameter nothing; the other parameters of the trial still learn.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from automl.samplers import LOST_ATTR

_FINISHED = (TrialState.COMPLETE, TrialState.FAIL)


class _ParamPolicy:
    """A softmax over one parameter's actions, and the map between actions and values."""

    def __init__(self, name: str, distribution: BaseDistribution, buckets: int) -> None:
        self.name = name
        self.distribution = distribution
        self.updates = 0
        self.learned = False  # a finished trial used it (a running one alone does not count)
        d = distribution
        # numeric actions: edges over a grid of values (ints, stepped floats) or over the range
        self._grid: tuple[float, float, int] | None = None  # low, step, number of values
        self._edges: list[int] = []  # grid-index edges of each action (grid case)
        self._span: tuple[float, float] | None = None  # transformed low, high (continuous case)
        self._buckets = 1
        if isinstance(d, CategoricalDistribution):
            n = len(d.choices)
        elif isinstance(d, IntDistribution | FloatDistribution):
            n = self._numeric(d, buckets)
        else:  # pragma: no cover - Optuna has no other distribution kinds
            raise TypeError(f"unsupported distribution {d!r} for {name!r}")
        self.logits = np.zeros(n)

    def _numeric(self, d: IntDistribution | FloatDistribution, buckets: int) -> int:
        log = d.log
        if isinstance(d, IntDistribution) or d.step is not None:
            step = float(d.step if d.step is not None else 1)
            count = int(round((d.high - d.low) / step)) + 1
            self._grid = (float(d.low), step, count)
            if count <= 2 * buckets:
                self._edges = list(range(count + 1))
            else:
                t = (lambda v: math.log(v)) if log else (lambda v: v)
                lo, hi = t(d.low), t(d.high + step)  # the last value's bucket ends one step on
                inv = (lambda v: math.exp(v)) if log else (lambda v: v)
                edges = [0]
                for k in range(1, buckets):
                    index = math.ceil((inv(lo + (hi - lo) * k / buckets) - d.low) / step - 1e-9)
                    if edges[-1] < index < count:
                        edges.append(index)
                edges.append(count)
                self._edges = edges
            return len(self._edges) - 1
        if log:
            self._span = (math.log(d.low), math.log(d.high))
        else:
            self._span = (d.low, d.high)
        self._buckets = buckets
        return buckets

    # ---- actions ↔ values ------------------------------------------------------------------
    def probabilities(self) -> np.ndarray:
        z = np.exp(self.logits - self.logits.max())
        return z / z.sum()

    def action_of(self, value: Any) -> int | None:
        """The action that produces ``value``, or ``None`` if no action can."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            try:
                return int(d.to_internal_repr(value))
            except ValueError:
                return None
        assert isinstance(d, IntDistribution | FloatDistribution)
        v = float(value)
        if not d.low <= v <= d.high:
            return None
        if self._grid is not None:
            low, step, _count = self._grid
            index = int(round((v - low) / step))
            return bisect.bisect_right(self._edges, index) - 1
        assert self._span is not None
        lo, hi = self._span
        if hi <= lo:
            return 0
        t = math.log(v) if d.log else v
        return min(int((t - lo) / (hi - lo) * self._buckets), self._buckets - 1)

    def draw(self, action: int, rng: np.random.Generator) -> Any:
        """A value of ``action``: the choice itself, or a uniform draw inside the bucket."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return d.choices[action]
        assert isinstance(d, IntDistribution | FloatDistribution)
        if self._grid is not None:
            low, step, _count = self._grid
            index = int(rng.integers(self._edges[action], self._edges[action + 1]))
            value = low + index * step
            return int(value) if isinstance(d, IntDistribution) else min(value, d.high)
        assert self._span is not None
        lo, hi = self._span
        width = (hi - lo) / self._buckets
        t = lo + (action + rng.random()) * width
        value = math.exp(t) if d.log else t
        # the bucket's upper end of a log range can round past high
        return min(max(value, d.low), d.high)

    def action_labels(self) -> list[Any]:
        """Per action: the choice, the integer, or the ``[low, high]`` range it draws from."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return list(d.choices)
        assert isinstance(d, IntDistribution | FloatDistribution)
        if self._grid is not None:
            low, step, _count = self._grid
            cast = int if isinstance(d, IntDistribution) else float
            values = [
                [cast(low + a * step), cast(low + (b - 1) * step)]
                for a, b in zip(self._edges, self._edges[1:], strict=False)
            ]
            return [lo if lo == hi else [lo, hi] for lo, hi in values]
        assert self._span is not None
        lo, hi = self._span
        width = (hi - lo) / self._buckets
        bounds = [lo + k * width for k in range(self._buckets + 1)]
        if d.log:
            bounds = [math.exp(b) for b in bounds]
        bounds[0], bounds[-1] = d.low, d.high
        return [[bounds[k], bounds[k + 1]] for k in range(self._buckets)]

    def update(self, action: int, step: float) -> None:
        """REINFORCE on a softmax: ∇ log π(a) = onehot(a) − p."""
        grad = -self.probabilities()
        grad[action] += 1.0
        self.logits += step * grad
        self.updates += 1


class ReinforceSampler(BaseSampler):
    """REINFORCE controller with a moving-average baseline (the AdaNet paper's RL search).

    Args:
        seed: Seeds every draw; the same seed and the same told values give the same proposals.
        learning_rate: Step size of the policy gradient on the logits (the advantage is
            normalised, so this does not depend on the objective's scale).
        baseline_decay: The baseline is ``decay * baseline + (1 - decay) * reward``.
        buckets: Actions of a float range, and of an integer range with more than twice as
            many values (each integer is its own action otherwise).
        advantage_clip: Advantages are clipped to ``±advantage_clip`` standard deviations.
    """

    def __init__(
        self,
        seed: int | None = None,
        learning_rate: float = 0.3,
        baseline_decay: float = 0.8,
        buckets: int = 8,
        advantage_clip: float = 3.0,
    ) -> None:
        if learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if not 0 <= baseline_decay < 1:
            raise ValueError("baseline_decay must be in [0, 1)")
        if buckets < 1:
            raise ValueError("buckets must be at least 1")
        self._seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        self.learning_rate = learning_rate
        self.baseline_decay = baseline_decay
        self.buckets = buckets
        self.advantage_clip = advantage_clip
        self._reset()

    def _reset(self) -> None:
        self._policies: dict[tuple[str, str], _ParamPolicy] = {}
        self._seen: list[int] = []  # numbers of the finished trials folded in, in order
        self._baseline: float | None = None
        self._count = 0  # completed trials (Welford over their rewards)
        self._mean = 0.0
        self._m2 = 0.0
        self._worst: float | None = None
        self._failed = 0

    # ---- Optuna's sampler interface --------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # the policy a trial samples from is fixed when the trial starts
        self.sync(study)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        policy = self._policy(param_name, param_distribution)
        rng = np.random.default_rng(
            [self._seed, trial.number, zlib.crc32(param_name.encode("utf-8"))]
        )
        action = int(rng.choice(len(policy.logits), p=policy.probabilities()))
        return policy.draw(action, rng)

    def reseed_rng(self) -> None:
        self._seed = int.from_bytes(os.urandom(4), "little")

    # ---- the controller --------------------------------------------------------------------
    def sync(self, study: Study) -> None:
        """Fold the study's finished trials into the policy, in trial-number order.

        Only the new ones are applied when they extend the sequence already folded in; a trial
        that finished out of order (a lower number than one already applied) makes the policy
        start over from the seed, so the state stays a function of the ordered finished trials.
        """
        finished = sorted(
            study.get_trials(deepcopy=False, states=_FINISHED), key=lambda t: t.number
        )
        numbers = [t.number for t in finished]
        if numbers[: len(self._seen)] != self._seen:
            self._reset()
        signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
        for trial in finished[len(self._seen) :]:
            self._learn(trial, signs)
            self._seen.append(trial.number)

    def _learn(self, trial: FrozenTrial, signs: Sequence[float]) -> None:
        if trial.state == TrialState.COMPLETE:
            assert trial.values is not None
            reward = float(sum(s * v for s, v in zip(signs, trial.values, strict=True)))
            if not math.isfinite(reward):
                return
            self._count += 1
            delta = reward - self._mean
            self._mean += delta / self._count
            self._m2 += delta * (reward - self._mean)
            std = self._std()
            if self._baseline is None:
                advantage = 0.0
                self._baseline = reward
            else:
                advantage = (reward - self._baseline) / std if std > 0 else 0.0
                self._baseline = (
                    self.baseline_decay * self._baseline + (1 - self.baseline_decay) * reward
                )
            self._worst = reward if self._worst is None else min(self._worst, reward)
        else:
            if trial.user_attrs.get(LOST_ATTR) or self._baseline is None or self._worst is None:
                return
            std = self._std()
            advantage = (self._worst - self._baseline) / std - 1.0 if std > 0 else -1.0
            self._failed += 1
        step = self.learning_rate * max(-self.advantage_clip, min(self.advantage_clip, advantage))
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            if distribution.single():  # Optuna never asks for it: nothing to choose
                continue
            policy = self._policy(name, distribution)
            policy.learned = True
            action = policy.action_of(value)
            if action is not None and step != 0.0:
                policy.update(action, step)

    def _std(self) -> float:
        return math.sqrt(self._m2 / self._count) if self._count else 0.0

    def _policy(self, name: str, distribution: BaseDistribution) -> _ParamPolicy:
        key = (name, distribution_to_json(distribution))
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = _ParamPolicy(name, distribution, self.buckets)
        return policy

    def policy_state(self, study: Study | None = None) -> dict[str, Any]:
        """The controller's state as a JSON-serialisable dict.

        Args:
            study: Bring the policy up to date with this study's finished trials first;
                without it, the state as of the last trial started.

        Returns:
            ``baseline`` (a moving average of rewards ``-F``), ``reward_std``, how many
            completed and failed trials taught it, and per parameter its distribution, its
            actions (``choices``: a choice, an integer or a ``[low, high]`` bucket),
            their ``probabilities`` and how many updates it received. A parameter name
            seen with two distributions appears a second time as ``name#1``.
        """
        if study is not None:
            self.sync(study)
        parameters: dict[str, Any] = {}
        for (name, dist_json), policy in sorted(self._policies.items()):
            if not policy.learned:
                continue
            key, i = name, 0
            while key in parameters:
                i += 1
                key = f"{name}#{i}"
            parameters[key] = {
                "distribution": json.loads(dist_json),
                "choices": policy.action_labels(),
                "probabilities": [float(p) for p in policy.probabilities()],
                "updates": policy.updates,
            }
        return {
            "algorithm": "reinforce",
            "seed": self._seed,
            "learning_rate": self.learning_rate,
            "baseline_decay": self.baseline_decay,
            "baseline": self._baseline,
            "reward_std": self._std(),
            "trials": len(self._seen),
            "completed": self._count,
            "failed": self._failed,
            "parameters": parameters,
        }
