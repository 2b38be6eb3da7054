"""Ensembles: member and candidate records, strategies, and the mixture-weight ensembler."""

from __future__ import annotations

from automl._registry import Registry
from automl.ensemble._base import Candidate, Ensembler, Member, MixtureFit, Strategy
from automl.ensemble.ensembler import (
    ComplexityRegularizedEnsembler,
    combine,
    complexity_term,
    softmax,
    task_loss,
    task_metrics,
)
from automl.ensemble.strategies import AllStrategy, GrowStrategy, SoloStrategy

__all__ = [
    "AllStrategy",
    "Candidate",
    "ComplexityRegularizedEnsembler",
    "Ensembler",
    "GrowStrategy",
    "Member",
    "MixtureFit",
    "SoloStrategy",
    "Strategy",
    "combine",
    "complexity_term",
    "create_strategy",
    "softmax",
    "strategies",
    "task_loss",
    "task_metrics",
]

strategies: Registry[Strategy] = Registry("ensemble strategy")
for _cls in (GrowStrategy, SoloStrategy, AllStrategy):
    strategies.register(_cls.name)(_cls)


def create_strategy(name: str) -> Strategy:
    return strategies.create(name)
