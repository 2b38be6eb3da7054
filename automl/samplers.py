"""Optuna samplers by name: tpe (default), random, nsga2 for loss vs complexity, and rl (the
AdaNet paper's REINFORCE controller, ``automl.rl``)."""

from __future__ import annotations

from typing import Any

from automl._registry import Registry

# a failed trial's user attribute: lost to the cluster (its worker or node died), not to its
# configuration; a sampler that learns from failures skips it
LOST_ATTR = "lost"

samplers: Registry[Any] = Registry("sampler")


@samplers.register("tpe")
def _tpe(seed: int) -> Any:
    import optuna

    # Few trials per search: start modelling after a handful instead of optuna's default 10.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=6, multivariate=True)


@samplers.register("random")
def _random(seed: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@samplers.register("nsga2")
def _nsga2(seed: int) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


@samplers.register("rl")
def _rl(seed: int) -> Any:
    from automl.rl import ReinforceSampler

    return ReinforceSampler(seed=seed)


def create_sampler(name: str, seed: int) -> Any:
    return samplers.create(name, seed=seed)


def is_multi_objective(name: str) -> bool:
    """nsga2 optimises (loss, complexity term) as two objectives instead of their sum F."""
    return name == "nsga2"
