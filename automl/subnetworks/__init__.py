"""Subnetwork families by name: ``create_subnetwork_builder("conv1d")``."""

from __future__ import annotations

from automl._registry import Registry
from automl.subnetworks._base import SubnetworkBuilder
from automl.subnetworks.families import Conv1DBuilder, Conv2DBuilder, DenseBuilder

__all__ = [
    "Conv1DBuilder",
    "Conv2DBuilder",
    "DenseBuilder",
    "SubnetworkBuilder",
    "create_subnetwork_builder",
    "subnetwork_builders",
]

subnetwork_builders: Registry[SubnetworkBuilder] = Registry("subnetwork family")
for _cls in (DenseBuilder, Conv1DBuilder, Conv2DBuilder):
    subnetwork_builders.register(_cls.family)(_cls)


def create_subnetwork_builder(family: str) -> SubnetworkBuilder:
    return subnetwork_builders.create(family)
