"""Built-in complexity measures."""

from __future__ import annotations

import math

from automl.complexity._base import ComplexityMeasure, SubnetworkShape


class SqrtDepth(ComplexityMeasure):
    """sqrt(depth): the reference AdaNet library's proxy for Rademacher complexity."""

    name = "sqrt_depth"

    def __call__(self, shape: SubnetworkShape) -> float:
        return math.sqrt(shape.depth)


class Depth(ComplexityMeasure):
    """depth itself: penalises deeper members more steeply than sqrt(depth)."""

    name = "depth"

    def __call__(self, shape: SubnetworkShape) -> float:
        return float(shape.depth)


class LogParams(ComplexityMeasure):
    """log10(1 + parameters): a parameter-count measure that sees width as well as depth."""

    name = "log_params"

    def __call__(self, shape: SubnetworkShape) -> float:
        return math.log10(1 + shape.params)
