"""Executors by name. The service adds a Ray executor that registers itself here."""

from __future__ import annotations

from automl._registry import Registry
from automl.executors._base import EpochReporter, Executor, StartReporter, StopCheck
from automl.executors.in_process import InProcessExecutor
from automl.spec import Resources

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


@executors.register("in_process")
def _in_process(resources: Resources | None = None, **_: object) -> Executor:
    # one candidate at a time in this process, on every core: per-candidate resources and
    # cluster options only mean something to a distributed executor
    return InProcessExecutor()


def create_executor(name: str, resources: Resources | None = None, **options: object) -> Executor:
    """An executor by name; ``resources`` is what each candidate asks for (``spec.resources``),
    ``options`` what that executor takes besides (e.g. ``address`` for Ray)."""
    return executors.create(name, resources=resources, **options)
