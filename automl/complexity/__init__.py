"""Pluggable complexity measures; ``create_complexity_measure(name)`` picks one by name."""

from __future__ import annotations

from automl._registry import Registry
from automl.complexity._base import ComplexityMeasure, SubnetworkShape
from automl.complexity.measures import Depth, LogParams, SqrtDepth

__all__ = [
    "ComplexityMeasure",
    "SubnetworkShape",
    "complexity_measures",
    "create_complexity_measure",
]

complexity_measures: Registry[ComplexityMeasure] = Registry("complexity measure")
for _cls in (SqrtDepth, Depth, LogParams):
    complexity_measures.register(_cls.name)(_cls)


def create_complexity_measure(name: str) -> ComplexityMeasure:
    return complexity_measures.create(name)
