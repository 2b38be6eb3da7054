"""The AdaNet objective F = mean loss + Σ_j (λ·r_j + β)·|w_j|₁ and the mixture-weight fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automl.ensemble import (
    ComplexityRegularizedEnsembler,
    combine,
    complexity_term,
    task_loss,
)


def test_objective_matches_a_hand_computed_example() -> None:
    # two examples, two members, two classes
    logits = np.array(
        [
            [[2.0, 0.0], [1.0, 1.0]],  # example 0: member a favours class 0, b undecided
            [[0.0, 1.0], [0.0, 3.0]],  # example 1: both favour class 1
        ]
    )
    y = np.array([0, 1])
    w = np.array([0.5, 0.25])
    b = np.array([0.0, 0.0])
    z = combine(logits, w, b)
    np.testing.assert_allclose(z, [[1.25, 0.25], [0.0, 1.25]])
    # cross-entropy by hand: -log softmax(z)[y]
    ce0 = -math.log(math.exp(1.25) / (math.exp(1.25) + math.exp(0.25)))
    ce1 = -math.log(math.exp(1.25) / (math.exp(0.0) + math.exp(1.25)))
    assert task_loss(z, y, "classification") == pytest.approx((ce0 + ce1) / 2)
    # r(a) = sqrt(1), r(b) = sqrt(4); λ = 0.1, β = 0.01
    coef = np.array([0.1 * 1.0 + 0.01, 0.1 * 2.0 + 0.01])
    assert complexity_term(w, coef) == pytest.approx(0.11 * 0.5 + 0.21 * 0.25)
    # vector weights: |w_j|₁ sums over outputs
    wv = np.array([[0.5, -0.5], [0.25, 0.0]])
    assert complexity_term(wv, coef) == pytest.approx(0.11 * 1.0 + 0.21 * 0.25)


def test_regression_loss_is_mean_squared_error() -> None:
    out = np.array([[1.0], [3.0]])
    assert task_loss(out, np.array([0.0, 1.0]), "regression") == pytest.approx((1 + 4) / 2)


def _members(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    good = np.eye(3)[y] * 3.0 + rng.normal(0, 1.0, (n, 3))  # informative member
    noise = rng.normal(0, 2.0, (n, 3))  # useless member
    return np.stack([good, noise], axis=1), y


@pytest.mark.parametrize("weight_type", ["scalar", "vector"])
def test_mixture_training_moves_weights_towards_the_informative_member(weight_type: str) -> None:
    logits, y = _members()
    ens = ComplexityRegularizedEnsembler("classification", weight_type)  # type: ignore[arg-type]
    coef = np.array([0.01, 0.01])
    init = np.full((2,) if weight_type == "scalar" else (2, 3), 0.5)
    start = task_loss(combine(logits, init, np.zeros(3)), y, "classification")
    start += complexity_term(init, coef)
    fit = ens.fit(logits, y, coef)
    l1 = fit.l1_per_member()
    assert l1[0] > 5 * l1[1], l1
    assert fit.objective < start
    assert fit.objective == pytest.approx(fit.loss + fit.complexity)
    assert fit.metrics["accuracy"] > 0.9


def test_fitted_weights_are_a_minimum_of_the_objective() -> None:
    logits, y = _members(seed=3)
    coef = np.array([0.05, 0.2])
    fit = ComplexityRegularizedEnsembler("classification").fit(logits, y, coef)

    def objective(w: np.ndarray, b: np.ndarray) -> float:
        z = combine(logits, w, b)
        return task_loss(z, y, "classification") + complexity_term(w, coef)

    base = objective(fit.weights.astype(float), fit.bias.astype(float))
    assert base == pytest.approx(fit.objective, rel=1e-5)
    for j in range(2):
        for step in (-1e-2, 1e-2):
            w = fit.weights.astype(float).copy()
            w[j] += step
            assert objective(w, fit.bias.astype(float)) >= base - 1e-6


def test_a_large_complexity_penalty_drives_weights_to_zero() -> None:
    logits, y = _members()
    fit = ComplexityRegularizedEnsembler("classification").fit(logits, y, np.array([50.0, 50.0]))
    assert np.abs(fit.weights).max() < 1e-3
    assert fit.complexity < 1e-3


def test_the_empty_ensemble_predicts_the_class_prior() -> None:
    y = np.array([0] * 30 + [1] * 10)
    fit = ComplexityRegularizedEnsembler("classification").fit(np.zeros((40, 0, 2)), y, np.zeros(0))
    p1 = np.exp(fit.bias[1]) / np.exp(fit.bias).sum()
    assert p1 == pytest.approx(0.25, abs=1e-3)
    assert fit.objective == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), 1e-4)


def test_bias_is_off_by_default_and_learned_when_asked() -> None:
    logits, y = _members()
    shifted = logits + np.array([0.0, 0.0, 4.0])  # both members over-predict class 2
    off = ComplexityRegularizedEnsembler("classification").fit(shifted, y, np.array([0.01, 0.01]))
    assert np.all(off.bias == 0)
    on = ComplexityRegularizedEnsembler("classification", use_bias=True).fit(
        shifted, y, np.array([0.01, 0.01])
    )
    assert on.bias[2] < on.bias[0] - 1.0  # the learned bias undoes the shift
    assert on.loss < off.loss


def test_nonnegative_weights_refuse_to_subtract_a_member() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    shared = rng.normal(0, 2.0, (300, 3))  # noise both members carry
    signal = np.eye(3)[y] * 2.0
    # member b is pure noise that member a also carries: a − b recovers the signal
    logits = np.stack([signal + shared, shared], axis=1)
    coef = np.array([0.01, 0.01])
    free = ComplexityRegularizedEnsembler("classification").fit(logits, y, coef)
    assert free.weights[1] < -0.1  # the paper's unconstrained weights subtract b
    held = ComplexityRegularizedEnsembler("classification", nonnegative=True).fit(logits, y, coef)
    assert held.weights.min() >= 0.0
    assert held.loss > free.loss


def test_mean_weights_are_one_over_k_and_f_counts_them() -> None:
    """``mean`` (adanet's MeanEnsembler): the weights stay 1/k however useless a member is, the
    bias moves only when learnt, and F is the averaged logits' loss plus the complexity term at
    1/k."""
    logits, y = _members()
    coef = np.array([0.05, 0.2])
    fit = ComplexityRegularizedEnsembler("classification", "mean").fit(logits, y, coef)
    np.testing.assert_allclose(fit.weights, [0.5, 0.5])
    assert np.all(fit.bias == 0)
    averaged = logits.mean(axis=1)
    assert fit.loss == pytest.approx(task_loss(averaged, y, "classification"), rel=1e-6)
    assert fit.complexity == pytest.approx(0.5 * 0.05 + 0.5 * 0.2)
    assert fit.objective == pytest.approx(fit.loss + fit.complexity)
    # a fitted scalar mixture turns the useless member down; the mean cannot
    scalar = ComplexityRegularizedEnsembler("classification", "scalar").fit(logits, y, coef)
    assert scalar.weights[1] < 0.5 and scalar.objective < fit.objective
    shifted = logits + np.array([0.0, 0.0, 4.0])
    biased = ComplexityRegularizedEnsembler("classification", "mean", use_bias=True).fit(
        shifted, y, coef
    )
    np.testing.assert_allclose(biased.weights, [0.5, 0.5])
    assert biased.bias[2] < biased.bias[0] - 1.0
    one = ComplexityRegularizedEnsembler("classification", "mean").fit(logits[:, :1], y, coef[:1])
    np.testing.assert_allclose(one.weights, [1.0])
