"""Complexity-regularised mixture weights, fitted exactly.

Subnetworks train on their own loss (as in the adanet library), so given their outputs the
mixture-weight problem is convex: minimise mean loss(Σ_j w_j·h_j(x) + b, y) + Σ_j c_j·|w_j|₁.
We solve it with L-BFGS-B, splitting w = w⁺ − w⁻ with w± ≥ 0 so the L1 term is smooth. This is
the ensembler adanet trains with SGD, solved to optimality on the cached (frozen) member outputs,
deterministically and without a Keras graph per candidate.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import minimize

from automl.ensemble._base import Ensembler, MixtureFit


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def task_loss(
    outputs: np.ndarray,
    y: np.ndarray,
    task: str,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Mean cross-entropy of logits (classification) or mean squared error (regression)."""
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    if task == "classification":
        p = softmax(outputs.astype(np.float64))
        nll = -np.log(np.clip(p[np.arange(len(y)), y.astype(np.int64)], 1e-12, None))
        return float(np.sum(sw * nll) / np.sum(sw))
    err = (outputs[:, 0].astype(np.float64) - y.astype(np.float64)) ** 2
    return float(np.sum(sw * err) / np.sum(sw))


def task_metrics(outputs: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """accuracy for classification; mse and mae (in the units given) for regression."""
    if task == "classification":
        return {"accuracy": float(np.mean(np.argmax(outputs, axis=1) == y.astype(np.int64)))}
    err = outputs[:, 0].astype(np.float64) - y.astype(np.float64)
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))}


def combine(logits: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """f(x) = Σ_j w_j·h_j(x) + b for logits ``(N, k, C)``."""
    w = weights[None, :, None] if weights.ndim == 1 else weights[None, :, :]
    return (logits * w).sum(axis=1) + bias[None, :]


def complexity_term(weights: np.ndarray, coefficients: np.ndarray) -> float:
    """Σ_j c_j·|w_j|₁ with c_j = λ·r(h_j) + β."""
    l1 = np.abs(weights) if weights.ndim == 1 else np.abs(weights).sum(axis=1)
    return float(np.dot(coefficients, l1))


class ComplexityRegularizedEnsembler(Ensembler):
    """Scalar (one weight per member) or vector (one per member and output) mixture weights,
    or ``mean``: every weight held at 1/k (adanet's MeanEnsembler), only the bias (when
    learnt) fitted; F counts the complexity term at those weights.

    Args:
        task: ``classification`` (softmax cross-entropy) or ``regression`` (squared error).
        weight_type: ``scalar`` or ``vector``.
        use_bias: Learn the bias b. Off by default, as in adanet: with few selection rows an
            unpenalised per-class bias overfits them. The empty ensemble always gets one, so
            it predicts the class prior (or the mean).
        nonnegative: Constrain every w_j ≥ 0.
        max_iter: L-BFGS-B iterations.
    """

    def __init__(
        self,
        task: str,
        weight_type: Literal["scalar", "vector", "mean"] = "scalar",
        use_bias: bool = False,
        nonnegative: bool = False,
        max_iter: int = 200,
    ) -> None:
        self.task = task
        self.weight_type = weight_type
        self.use_bias = use_bias
        self.nonnegative = nonnegative
        self.max_iter = max_iter

    def fit(
        self,
        logits: np.ndarray,
        y: np.ndarray,
        coefficients: np.ndarray,
        sample_weight: np.ndarray | None = None,
        init_weights: np.ndarray | None = None,
    ) -> MixtureFit:
        n, k, c = logits.shape
        L = logits.astype(np.float64)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        sw = sw / sw.sum()
        wshape = (k, c) if self.weight_type == "vector" else (k,)
        nw = int(np.prod(wshape)) if k else 0
        mean = self.weight_type == "mean"
        if init_weights is None or mean:
            init_weights = np.full(wshape, 1.0 / max(k, 1))
        w0 = np.asarray(init_weights, np.float64).reshape(wshape) if k else np.zeros(wshape)
        coef_full = (
            np.repeat(coefficients, c) if self.weight_type == "vector" else coefficients
        ).reshape(-1)
        onehot = None
        if self.task == "classification":
            onehot = np.zeros((n, c))
            onehot[np.arange(n), y.astype(np.int64)] = 1.0
        yv = y.astype(np.float64)

        def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            w = (theta[:nw] - theta[nw : 2 * nw]).reshape(wshape)
            return w, theta[2 * nw :]

        def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = unpack(theta)
            z = combine(L, w, b) if k else np.broadcast_to(b, (n, c))
            if self.task == "classification":
                assert onehot is not None
                zs = z - z.max(axis=1, keepdims=True)
                logsum = np.log(np.exp(zs).sum(axis=1))
                loss = float(np.sum(sw * (logsum - (zs * onehot).sum(axis=1))))
                dz = (softmax(z) - onehot) * sw[:, None]
            else:
                r = z[:, 0] - yv
                loss = float(np.sum(sw * r**2))
                dz = np.zeros((n, c))
                dz[:, 0] = 2 * sw * r
            if k:
                gw_full = np.einsum("nc,nkc->kc", dz, L)
                gw = gw_full if self.weight_type == "vector" else gw_full.sum(axis=1)
                gw = gw.reshape(-1)
            else:
                gw = np.zeros(0)
            gb = dz.sum(axis=0)
            value = loss + float(np.dot(coef_full, theta[:nw] + theta[nw : 2 * nw]))
            grad = np.concatenate([gw + coef_full, -gw + coef_full, gb])
            return value, grad

        theta0 = np.concatenate(
            [np.clip(w0, 0, None).reshape(-1), np.clip(-w0, 0, None).reshape(-1), np.zeros(c)]
        )
        free_bias = self.use_bias or k == 0
        negative_part = (0.0, 0.0) if self.nonnegative or mean else (0.0, None)
        # mean: each weight's positive part held at 1/k, so only a learnt bias moves
        positive_part = (1.0 / max(k, 1), 1.0 / max(k, 1)) if mean else (0.0, None)
        bounds = (
            [positive_part] * nw
            + [negative_part] * nw
            + [(None, None) if free_bias else (0.0, 0.0)] * c
        )
        res = minimize(
            value_and_grad,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": self.max_iter},
        )
        w, b = unpack(res.x)
        outputs = combine(L, w, b) if k else np.broadcast_to(b, (n, c)).copy()
        loss = task_loss(outputs, y, self.task, sample_weight)
        comp = complexity_term(w, coefficients) if k else 0.0
        return MixtureFit(
            weights=w.astype(np.float32),
            bias=b.astype(np.float32),
            loss=loss,
            complexity=comp,
            objective=loss + comp,
            metrics=task_metrics(outputs, y, self.task),
        )
