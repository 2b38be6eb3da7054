"""Optimizers and learning-rate schedules by name.

Importing this module imports Keras; the search imports it lazily so the CLI and spec checks
stay fast.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from automl._registry import Registry

__all__ = [
    "InverseTimePower",
    "create_optimizer",
    "create_schedule",
    "optimizers",
    "schedules",
]

optimizers: Registry[keras.optimizers.Optimizer] = Registry("optimizer")
schedules: Registry[Any] = Registry("schedule")


@keras.saving.register_keras_serializable(package="automl")
class InverseTimePower(keras.optimizers.schedules.LearningRateSchedule):
    """η_t = η_0 / t^n, t = 1 + step / decay_steps (t counts epochs from 1), as in the seed."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, power: float) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.power = float(power)

    def __call__(self, step: Any) -> Any:
        t = 1.0 + keras.ops.cast(step, "float32") / float(self.decay_steps)
        return self.initial_learning_rate / keras.ops.power(t, self.power)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
        }


@schedules.register("constant")
def _constant(learning_rate: float, **_: Any) -> float:
    return learning_rate


@schedules.register("inverse_time")
def _inverse_time(
    learning_rate: float, steps_per_epoch: int, decay_power: float = 0.5, **_: Any
) -> InverseTimePower:
    return InverseTimePower(learning_rate, max(1, steps_per_epoch), decay_power)


@schedules.register("exponential")
def _exponential(
    learning_rate: float, steps_per_epoch: int, decay_rate: float = 0.9, **_: Any
) -> Any:
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=max(1, steps_per_epoch), decay_rate=decay_rate
    )


@schedules.register("cosine")
def _cosine(learning_rate: float, steps_per_epoch: int, epochs: int, **_: Any) -> Any:
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, steps_per_epoch * epochs)
    )


def create_schedule(
    name: str,
    learning_rate: float,
    *,
    steps_per_epoch: int = 1,
    epochs: int = 1,
    decay_power: float = 0.5,
    decay_rate: float = 0.9,
) -> Any:
    """A learning rate or Keras schedule; ``steps_per_epoch`` makes decays count in epochs."""
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning rate must be positive, got {learning_rate}")
    return schedules.create(
        name,
        learning_rate=learning_rate,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        decay_power=decay_power,
        decay_rate=decay_rate,
    )


optimizers.register("sgd")(lambda learning_rate: keras.optimizers.SGD(learning_rate))
optimizers.register("momentum")(
    lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9)
)
optimizers.register("nesterov")(
    lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
)
optimizers.register("adagrad")(lambda learning_rate: keras.optimizers.Adagrad(learning_rate))
optimizers.register("adadelta")(lambda learning_rate: keras.optimizers.Adadelta(learning_rate))
optimizers.register("rmsprop")(lambda learning_rate: keras.optimizers.RMSprop(learning_rate))
optimizers.register("adam")(lambda learning_rate: keras.optimizers.Adam(learning_rate))


def create_optimizer(name: str, learning_rate: Any) -> keras.optimizers.Optimizer:
    """``learning_rate`` is a float or a schedule from ``create_schedule``."""
    return optimizers.create(name, learning_rate=learning_rate)
