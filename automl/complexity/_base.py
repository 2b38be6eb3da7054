"""Complexity measures r(h) of a subnetwork, used in the objective's Σ_j (λ·r(h_j) + β)·|w_j|₁."""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetworkShape:
    """What a complexity measure may look at: the subnetwork's depth and parameter count."""

    depth: int
    params: int


class ComplexityMeasure(abc.ABC):
    """Maps a subnetwork to a non-negative number; bigger means a richer hypothesis class."""

    name: str = ""

    @abc.abstractmethod
    def __call__(self, shape: SubnetworkShape) -> float:
        """Return r(h) ≥ 0 for a subnetwork of this shape."""
