"""Immutable records for members and candidate ensembles, and the Strategy / Ensembler interfaces.

The split follows adanet: a Generator proposes subnetworks, a Strategy says which candidate
ensembles to form from them, and an Ensembler learns the mixture weights that combine members.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Member:
    """A trained subnetwork: frozen once it joins an ensemble."""

    name: str
    iteration: int
    hparams: dict[str, Any]
    seed: int
    depth: int
    params: int
    complexity: float  # r(h)
    weights: tuple[np.ndarray, ...] = field(repr=False, compare=False)

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "iteration": self.iteration,
            "hparams": self.hparams,
            "seed": self.seed,
            "depth": self.depth,
            "params": self.params,
            "complexity": self.complexity,
        }


@dataclass(frozen=True)
class Candidate:
    """One candidate ensemble: which members it holds, in order, and under which strategy."""

    name: str
    strategy: str
    members: tuple[str, ...]
    new_members: tuple[str, ...]


@dataclass(frozen=True)
class MixtureFit:
    """Mixture weights fitted for one candidate ensemble, and its objective.

    ``objective`` is F = loss + complexity, with complexity = Σ_j (λ·r_j + β)·|w_j|₁.
    """

    weights: np.ndarray  # (k,) scalar or (k, C) vector
    bias: np.ndarray  # (C,)
    loss: float
    complexity: float
    objective: float
    metrics: dict[str, float]

    def l1_per_member(self) -> list[float]:
        w = np.abs(self.weights)
        return [float(v) for v in (w if w.ndim == 1 else w.sum(axis=1))]


class Strategy(abc.ABC):
    """Forms candidate ensembles from the previous members and this iteration's new subnetworks."""

    name: str = ""

    @abc.abstractmethod
    def candidates(self, previous: list[str], new: list[str]) -> list[Candidate]:
        """Return the candidate ensembles for this iteration (not counting the previous one)."""


class Ensembler(abc.ABC):
    """Learns mixture weights over member outputs."""

    @abc.abstractmethod
    def fit(
        self,
        logits: np.ndarray,
        y: np.ndarray,
        coefficients: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> MixtureFit:
        """Fit weights for members' logits ``(N, k, C)``; ``coefficients[j] = λ·r_j + β``."""
