"""Executors by name. The service adds a Ray executor that registers itself here."""

from __future__ import annotations

from automl._registry import Registry
from automl.executors._base import EpochReporter, Executor, StartReporter, StopCheck
from automl.executors.in_process import InProcessExecutor

__all__ = [
    "EpochReporter",
    "Executor",
    "InProcessExecutor",
    "StartReporter",
    "StopCheck",
    "create_executor",
    "executors",
]

executors: Registry[Executor] = Registry("executor")
executors.register("in_process")(InProcessExecutor)


def create_executor(name: str, **kwargs: object) -> Executor:
    return executors.create(name, **kwargs)
